"""LangChain callback handler: cost tracking without a decorator.

from llm_toll import LangChainCallback
llm = ChatOpenAI(model="gpt-4o", callbacks=[LangChainCallback(project="chain")])
"""

from __future__ import annotations

import warnings
from typing import Any

from llm_toll.exceptions import UsageWarning
from llm_toll.integrations._record import callback_plan, record, refuse_if_spent
from llm_toll.reporter import CostReporter
from llm_toll.runtime import set_reporter
from llm_toll.store import BaseStore
from llm_toll.usage import ExtractedUsage, Usage, UsageError


class LangChainCallback:
    """Checks the budget in ``on_llm_start`` and records usage in ``on_llm_end``."""

    def __init__(
        self,
        *,
        project: str = "default",
        max_budget: float | None = None,
        store: BaseStore | None = None,
        reporter: CostReporter | None = None,
    ) -> None:
        self._plan = callback_plan("LangChainCallback", project, max_budget)
        self._store = store
        if reporter is not None:
            set_reporter(reporter)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        refuse_if_spent(self._plan, self._store)

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
        record(self._plan, found, self._store)

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        """A failed call reports no usage: nothing to record."""
