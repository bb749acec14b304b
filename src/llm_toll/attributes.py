"""Names of span attributes, events and their values: one table for code, dashboards and docs."""

from __future__ import annotations

from typing import Final

# OpenTelemetry GenAI semantic conventions.
OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
REASONING_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"
# Proposed GenAI cost convention.
COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
COST_SOURCE: Final = "gen_ai.usage.cost.source"
ERROR_TYPE: Final = "error.type"

# llm_toll's own.
PROJECT: Final = "llm_toll.project"
BUDGET_KEY: Final = "llm_toll.budget.key"
BUDGET_LIMIT: Final = "llm_toll.budget.limit"
BUDGET_SPENT: Final = "llm_toll.budget.spent"
BUDGET_PERIOD: Final = "llm_toll.budget.period"
BUDGET_THRESHOLD: Final = "llm_toll.budget.threshold"
PRICE_KNOWN: Final = "llm_toll.price.known"
PRICE_SOURCE: Final = "llm_toll.price.source"
USAGE_ESTIMATED: Final = "llm_toll.usage.estimated"

# Span events.
EVENT_BUDGET_EXCEEDED: Final = "llm_toll.budget.exceeded"
EVENT_BUDGET_THRESHOLD: Final = "llm_toll.budget.threshold"

DEFAULT_OPERATION: Final = "chat"
CURRENCY: Final = "USD"


def period_label(reset: str | None) -> str:
    """The bounded value of ``llm_toll.budget.period``: the reset cadence, not the date."""
    return reset or "lifetime"
