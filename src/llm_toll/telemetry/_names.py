"""Names of span attributes and events: one table for code, dashboards and docs (the metrics'
names are those of their instruments, in ``telemetry.metrics``).

GenAI names come from the OpenTelemetry semantic-conventions package wherever it defines
them; the cost attributes follow the proposed GenAI cost convention, which the package does
not define yet; the rest is llm_toll's own namespace.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes

from llm_toll._budget.periods import LIFETIME_SHOWN, Reset

# OpenTelemetry GenAI semantic conventions.
OPERATION: Final = gen_ai.GEN_AI_OPERATION_NAME
PROVIDER: Final = gen_ai.GEN_AI_PROVIDER_NAME
REQUEST_MODEL: Final = gen_ai.GEN_AI_REQUEST_MODEL
REQUEST_MAX_TOKENS: Final = gen_ai.GEN_AI_REQUEST_MAX_TOKENS
RESPONSE_MODEL: Final = gen_ai.GEN_AI_RESPONSE_MODEL
RESPONSE_ID: Final = gen_ai.GEN_AI_RESPONSE_ID
INPUT_TOKENS: Final = gen_ai.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS: Final = gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
CACHE_READ_TOKENS: Final = gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
CACHE_CREATION_TOKENS: Final = gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
REASONING_TOKENS: Final = gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
TOKEN_TYPE: Final = gen_ai.GEN_AI_TOKEN_TYPE
ERROR_TYPE: Final = error_attributes.ERROR_TYPE
# GenAI semantic conventions v0.1.0 (the semantic-conventions-genai release, which the
# semantic-conventions package does not carry yet): emitted under
# OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (see ``telemetry.semconv``),
# in place of CACHE_CREATION_TOKENS; the per-modality counts are parts of the counts above.
CACHE_WRITE_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
AUDIO_INPUT_TOKENS: Final = "gen_ai.usage.audio.input_tokens"
AUDIO_OUTPUT_TOKENS: Final = "gen_ai.usage.audio.output_tokens"
AUDIO_CACHE_READ_TOKENS: Final = "gen_ai.usage.audio.cache_read.input_tokens"
IMAGE_INPUT_TOKENS: Final = "gen_ai.usage.image.input_tokens"
IMAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.image.output_tokens"
IMAGE_CACHE_READ_TOKENS: Final = "gen_ai.usage.image.cache_read.input_tokens"
TOKEN_MODALITY: Final = "gen_ai.token.modality"
"""On the v0.1.0 token counters: ``text``, ``audio``, ``image`` or ``unknown``."""

# A usage unit (genai-prices' key, as in ``Usage.units``) that is a modality's part of a
# count: its span attribute, its modality, and the count it is part of.
MODALITY_UNITS: Final[dict[str, tuple[str, str, str]]] = {
    "input_audio_tokens": (AUDIO_INPUT_TOKENS, "audio", "input"),
    "input_image_tokens": (IMAGE_INPUT_TOKENS, "image", "input"),
    "output_audio_tokens": (AUDIO_OUTPUT_TOKENS, "audio", "output"),
    "output_image_tokens": (IMAGE_OUTPUT_TOKENS, "image", "output"),
    "cache_audio_read_tokens": (AUDIO_CACHE_READ_TOKENS, "audio", "cache_read"),
    "cache_image_read_tokens": (IMAGE_CACHE_READ_TOKENS, "image", "cache_read"),
}
# Proposed GenAI cost convention (not in the semantic-conventions package yet).
COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
COST_SOURCE: Final = "gen_ai.usage.cost.source"

# llm_toll's own.
PROJECT: Final = "llm_toll.project"
BUDGET_KEY: Final = "llm_toll.budget.key"
BUDGET_LIMIT: Final = "llm_toll.budget.limit"
BUDGET_SPENT: Final = "llm_toll.budget.spent"
BUDGET_PERIOD: Final = "llm_toll.budget.period"
BUDGET_THRESHOLD: Final = "llm_toll.budget.threshold"
BUDGET_SCOPE: Final = "llm_toll.budget.scope"
"""On a ``llm_toll.budget.exceeded`` event of a run's cap: ``run``."""
PRICE_KNOWN: Final = "llm_toll.price.known"
PRICE_SOURCE: Final = "llm_toll.price.source"
PRICE_VERSION: Final = "llm_toll.price.version"
PRICE_PARTIAL: Final = "llm_toll.price.partial"
"""True when a reported unit had no price: the cost is only part of the bill."""
PRICE_UNPRICED_UNITS: Final = "llm_toll.price.unpriced_units"
COST_LOCAL: Final = "llm_toll.cost.local"
"""llm_toll's own price of a call whose cost is the provider's figure."""
USAGE_ESTIMATED: Final = "llm_toll.usage.estimated"
# On a run's span only: never gen_ai.usage.cost.*, which a per-trace sum would count twice.
RUN_COST: Final = "llm_toll.run.cost"
RUN_REQUESTS: Final = "llm_toll.run.requests"
RUN_MAX_COST: Final = "llm_toll.run.max_cost"
# Strict requests: the worst case reserved (USD), whether llm_toll lowered (or set) the
# request's output cap, and the cap the request asked for when it did.
STRICT_RESERVED: Final = "llm_toll.strict.reserved"
STRICT_CAP_LOWERED: Final = "llm_toll.strict.cap_lowered"
STRICT_REQUESTED_MAX_TOKENS: Final = "llm_toll.strict.requested_max_tokens"

# Span events.
EVENT_BUDGET_EXCEEDED: Final = "llm_toll.budget.exceeded"
EVENT_BUDGET_THRESHOLD: Final = "llm_toll.budget.threshold"

DEFAULT_OPERATION: Final = "chat"
CURRENCY: Final = "USD"


def period_label(reset: Reset | None) -> str:
    """The bounded value of ``llm_toll.budget.period``: the reset cadence, not the date."""
    return reset or LIFETIME_SHOWN
