"""Repeat calls, priced from the quote kept per model and price context, cost exactly what
the first call's full path and genai-prices say, and the quotes follow every price change:
user prices set at runtime, the fallback, and refreshed genai-prices data."""

from __future__ import annotations

import copy
import json
import random
import warnings
from collections.abc import Mapping

import genai_prices
import pytest

from llm_toll._budget.money import MAX_CALL_COST_NANOS, usd_to_nanos
from llm_toll._budget.priced import priced_call
from llm_toll.exceptions import PricingMatrixOutdatedWarning, UsageWarning
from llm_toll.pricing import Price, PricingRegistry, default_registry
from llm_toll.pricing._update import update_pricing
from llm_toll.usage._base import ExtractedUsage, Usage
from tests.unit.pricing.helpers import (
    GENAI_SOURCE,
    GENAI_VERSION,
    NOW,
    SERVED_PROVIDERS,
    PriceServer,
    genai_usage,
)


def genai_nanos_in(model: str, usage: Usage, provider_id: str, context: Mapping[str, str]) -> int:
    calc = genai_prices.calc_price(
        genai_usage(usage),
        model,
        provider_id=provider_id,
        genai_request_timestamp=NOW,
        price_context=context or None,
    )
    return usd_to_nanos(calc.total_price)


def random_usage(rng: random.Random) -> Usage:
    input_tokens = rng.randint(0, 450_000)
    read = rng.randint(0, input_tokens)
    write = rng.randint(0, input_tokens - read)
    output = rng.randint(0, 40_000)
    return Usage(input_tokens, output, read, write, rng.randint(0, output))


@pytest.mark.parametrize(
    ("model", "provider", "context"),
    [
        ("gpt-4o", "openai", {}),
        ("gpt-4o", "openai", {"service_tier": "default"}),  # changes no price: quoted
        ("o3", "openai", {"service_tier": "flex"}),  # a variant sets prices: never quoted
        ("claude-sonnet-4-0", "anthropic", {}),
        ("gemini-2.5-pro", "google", {}),  # tiers above 200k input tokens
    ],
)
def test_repeat_calls_cost_what_genai_prices_says(
    registry: PricingRegistry, model: str, provider: str, context: dict[str, str]
) -> None:
    rng = random.Random(f"quotes-{model}-{context}")
    for _ in range(150):
        usage = random_usage(rng)
        expected = Price(
            genai_nanos_in(model, usage, provider, context), True, GENAI_SOURCE, GENAI_VERSION
        )
        # The first call of a key takes the full path, the next ones the quote.
        for _ in range(3):
            assert registry.price(model, usage, provider=provider, at=NOW, context=context) == (
                expected
            ), usage


def test_a_price_set_at_runtime_replaces_a_quoted_one(registry: PricingRegistry) -> None:
    usage = Usage(1_000, 100, cache_read_input_tokens=200)
    for _ in range(3):
        assert registry.price("gpt-4o", usage, provider="openai").source == GENAI_SOURCE

    registry.register_model("gpt-4o", 1e-6, 2e-6, cache_read_cost_per_token=5e-7)
    for _ in range(3):
        assert registry.price("gpt-4o", usage, provider="openai") == Price(
            800 * 1_000 + 200 * 500 + 100 * 2_000, True, "override"
        )

    registry.load_remote_pricing({"gpt-4o": (3e-6, 4e-6)})
    for _ in range(3):
        assert registry.price("gpt-4o", usage, provider="openai") == Price(
            1_000 * 3_000 + 100 * 4_000, True, "override"
        )


def test_the_fallback_replaces_a_quoted_unknown_price(registry: PricingRegistry) -> None:
    with pytest.warns(PricingMatrixOutdatedWarning, match="toll-nobody"):
        first = registry.price("toll-nobody", Usage(10, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per model, quoted or not
        repeats = [registry.price("toll-nobody", Usage(10, 10)) for _ in range(3)]
    assert first == repeats[0] == repeats[2] == Price(0, False, "unknown")

    registry.set_fallback_pricing(1e-6, 2e-6)
    for _ in range(3):
        assert registry.price("toll-nobody", Usage(10, 10)) == Price(30_000, True, "fallback")


def test_refreshed_prices_replace_quoted_ones_in_every_registry(
    serve: list[PriceServer],
) -> None:
    quoted = PricingRegistry()  # never told: notices the new data by itself
    usage = Usage(1_000, 10)
    cheaper = copy.deepcopy(SERVED_PROVIDERS)
    cheaper[0]["models"][0]["prices"] = {"input_mtok": "0.5", "output_mtok": "1"}  # type: ignore[index]
    for providers, nanos in (
        (SERVED_PROVIDERS, 1_000 * 1_500 + 10 * 4_000),
        (cheaper, 1_000 * 500 + 10 * 1_000),
    ):
        server = PriceServer(json.dumps(providers).encode())
        serve.append(server)
        assert update_pricing(url=server.url, ttl_hours=0, registry=PricingRegistry()) is True
        for _ in range(3):
            price = quoted.price("toll-model", usage)
            assert (price.cost_nanos, price.known) == (nanos, True)


def test_calls_the_quote_cannot_price_still_take_the_full_path(
    registry: PricingRegistry,
) -> None:
    for _ in range(3):
        registry.price("gpt-4o", Usage(1_000, 100), provider="openai")

    with pytest.warns(PricingMatrixOutdatedWarning, match="toll_unit_tokens"):
        flagged = registry.price("gpt-4o", Usage(1_000, 100, units={"toll_unit_tokens": 5}))
    assert flagged.unpriced == ("toll_unit_tokens",)
    with pytest.warns(UsageWarning, match="inconsistent"):
        refused = registry.price("gpt-4o", Usage(1_000, 100, cache_read_input_tokens=2_000))
    assert refused == Price(0, False, "unknown")


def test_a_repeat_call_above_the_record_limit_is_clamped() -> None:
    found = ExtractedUsage(Usage(1_000_000, 0), model="toll-dear", provider="openai")
    default_registry.register_model("toll-dear", 1e6, 1e6)  # a name of this test only
    for _ in range(3):
        priced = priced_call(found, project="p", model="toll-dear", started_at=NOW)
        assert priced.clamped
        assert (priced.call.cost_nanos, priced.call.price_known) == (MAX_CALL_COST_NANOS, False)
        assert priced.call.price_source == "override"


@pytest.mark.parametrize(
    ("model", "provider", "context"),
    [
        ("o3", "openai", {"service_tier": "flex"}),
        ("claude-haiku-4-5", "anthropic", {"processing": "batch"}),  # one price at any time
    ],
)
def test_a_context_with_prices_of_its_own_never_takes_the_standard_quote(
    registry: PricingRegistry, model: str, provider: str, context: dict[str, str]
) -> None:
    usage = Usage(12_000, 800, cache_read_input_tokens=3_000)
    for _ in range(3):  # quotes the standard price and derives its linear price
        standard = registry.price(model, usage, provider=provider, at=NOW)
    for _ in range(3):
        price = registry.price(model, usage, provider=provider, at=NOW, context=context)
        assert price.cost_nanos == genai_nanos_in(model, usage, provider, context)
        assert price.cost_nanos < standard.cost_nanos
