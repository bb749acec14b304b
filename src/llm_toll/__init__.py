"""llm_toll: know what every LLM call costs, see it in OpenTelemetry, stop at a budget.

The public names below are the whole API (pinned by the test suite). Each is imported on
first use, so ``import llm_toll`` costs next to nothing and a program pays only for what it
touches: ``track_costs`` does not load the OpenTelemetry SDK or genai-prices' data until a
decorated function needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_toll._batch.record import BatchSummary, record_batch
    from llm_toll._budget.writer import CostSpanProcessor
    from llm_toll._call.scope import instrument, run, uninstrument
    from llm_toll.decorator import set_reporter, set_store, track_costs
    from llm_toll.exceptions import (
        BudgetExceededError,
        LocalRateLimitError,
        PricingMatrixOutdatedWarning,
        UnpricedModelError,
    )
    from llm_toll.integrations.langchain import LangChainCallback
    from llm_toll.integrations.litellm import LiteLLMCallback
    from llm_toll.pricing import PricingRegistry, default_registry
    from llm_toll.pricing._update import update_pricing
    from llm_toll.rate_limiter import RateLimiter
    from llm_toll.reporter import CostReporter
    from llm_toll.store import BaseStore, SQLiteStore, UsageStore, create_store
    from llm_toll.telemetry import setup_telemetry

    __version__: str

# public name -> the module that defines it
_WHERE = {
    "BaseStore": "llm_toll.store",
    "BatchSummary": "llm_toll._batch.record",
    "BudgetExceededError": "llm_toll.exceptions",
    "CostReporter": "llm_toll.reporter",
    "CostSpanProcessor": "llm_toll._budget.writer",
    "LangChainCallback": "llm_toll.integrations.langchain",
    "LiteLLMCallback": "llm_toll.integrations.litellm",
    "LocalRateLimitError": "llm_toll.exceptions",
    "PricingMatrixOutdatedWarning": "llm_toll.exceptions",
    "PricingRegistry": "llm_toll.pricing",
    "RateLimiter": "llm_toll.rate_limiter",
    "SQLiteStore": "llm_toll.store",
    "UnpricedModelError": "llm_toll.exceptions",
    "UsageStore": "llm_toll.store",
    "__version__": "llm_toll._version",
    "create_store": "llm_toll.store",
    "default_registry": "llm_toll.pricing",
    "instrument": "llm_toll._call.scope",
    "record_batch": "llm_toll._batch.record",
    "run": "llm_toll._call.scope",
    "uninstrument": "llm_toll._call.scope",
    "set_reporter": "llm_toll.decorator",
    "set_store": "llm_toll.decorator",
    "setup_telemetry": "llm_toll.telemetry",
    "track_costs": "llm_toll.decorator",
    "update_pricing": "llm_toll.pricing._update",
}
# Where the module's own name differs from the public one.
_AS = {"__version__": "VERSION"}

__all__ = [
    "BaseStore",
    "BatchSummary",
    "BudgetExceededError",
    "CostReporter",
    "CostSpanProcessor",
    "LangChainCallback",
    "LiteLLMCallback",
    "LocalRateLimitError",
    "PricingMatrixOutdatedWarning",
    "PricingRegistry",
    "RateLimiter",
    "SQLiteStore",
    "UnpricedModelError",
    "UsageStore",
    "__version__",
    "create_store",
    "default_registry",
    "instrument",
    "record_batch",
    "run",
    "set_reporter",
    "set_store",
    "setup_telemetry",
    "track_costs",
    "uninstrument",
    "update_pricing",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_toll' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _AS.get(name, name))
    globals()[name] = value  # later reads are plain module attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
