"""Costs equal genai-prices' own calculation to the nano-USD: cached and reasoning tokens
at their own rates, and tiered prices on both sides of a threshold."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest
from genai_prices.types import ModelPrice, TieredPrices

from llm_toll._budget.money import usd_to_nanos
from llm_toll.pricing import Price, PricingRegistry
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import GENAI_SOURCE, GENAI_VERSION, MIXED, NOW, genai_nanos

# -- genai-prices, to the nano-USD ---------------------------------------------------------


def model_price(model: str, provider_id: str | None = None) -> ModelPrice:
    calc = genai_prices.calc_price(
        genai_prices.Usage(), model, provider_id=provider_id, genai_request_timestamp=NOW
    )
    return calc.model_price


def per_token(value: object) -> Decimal:
    assert isinstance(value, Decimal)
    return value / 1_000_000


@pytest.mark.parametrize(
    ("model", "provider", "genai_provider"),
    [
        ("gpt-4o", "openai", "openai"),
        ("gpt-4o-mini-2024-07-18", "openai", "openai"),
        ("o3", "openai", "openai"),
        ("claude-sonnet-4-20250514", "anthropic", "anthropic"),
        ("claude-opus-4-1", "anthropic", "anthropic"),
        ("gemini-2.5-flash", "gcp.gemini", "google"),
        ("gemini-2.5-pro", "gcp.vertex_ai", "google"),
        ("gpt-4o", "azure.ai.openai", "azure"),
    ],
)
def test_cost_equals_genai_prices(
    registry: PricingRegistry, model: str, provider: str, genai_provider: str
) -> None:
    price = registry.price(model, MIXED, provider=provider)
    assert price == Price(
        genai_nanos(model, MIXED, provider_id=genai_provider), True, GENAI_SOURCE, GENAI_VERSION
    )
    assert price.cost_nanos > 0


def test_cached_tokens_are_priced_once_at_their_own_rate(registry: PricingRegistry) -> None:
    prices = model_price("claude-sonnet-4-0")
    uncached = (
        MIXED.input_tokens - MIXED.cache_read_input_tokens - MIXED.cache_creation_input_tokens
    )
    expected = (
        uncached * per_token(prices.input_mtok)
        + MIXED.cache_read_input_tokens * per_token(prices.cache_read_mtok)
        + MIXED.cache_creation_input_tokens * per_token(prices.cache_write_mtok)
        + MIXED.output_tokens * per_token(prices.output_mtok)  # reasoning is output
    )
    price = registry.price("claude-sonnet-4-20250514", MIXED, provider="anthropic")
    assert price.cost_nanos == usd_to_nanos(expected)


def test_reasoning_tokens_use_their_own_price_where_genai_prices_has_one(
    registry: PricingRegistry,
) -> None:
    prices = model_price("sonar-deep-research", "perplexity")
    assert prices.output_reasoning_mtok is not None
    usage = Usage(input_tokens=10_000, output_tokens=6_000, reasoning_output_tokens=4_000)
    expected = (
        10_000 * per_token(prices.input_mtok)
        + 2_000 * per_token(prices.output_mtok)
        + 4_000 * per_token(prices.output_reasoning_mtok)
    )
    price = registry.price("sonar-deep-research", usage, provider="perplexity")
    assert price.cost_nanos == usd_to_nanos(expected)
    assert price.cost_nanos == genai_nanos("sonar-deep-research", usage, provider_id="perplexity")
    plain = registry.price("sonar-deep-research", Usage(10_000, 6_000), provider="perplexity")
    assert plain.cost_nanos != price.cost_nanos


def test_tiered_price_on_both_sides_of_its_threshold(registry: PricingRegistry) -> None:
    prices = model_price("gemini-2.5-pro")
    assert isinstance(prices.input_mtok, TieredPrices)
    threshold = prices.input_mtok.tiers[0].start
    below = Usage(threshold, 1_000, cache_read_input_tokens=50_000, reasoning_output_tokens=200)
    above = Usage(threshold + 1, 1_000, cache_read_input_tokens=50_000, reasoning_output_tokens=200)

    cost_below = registry.price("gemini-2.5-pro", below, provider="gcp.gemini").cost_nanos
    cost_above = registry.price("gemini-2.5-pro", above, provider="gcp.gemini").cost_nanos

    assert cost_below == genai_nanos("gemini-2.5-pro", below, provider_id="google")
    assert cost_above == genai_nanos("gemini-2.5-pro", above, provider_id="google")
    # Crossing the threshold re-prices every token, not just the one above it.
    one_base_token = usd_to_nanos(per_token(prices.input_mtok.base))
    assert cost_above - cost_below > 10 * one_base_token
