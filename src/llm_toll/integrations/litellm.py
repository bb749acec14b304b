"""LiteLLM callback: cost tracking without a decorator.

import litellm
from llm_toll import LiteLLMCallback
litellm.callbacks = [LiteLLMCallback(project="my-app", max_budget=10.0)]
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any

from llm_toll.exceptions import UsageWarning
from llm_toll.integrations._callback import BudgetedCallback
from llm_toll.usage import UsageError, extract_usage


class LiteLLMCallback(BudgetedCallback):
    """Records every LiteLLM completion; refuses new calls once ``max_budget`` is spent."""

    def log_pre_api_call(self, model: str, messages: Any, kwargs: dict[str, Any]) -> None:
        """Called by LiteLLM before a request: raises BudgetExceededError when spent."""
        self._refuse_if_spent()

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Called by LiteLLM after a successful completion: records its usage and cost."""
        try:
            found = extract_usage(_as_openai_shape(response_obj))
        except UsageError as exc:
            warnings.warn(f"llm_toll: LiteLLM response usage unusable: {exc}", UsageWarning,
                          stacklevel=2)  # fmt: skip
            return
        if found is None:
            return
        started = start_time if isinstance(start_time, datetime) else None
        self._record(found, started)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        # LiteLLM runs async callbacks on its own loop; recording is quick and thread-safe.
        self.log_success_event(kwargs, response_obj, start_time, end_time)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Failed completions cost nothing that LiteLLM reports: nothing to record."""


def _as_openai_shape(response: Any) -> Any:
    """LiteLLM's ModelResponse mirrors OpenAI's JSON; read it as the dict it dumps to."""
    dump = getattr(response, "model_dump", None) or getattr(response, "dict", None)
    return dump() if callable(dump) else response
