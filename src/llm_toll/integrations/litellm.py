"""LiteLLM callback: cost tracking without a decorator.

import litellm
from llm_toll import LiteLLMCallback
litellm.callbacks = [LiteLLMCallback(project="my-app", max_budget=10.0)]

``LiteLLMCallback`` is a LiteLLM ``CustomLogger`` (this module is imported only by programs
that use LiteLLM; ``import llm_toll`` does not import it). LiteLLM logs and swallows what its
logging hooks raise, so a spent budget is refused by a pre-call rule
(``litellm.pre_call_rules``) that the first callback made registers: it runs before every
``completion`` and ``acompletion`` (streamed or not), for the callbacks of
``litellm.callbacks`` and of the call's own ``callbacks=``, and raises
``BudgetExceededError`` as it is. Each successful response is recorded once, priced from
its usage (cache reads and writes, reasoning) with LiteLLM's own ``response_cost`` as the
provider's figure, over the start and end times LiteLLM reports; failed attempts cost
nothing and are not recorded. An async call's record is written in llm_toll's worker
thread, off the event loop.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from llm_toll._call.plan import StoreErrorPolicy
from llm_toll._worker import worker
from llm_toll.alerts._alert import AlertCallback
from llm_toll.exceptions import UsageWarning
from llm_toll.integrations._callback import BudgetedCallback
from llm_toll.reporter import CostReporter
from llm_toll.store import BaseStore
from llm_toll.usage import ExtractedUsage, UsageError, extract_usage
from llm_toll.usage._provider_cost import checked_cost

if TYPE_CHECKING:
    _Logger = object
else:
    try:
        from litellm.integrations.custom_logger import CustomLogger as _Logger
    except ImportError:  # pragma: no cover - the class still records when called by hand
        _Logger = object


class LiteLLMCallback(BudgetedCallback, _Logger):
    """Records every LiteLLM completion; refuses new calls once ``max_budget`` is spent."""

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
        # LiteLLM keeps one logger per class and public str/int/bool attributes (a float is
        # not one of them): the project, the budget and where alerts go tell two callbacks
        # apart.
        self.project = project
        self.budget = "none" if max_budget is None else repr(float(max_budget))
        self.alerts = _alerts_key(on_threshold, on_exceeded, alert_webhook)
        if _Logger is not object:
            _Logger.__init__(self)
            _register_pre_call_rule()

    def log_pre_api_call(self, model: str, messages: Any, kwargs: dict[str, Any]) -> None:
        """Raises BudgetExceededError when spent (LiteLLM itself refuses through the
        pre-call rule: it swallows what this hook raises)."""
        self._refuse_if_spent()

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Called by LiteLLM after a successful completion (for a stream, once with the
        whole response): records its usage and cost."""
        found = self._to_record(kwargs, response_obj)
        if found is not None:
            started_at, ended_at = _times(start_time, end_time)
            self._record(found, started_at=started_at, ended_at=ended_at)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """The same for ``acompletion``: the record is written in llm_toll's worker thread,
        so a slow store never blocks the event loop."""
        found = self._to_record(kwargs, response_obj)
        if found is not None:
            started_at, ended_at = _times(start_time, end_time)
            record = partial(self._record, found, started_at=started_at, ended_at=ended_at)
            await worker.run(record)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Failed attempts cost nothing that LiteLLM reports: nothing to record."""

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Failed attempts cost nothing that LiteLLM reports: nothing to record."""

    def _to_record(self, kwargs: dict[str, Any], response_obj: Any) -> ExtractedUsage | None:
        """The call's usage, unless another callback of this project recorded the call."""
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, dict) else None
        if not _recorded.first(self.project, call_id):
            return None
        return self._usage(kwargs, response_obj)

    @staticmethod
    def _usage(kwargs: dict[str, Any], response_obj: Any) -> ExtractedUsage | None:
        try:
            found = extract_usage(_as_openai_shape(response_obj))
        except UsageError as exc:
            warnings.warn(f"llm_toll: LiteLLM response usage unusable: {exc}", UsageWarning,
                          stacklevel=3)  # fmt: skip
            return None
        if found is None:
            return None
        cost = _response_cost(kwargs, response_obj)
        return found if cost is None else replace(found, provider_cost_nanos=cost)


