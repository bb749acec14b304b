"""LiteLLM callback: cost tracking without a decorator.

import litellm
from llm_toll import LiteLLMCallback
litellm.callbacks = [LiteLLMCallback(project="my-app", max_budget=10.0)]

LiteLLM calls back only instances of its ``CustomLogger``: a callback made once litellm is
imported is one (llm_toll does not import litellm itself, which takes seconds). The cost
LiteLLM worked out (``response_cost``) is recorded as the call's cost, llm_toll's own price
beside it.
"""

from __future__ import annotations

import sys
import threading
import warnings
from dataclasses import replace
from datetime import datetime
from typing import Any

from llm_toll.exceptions import UsageWarning
from llm_toll.integrations._callback import BudgetedCallback
from llm_toll.usage import UsageError, extract_usage
from llm_toll.usage.provider_cost import checked_cost


class LiteLLMCallback(BudgetedCallback):
    """Records every LiteLLM completion; refuses new calls once ``max_budget`` is spent."""

    def __new__(cls, *args: Any, **kwargs: Any) -> LiteLLMCallback:
        if "litellm" in sys.modules:
            cls = _as_custom_logger(cls)
        return super().__new__(cls)

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
        cost = _response_cost(kwargs, response_obj)
        if cost is not None:
            found = replace(found, provider_cost_nanos=cost)
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


def _response_cost(kwargs: dict[str, Any], response: Any) -> int | None:
    """LiteLLM's ``response_cost`` (USD) of a call in nano-USD: from the callback's kwargs,
    else the response's ``_hidden_params``; None when LiteLLM priced nothing."""
    value = kwargs.get("response_cost") if isinstance(kwargs, dict) else None
    if value is None:
        hidden = getattr(response, "_hidden_params", None)
        value = hidden.get("response_cost") if isinstance(hidden, dict) else None
    return None if value is None else checked_cost("LiteLLM response_cost", value)


_lock = threading.Lock()
_logger_classes: dict[type[LiteLLMCallback], type[LiteLLMCallback]] = {}


def _as_custom_logger(cls: type[LiteLLMCallback]) -> type[LiteLLMCallback]:
    """``cls`` (LiteLLMCallback or an app's subclass) with LiteLLM's ``CustomLogger`` as a
    base too, made once per class."""
    from litellm.integrations.custom_logger import CustomLogger

    if issubclass(cls, CustomLogger):
        return cls
    with _lock:
        made = _logger_classes.get(cls)
        if made is None:

            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
                cls.__init__(self, *args, **kwargs)
                CustomLogger.__init__(self)

            made = type(
                cls.__name__,
                (cls, CustomLogger),
                {"__init__": __init__, "__module__": cls.__module__},
            )
            _logger_classes[cls] = made
        return made
