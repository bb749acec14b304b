"""Overrides (``register_model``): they win over genai-prices, price exactly, match by
prefix at boundaries, drop cached lookups, and refuse bad prices."""

from __future__ import annotations

import pytest

from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing import Price, PricingRegistry
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import GENAI_SOURCE

# -- overrides ---------------------------------------------------------------------------------


def test_override_wins_over_genai_prices_and_is_exact(registry: PricingRegistry) -> None:
    registry.register_model("gpt-4o", 2.5e-06, 1e-05)
    price = registry.price("gpt-4o", Usage(3, 7), provider="openai")
    # 3 x 2500 + 7 x 10000 nano-USD: floats' repr, never float products.
    assert price == Price(77_500, True, "override")


def test_override_prices_cached_tokens_at_input_price_unless_given(
    registry: PricingRegistry,
) -> None:
    registry.register_model("plain", 1e-06, 2e-06)
    registry.register_model(
        "cached",
        1e-06,
        2e-06,
        cache_read_cost_per_token=1e-07,
        cache_write_cost_per_token=1.25e-06,
    )
    usage = Usage(1_000, 10, cache_read_input_tokens=400, cache_creation_input_tokens=100)
    assert registry.price("plain", usage).cost_nanos == 1_000 * 1_000 + 10 * 2_000
    assert registry.price("cached", usage).cost_nanos == (
        500 * 1_000 + 400 * 100 + 100 * 1_250 + 10 * 2_000
    )


def test_override_prefixes_match_at_boundaries_longest_first(registry: PricingRegistry) -> None:
    registry.register_model("acme", 1e-06, 0)
    registry.register_model("acme-large", 3e-06, 0)
    registry.register_model("myorg/", 5e-06, 0)
    one = Usage(1, 0)
    assert registry.price("acme-large-2025-01-01", one).cost_nanos == 3_000
    assert registry.price("acme-small", one).cost_nanos == 1_000
    assert registry.price("acme/v2", one).cost_nanos == 1_000
    assert registry.price("myorg/anything", one).cost_nanos == 5_000
    with pytest.warns(PricingMatrixOutdatedWarning):
        assert registry.price("acmes", one) == Price(0, False, "unknown")


def test_override_prefix_beats_genai_prices(registry: PricingRegistry) -> None:
    registry.register_model("o3", 1e-06, 1e-06)
    assert registry.price("o3-mini", Usage(1, 1)) == Price(2_000, True, "override")
    with pytest.warns(PricingMatrixOutdatedWarning):
        assert registry.price("o3000", Usage(1, 1)).source != "override"


def test_registering_drops_cached_lookups(registry: PricingRegistry) -> None:
    before = registry.price("gpt-4o", Usage(1_000, 0))
    registry.register_model("gpt-4o", 1e-06, 0)
    after = registry.price("gpt-4o", Usage(1_000, 0))
    assert before.source == GENAI_SOURCE
    assert after == Price(1_000_000, True, "override")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_cost_per_token": -1e-06},
        {"output_cost_per_token": -1e-06},
        {"cache_read_cost_per_token": -1e-06},
        {"cache_write_cost_per_token": -1e-06},
        {"input_cost_per_token": float("nan")},
        {"output_cost_per_token": float("inf")},
    ],
)
def test_bad_override_raises_value_error(
    registry: PricingRegistry, kwargs: dict[str, float]
) -> None:
    arguments: dict[str, float] = {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match="cost_per_token"):
        registry.register_model("m", **arguments)
    assert "m" not in registry.list_models()


def test_negative_fallback_raises_value_error(registry: PricingRegistry) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        registry.set_fallback_pricing(-1e-06, 0)
