"""LangChain callback handlers: cost tracking and a budget for any chat model.

from llm_toll import LangChainCallback
llm = ChatOpenAI(model="gpt-4o", callbacks=[LangChainCallback(project="chain")])

``LangChainCallback`` is a ``langchain_core`` ``BaseCallbackHandler`` (usable in a model's
``callbacks=`` and in ``invoke(config={"callbacks": [...]})``); in async chains LangChain
runs it in a thread, never on the event loop. ``AsyncLangChainCallback`` is its
``AsyncCallbackHandler`` twin, whose store work runs in llm_toll's worker thread. This
module imports ``langchain_core``; ``import llm_toll`` does not import it.
"""

from __future__ import annotations

import contextvars
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID

from llm_toll._call.plan import StoreErrorPolicy
from llm_toll._warnings import warn_once
from llm_toll._worker import worker
from llm_toll.alerts._alert import AlertCallback
from llm_toll.exceptions import UsageWarning
from llm_toll.integrations._callback import BudgetedCallback
from llm_toll.reporter import CostReporter
from llm_toll.store import BaseStore
from llm_toll.usage import ExtractedUsage, Usage, UsageError

if TYPE_CHECKING:
    from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
else:
    try:
        from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
    except ImportError:  # without LangChain the handlers still speak its protocol

        class BaseCallbackHandler:
            pass

        AsyncCallbackHandler = BaseCallbackHandler

# LangChain's provider names (``ls_provider``, ``model_provider``) -> semantic-convention
# names; and the SDK each of those LangChain models calls, which llm_toll may hook.
_PROVIDERS = {"google_genai": "gcp.gemini", "google_vertexai": "gcp.vertex_ai",
              "azure": "azure.ai.openai", "bedrock": "aws.bedrock"}  # fmt: skip
_HOOKED_SDKS = {"openai": "openai", "azure": "openai", "anthropic": "anthropic",
                "google_genai": "google.genai"}  # fmt: skip
_LC_ID_PREFIX = "lc_"  # ids LangChain makes up for a message (``lc_run--<run id>``)


@dataclass(frozen=True)
class _Started:
    """What ``on_*_start`` knew of a model call."""

    at: datetime
    t0: float
    provider: str | None
    model: str | None
    hooked: bool
    """Requested inside an llm_toll run through an SDK llm_toll hooks: the hooks record it."""


def _provider_of(serialized: dict[str, Any] | None, metadata: dict[str, Any] | None) -> str | None:
    name = (metadata or {}).get("ls_provider")
    if not isinstance(name, str) or not name:
        ids = (serialized or {}).get("id")
        # ["langchain", "chat_models", "openai", "ChatOpenAI"]
        name = ids[2] if isinstance(ids, list) and len(ids) > 3 else None
    return name if isinstance(name, str) and name else None


def _hooks_record(provider: str | None) -> bool:
    """Whether a request made here is recorded by llm_toll's hooks: inside a run, through
    an SDK that is hooked."""
    from llm_toll._call.run import current_run

    sdk = _HOOKED_SDKS.get(provider or "")
    if sdk is None or current_run() is None:
        return False
    from llm_toll._hooks import installed

    return any(name.startswith((sdk + ".", sdk + ":")) for name in installed())


def _count(details: Any, *keys: str) -> int:
    if not isinstance(details, dict):
        return 0
    return sum(value for key in keys if isinstance(value := details.get(key), int))


def _usage_metadata(usage: dict[str, Any]) -> Usage:
    """``AIMessage.usage_metadata``: input includes cached tokens, output reasoning."""
    read = usage.get("input_token_details") or {}
    wrote_1h = _count(read, "ephemeral_1h_input_tokens")
    return Usage.checked(
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        cache_read_input_tokens=_count(read, "cache_read"),
        # langchain-anthropic splits cache writes by their time to live
        cache_creation_input_tokens=_count(
            read, "cache_creation", "ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"
        ),
        reasoning_output_tokens=_count(usage.get("output_token_details"), "reasoning"),
        units={"cache_write_1h_tokens": wrote_1h} if wrote_1h else None,
    )


def _found(response: Any, started: _Started | None) -> ExtractedUsage | None:
    """The usage, model, provider and response id of an ``LLMResult``; None without usage."""
    generations = getattr(response, "generations", None) or [[]]
    first = generations[0][0] if generations[0] else None
    message = getattr(first, "message", None)
    meta = getattr(message, "response_metadata", None)
    if not isinstance(meta, dict):
        meta = {}
    llm_output = getattr(response, "llm_output", None)
    if not isinstance(llm_output, dict):
        llm_output = {}
    usage_metadata = getattr(message, "usage_metadata", None)
    token_usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
    try:
        if isinstance(usage_metadata, dict) and usage_metadata:
            usage = _usage_metadata(usage_metadata)
        elif isinstance(token_usage, dict) and token_usage:
            usage = Usage.checked(
                token_usage.get("prompt_tokens", token_usage.get("input_tokens")),
                token_usage.get("completion_tokens", token_usage.get("output_tokens")),
            )
        else:
            return None
    except UsageError as exc:
        warnings.warn(f"llm_toll: LangChain usage unusable: {exc}", UsageWarning, stacklevel=3)
        return None
    model = next(
        (m for m in (meta.get("model_name"), meta.get("model"), llm_output.get("model_name"),
                     llm_output.get("model")) if isinstance(m, str) and m),
        started.model if started else None,
    )  # fmt: skip
    provider = (started.provider if started else None) or meta.get("model_provider")
    response_id = meta.get("id") or llm_output.get("id")
    message_id = getattr(message, "id", None)
    if not response_id and isinstance(message_id, str) and not message_id.startswith(_LC_ID_PREFIX):
        response_id = message_id
    return ExtractedUsage(
        usage,
        model=model,
        provider=_PROVIDERS.get(provider, provider) if isinstance(provider, str) else None,
        operation="chat" if message is not None else "text_completion",
        response_id=response_id if isinstance(response_id, str) and response_id else None,
    )


