"""llm_toll: know what every LLM call costs, see it in OpenTelemetry, stop at a budget."""

from llm_toll.decorator import set_reporter, set_store, track_costs
from llm_toll.exceptions import (
    BudgetExceededError,
    LocalRateLimitError,
    PricingMatrixOutdatedWarning,
)
from llm_toll.integrations.langchain import LangChainCallback
from llm_toll.integrations.litellm import LiteLLMCallback
from llm_toll.pricing import PricingRegistry, default_registry
from llm_toll.processor import CostSpanProcessor
from llm_toll.rate_limiter import RateLimiter
from llm_toll.remote_pricing import update_pricing
from llm_toll.reporter import CostReporter
from llm_toll.store import BaseStore, SQLiteStore, UsageStore, create_store
from llm_toll.telemetry import setup_telemetry
from llm_toll.version import VERSION as __version__

__all__ = [
    "BaseStore",
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
    "UsageStore",
    "__version__",
    "create_store",
    "default_registry",
    "set_reporter",
    "set_store",
    "setup_telemetry",
    "track_costs",
    "update_pricing",
]
