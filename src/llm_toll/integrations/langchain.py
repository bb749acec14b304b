"""LangChain callback handler: cost tracking without a decorator.

from llm_toll import LangChainCallback
llm = ChatOpenAI(model="gpt-4o", callbacks=[LangChainCallback(project="chain")])
"""

from __future__ import annotations

import warnings
from typing import Any

from llm_toll.exceptions import UsageWarning
from llm_toll.integrations._callback import BudgetedCallback
from llm_toll.usage import ExtractedUsage, Usage, UsageError


class LangChainCallback(BudgetedCallback):
    """Checks the budget when a model starts and records usage in ``on_llm_end``.

    It speaks LangChain's callback-handler protocol without importing LangChain: the
    attributes below are the ones LangChain's callback manager reads. ``raise_error`` lets
    a ``BudgetExceededError`` stop the run instead of being logged and ignored.
    """

    raise_error = True
    run_inline = True
    ignore_llm = False
    ignore_chat_model = False
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self._refuse_if_spent()

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], **kwargs: Any
    ) -> None:
        self._refuse_if_spent()

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        llm_output = getattr(response, "llm_output", None)
        if not isinstance(llm_output, dict):
            return
        token_usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
        if not isinstance(token_usage, dict) or not token_usage:
            return
        model = llm_output.get("model_name") or llm_output.get("model")
        try:
            usage = Usage.checked(
                token_usage.get("prompt_tokens", token_usage.get("input_tokens")),
                token_usage.get("completion_tokens", token_usage.get("output_tokens")),
            )
        except UsageError as exc:
            warnings.warn(f"llm_toll: LangChain usage unusable: {exc}", UsageWarning,
                          stacklevel=2)  # fmt: skip
            return
        found = ExtractedUsage(usage, model=model if isinstance(model, str) else None)
        self._record(found)

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        """A failed call reports no usage: nothing to record."""