class _LangChainHandler(BudgetedCallback):
    """What both handlers do: check the budget when a model starts, remember when and
    what it started, and price its real usage when it ends."""

    raise_error = True  # a BudgetExceededError stops the run, before the request is sent
    ignore_llm = False
    ignore_chat_model = False
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(
        self,
        *,
        project: str = "default",
        max_budget: float | None = None,
        store: BaseStore | None = None,
        reporter: CostReporter | None = None,
        on_store_error: StoreErrorPolicy = "allow",
        on_threshold: AlertCallback | None = None,
        on_exceeded: AlertCallback | None = None,
        alert_webhook: str | None = None,
    ) -> None:
        super().__init__(
            project=project,
            max_budget=max_budget,
            store=store,
            reporter=reporter,
            on_store_error=on_store_error,
            on_threshold=on_threshold,
            on_exceeded=on_exceeded,
            alert_webhook=alert_webhook,
        )
        self._lock = threading.Lock()
        self._started: dict[UUID | None, _Started] = {}

    def _start(self, serialized: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        metadata = kwargs.get("metadata") or {}
        params = kwargs.get("invocation_params") or {}
        model = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
        provider = _provider_of(serialized, metadata)
        started = _Started(
            datetime.now(timezone.utc),
            time.perf_counter(),
            provider,
            model if isinstance(model, str) and model else None,
            _hooks_record(provider),
        )
        with self._lock:
            self._started[kwargs.get("run_id")] = started

    def _end(self, response: Any, run_id: UUID | None) -> tuple[ExtractedUsage, _Started] | None:
        with self._lock:
            started = self._started.pop(run_id, None)
        if started is not None and started.hooked:
            return None  # the hooks record this request (its stream may carry no id here)
        found = _found(response, started)
        if found is None:
            model = started.model if started else None
            warn_once(
                f"langchain-no-usage:{model}",
                f"llm_toll: LangChain reported no usage for a call of {model or 'a model'}: "
                "not recorded (a langchain-openai stream from another endpoint than "
                "OpenAI's carries it only with stream_usage=True)",
                UsageWarning,
            )
            return None
        return found, started or _Started(datetime.now(timezone.utc), time.perf_counter(),
                                          None, None, False)  # fmt: skip

    def _forget(self, run_id: UUID | None) -> None:
        """A failed call reports no usage: nothing to record."""
        with self._lock:
            self._started.pop(run_id, None)

    def _refuse_then_start(self, serialized: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        self._refuse_if_spent()
        self._start(serialized, kwargs)

    def _record_found(self, ended: tuple[ExtractedUsage, _Started]) -> None:
        found, started = ended
        self._record(found, started_at=started.at, t0=started.t0, request_model=started.model)


class LangChainCallback(_LangChainHandler, BaseCallbackHandler):
    """Checks the budget before a model is called (``BudgetExceededError`` stops the chain
    before the request) and records its real usage in ``on_llm_end``."""

    run_inline = False  # in an async chain LangChain calls it in a thread, off the loop

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self._refuse_then_start(serialized, kwargs)

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], **kwargs: Any
    ) -> None:
        self._refuse_then_start(serialized, kwargs)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        ended = self._end(response, kwargs.get("run_id"))
        if ended is not None:
            self._record_found(ended)

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self._forget(kwargs.get("run_id"))


class AsyncLangChainCallback(_LangChainHandler, AsyncCallbackHandler):
    """``LangChainCallback`` for async chains: the store's work runs in llm_toll's worker
    thread, awaited, so the event loop is never blocked."""

    run_inline = True

    async def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any
    ) -> None:
        await worker.run(self._refuse_if_spent)
        self._start(serialized, kwargs)

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], **kwargs: Any
    ) -> None:
        await worker.run(self._refuse_if_spent)
        self._start(serialized, kwargs)  # here: it reads the caller's context

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        ended = self._end(response, kwargs.get("run_id"))
        if ended is not None:
            # in the caller's context: the call's span is a child of the current span
            await worker.run(contextvars.copy_context().run, self._record_found, ended)

    async def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self._forget(kwargs.get("run_id"))
