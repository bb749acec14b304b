"""The price context a response reports (the service tier served, batch processing) and
the units beyond the five counts (1-hour cache writes, audio tokens, web searches) are
priced as genai-prices prices them; a unit no price applies to is flagged, never dropped
in silence."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import genai_prices
import pytest

from llm_toll._budget.money import usd_to_nanos
from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing import PricingRegistry
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import GENAI_SOURCE, GENAI_VERSION, NOW, genai_usage


def genai_nanos_in(
    model: str,
    usage: Usage,
    provider_id: str,
    context: Mapping[str, str] | None = None,
) -> int:
    """genai-prices' public calculation of ``usage`` with its units, in ``context``."""
    raw = genai_usage(usage)
    for key, count in usage.units.items():
        setattr(raw, key, count)
    calc = genai_prices.calc_price(
        raw, model, provider_id=provider_id, genai_request_timestamp=NOW, price_context=context
    )
    return usd_to_nanos(calc.total_price)


PLAIN = Usage(12_000, 800, cache_read_input_tokens=3_000, reasoning_output_tokens=200)


@pytest.mark.parametrize(
    ("model", "provider", "genai_provider", "context"),
    [
        ("o3", "openai", "openai", {"service_tier": "flex"}),
        ("gpt-4o", "openai", "openai", {"service_tier": "priority"}),
        ("gpt-4o", "openai", "openai", {"service_tier": "default"}),
        ("gpt-4o-mini", "openai", "openai", {"processing": "batch"}),
        ("claude-sonnet-4-5", "anthropic", "anthropic", {"processing": "batch"}),
    ],
)
def test_the_context_reported_prices_the_call(
    registry: PricingRegistry,
    model: str,
    provider: str,
    genai_provider: str,
    context: dict[str, str],
) -> None:
    price = registry.price(model, PLAIN, provider=provider, at=NOW, context=context)
    assert price.cost_nanos == genai_nanos_in(model, PLAIN, genai_provider, context)
    assert (price.source, price.version, price.unpriced) == (GENAI_SOURCE, GENAI_VERSION, ())


def test_a_tier_that_changes_the_price_is_not_priced_at_the_standard_rate(
    registry: PricingRegistry,
) -> None:
    standard = registry.price("o3", PLAIN, provider="openai", at=NOW)
    flex = registry.price("o3", PLAIN, provider="openai", at=NOW, context={"service_tier": "flex"})
    priority = registry.price(
        "gpt-4o", PLAIN, provider="openai", at=NOW, context={"service_tier": "priority"}
    )
    assert flex.cost_nanos < standard.cost_nanos
    assert priority.cost_nanos > registry.price("gpt-4o", PLAIN, at=NOW).cost_nanos


@pytest.mark.parametrize(
    ("model", "genai_provider", "usage"),
    [
        (
            "claude-sonnet-4-5",
            "anthropic",
            Usage(
                5_000,
                400,
                cache_creation_input_tokens=2_000,
                units={"cache_write_1h_tokens": 1_500, "web_searches": 4},
            ),
        ),
        ("gemini-2.5-flash", "google", Usage(10_000, 300, units={"input_audio_tokens": 6_000})),
        ("gpt-4o", "openai", Usage(1_000, 100, units={"web_searches": 2})),
        (
            "gpt-audio",
            "openai",
            Usage(2_000, 500, units={"input_audio_tokens": 1_200, "output_audio_tokens": 300}),
        ),
    ],
)
def test_units_are_priced_as_genai_prices_prices_them(
    registry: PricingRegistry, model: str, genai_provider: str, usage: Usage
) -> None:
    price = registry.price(model, usage, provider=genai_provider, at=NOW)
    without_units = registry.price(model, Usage(usage.input_tokens, usage.output_tokens), at=NOW)
    assert price.cost_nanos == genai_nanos_in(model, usage, genai_provider)
    assert price.cost_nanos != without_units.cost_nanos  # each case has a unit with a price
    assert price.unpriced == ()


def test_a_unit_without_a_price_is_flagged_and_warned_about_once_per_model(
    registry: PricingRegistry,
) -> None:
    usage = Usage(1_000, 100, units={"web_searches": 3})
    with pytest.warns(PricingMatrixOutdatedWarning, match="web_searches of model 'gpt-3.5-turbo'"):
        first = registry.price("gpt-3.5-turbo", usage, provider="openai", at=NOW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = registry.price("gpt-3.5-turbo", usage, provider="openai", at=NOW)
    assert first == again
    assert first.unpriced == ("web_searches",)
    assert first.known  # the tokens are priced: the cost is part of the bill, not none
    assert first.cost_nanos == registry.price("gpt-3.5-turbo", Usage(1_000, 100)).cost_nanos


def test_a_unit_genai_prices_does_not_know_is_flagged(registry: PricingRegistry) -> None:
    usage = Usage(1_000, 100, units={"holograms": 2})
    with pytest.warns(PricingMatrixOutdatedWarning, match="holograms"):
        price = registry.price("gpt-4o", usage, provider="openai", at=NOW)
    assert price.unpriced == ("holograms",)
    assert price.cost_nanos == registry.price("gpt-4o", Usage(1_000, 100), at=NOW).cost_nanos


def test_an_override_prices_token_parts_as_tokens_and_flags_other_units(
    registry: PricingRegistry,
) -> None:
    registry.register_model("house-model", 1e-6, 2e-6)
    with pytest.warns(PricingMatrixOutdatedWarning, match="web_searches"):
        price = registry.price(
            "house-model",
            Usage(1_000, 100, units={"input_audio_tokens": 400, "web_searches": 1}),
        )
    assert price.cost_nanos == 1_000 * 1_000 + 100 * 2_000
    assert (price.source, price.unpriced) == ("override", ("web_searches",))


def test_a_unit_larger_than_the_count_it_is_part_of_is_refused() -> None:
    from llm_toll.usage._base import UsageError

    with pytest.raises(UsageError, match="input_audio_tokens"):
        Usage.checked(100, 10, units={"input_audio_tokens": 101})
    with pytest.raises(UsageError, match="negative"):
        Usage.checked(100, 10, units={"web_searches": -1})