def _alerts_key(
    on_threshold: AlertCallback | None, on_exceeded: AlertCallback | None, webhook: str | None
) -> str:
    """Where a callback's alerts go, as a key of LiteLLM's: the same callables and webhook
    give the same key (LiteLLM logs keys: a webhook's URL, a secret, is only hashed)."""
    if on_threshold is None and on_exceeded is None and webhook is None:
        return "none"
    hooked = "" if webhook is None else hashlib.sha256(webhook.encode()).hexdigest()[:16]
    return f"{id(on_threshold):x}:{id(on_exceeded):x}:{hooked}"


def _times(start_time: Any, end_time: Any) -> tuple[datetime | None, datetime | None]:
    """LiteLLM's start and end of the call, when it gave them as datetimes."""
    start = start_time if isinstance(start_time, datetime) else None
    end = end_time if isinstance(end_time, datetime) else None
    return start, end


def _as_openai_shape(response: Any) -> Any:
    """LiteLLM's ModelResponse mirrors OpenAI's JSON; read it as the dict it dumps to.

    The usage is dumped on its own: LiteLLM puts a chat-named ``Usage`` in the
    ``ResponsesAPIResponse`` it gives callbacks, whose dump keeps only the fields the
    Responses usage type declares (``total_tokens``)."""
    dump = getattr(response, "model_dump", None) or getattr(response, "dict", None)
    if not callable(dump):
        return response
    shape = dump()
    usage_dump = getattr(getattr(response, "usage", None), "model_dump", None)
    if isinstance(shape, dict) and callable(usage_dump):
        shape["usage"] = usage_dump()
    return shape


def _response_cost(kwargs: dict[str, Any], response: Any) -> int | None:
    """LiteLLM's ``response_cost`` (USD) of a call in nano-USD: from the callback's kwargs,
    else the response's ``_hidden_params``; None when LiteLLM priced nothing."""
    value = kwargs.get("response_cost") if isinstance(kwargs, dict) else None
    if value is None:
        hidden = getattr(response, "_hidden_params", None)
        value = hidden.get("response_cost") if isinstance(hidden, dict) else None
    return None if value is None else checked_cost("LiteLLM response_cost", value)


class _FirstPerProject:
    """The (project, LiteLLM call id) pairs recorded lately: two callbacks of one project
    (with different budgets) both see every call, which the project records once."""

    _SIZE = 4096  # calls whose success is being logged at the same time

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def first(self, project: str, call_id: object) -> bool:
        """Whether this is the first record of the call for ``project`` (a call without an
        id cannot be matched: always)."""
        if not isinstance(call_id, str) or not call_id:
            return True
        with self._lock:
            if (project, call_id) in self._seen:
                return False
            self._seen[(project, call_id)] = None
            if len(self._seen) > self._SIZE:
                self._seen.popitem(last=False)
            return True


_recorded = _FirstPerProject()


# -- refusing a call before it is sent ------------------------------------------------------

_lock = threading.Lock()


def _refuse_when_spent(text: str) -> bool:
    """LiteLLM's pre-call rule: every LiteLLMCallback LiteLLM will call refuses (raises
    BudgetExceededError) when its budget is spent; True lets the call go."""
    for callback in _registered():
        callback._refuse_if_spent()
    return True


def _registered() -> list[LiteLLMCallback]:
    """The LiteLLMCallbacks of ``litellm.callbacks`` and of a call's own ``callbacks=``:
    LiteLLM adds the latter to its lists of loggers before it runs the pre-call rules
    (and keeps them there for later calls). Each once, in order."""
    import litellm

    found: dict[int, LiteLLMCallback] = {}
    for group in (litellm.callbacks, litellm.input_callback, litellm.success_callback,
                  litellm._async_success_callback):  # fmt: skip
        for callback in group:
            if isinstance(callback, LiteLLMCallback):
                found.setdefault(id(callback), callback)
    return list(found.values())


def _register_pre_call_rule() -> None:
    """Add the rule to ``litellm.pre_call_rules`` once (LiteLLM runs its rules before the
    request of every ``completion`` and ``acompletion``, and lets what they raise through)."""
    import litellm

    with _lock:
        if _refuse_when_spent not in litellm.pre_call_rules:
            litellm.pre_call_rules.append(_refuse_when_spent)
