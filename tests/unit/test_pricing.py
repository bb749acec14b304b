"""Pricing: genai-prices to the nano-USD, the fast path, overrides, local and unknown models."""

from __future__ import annotations

import json
import random
import threading
import warnings
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import genai_prices
import pytest
from genai_prices.data_snapshot import set_custom_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint, TieredPrices

from llm_toll._budget.money import usd_to_nanos
from llm_toll.exceptions import PricingMatrixOutdatedWarning, UsageWarning
from llm_toll.pricing import LOCAL_MODEL_PREFIXES, Price, PricingRegistry, default_registry
from llm_toll.pricing._genai import GenaiModel, current_snapshot, find_model, genai_provider_id
from llm_toll.pricing._linear import LinearPrice
from llm_toll.pricing.update import update_pricing
from llm_toll.usage.base import Usage

GENAI_SOURCE = f"genai-prices {genai_prices.__version__}"
NOW = datetime.now(timezone.utc)


def genai_usage(usage: Usage) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        output_tokens=usage.output_tokens,
        output_reasoning_tokens=usage.reasoning_output_tokens,
    )


def genai_nanos(
    model: str, usage: Usage, *, provider_id: str | None = None, at: datetime = NOW
) -> int:
    """What genai-prices' public calc_price says, in nano-USD."""
    calc = genai_prices.calc_price(
        genai_usage(usage), model, provider_id=provider_id, genai_request_timestamp=at
    )
    return usd_to_nanos(calc.total_price)


def model_price(model: str, provider_id: str | None = None) -> ModelPrice:
    calc = genai_prices.calc_price(
        genai_prices.Usage(), model, provider_id=provider_id, genai_request_timestamp=NOW
    )
    return calc.model_price


def per_token(value: object) -> Decimal:
    assert isinstance(value, Decimal)
    return value / 1_000_000


@pytest.fixture(autouse=True)
def bundled_prices() -> Iterator[None]:
    """Every test starts and ends with the prices genai-prices ships."""
    set_custom_snapshot(None)
    yield
    set_custom_snapshot(None)


@pytest.fixture
def registry() -> PricingRegistry:
    return PricingRegistry()


# -- genai-prices, to the nano-USD ---------------------------------------------------------

MIXED = Usage(
    input_tokens=48_213,
    output_tokens=3_917,
    cache_read_input_tokens=20_480,
    cache_creation_input_tokens=4_099,
    reasoning_output_tokens=1_201,
)


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
    assert price == Price(genai_nanos(model, MIXED, provider_id=genai_provider), True, GENAI_SOURCE)
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


# -- the fast path ---------------------------------------------------------------------------


def random_usage(rng: random.Random, max_input: int) -> Usage:
    input_tokens = rng.randint(0, max_input)
    read = rng.randint(0, input_tokens)
    write = rng.randint(0, input_tokens - read)
    output = rng.randint(0, 40_000)
    return Usage(input_tokens, output, read, write, rng.randint(0, output))


FAST_MODELS = [
    ("gpt-4o", "openai"),
    ("o3", "openai"),
    ("claude-sonnet-4-0", "anthropic"),
    ("claude-opus-4-1", "anthropic"),
    ("gemini-2.5-flash", "google"),
    ("gemini-2.5-pro", "google"),
    ("sonar-deep-research", "perplexity"),
    ("sonar", "perplexity"),  # a price per request as well as per token
]


@pytest.mark.parametrize(("model", "genai_provider"), FAST_MODELS)
def test_fast_path_agrees_with_genai_prices_over_random_usages(
    model: str, genai_provider: str
) -> None:
    found = find_model(current_snapshot(), model, genai_provider)
    assert found is not None
    rng = random.Random(f"pricing-{model}")
    for _ in range(300):
        usage = random_usage(rng, max_input=450_000)
        linear = found.linear_price(NOW, usage.input_tokens)
        assert linear is not None, "the fast path was not used"
        assert linear.nanos(usage) == genai_nanos(model, usage, provider_id=genai_provider), usage


def test_fast_path_agrees_with_genai_prices_for_every_model_in_its_data() -> None:
    """Every model of the installed genai-prices' data (which differs between releases, e.g.
    0.1.13 on Python 3.10 and 0.2.x after), against that model's own calculation: the one
    ``calc_price`` makes once it has found the model, as names need not find every model."""
    rng = random.Random("pricing-every-model")
    models = 0
    for provider in current_snapshot().providers:
        for info in provider.models:
            models += 1
            found = GenaiModel(provider, info)
            for _ in range(3):
                usage = random_usage(rng, max_input=1_200_000)
                calc = info.calc_price(genai_usage(usage), provider, genai_request_timestamp=NOW)
                assert found.nanos(usage, NOW) == usd_to_nanos(calc.total_price), (
                    provider.id,
                    info.id,
                    usage,
                )
    assert models > 1_000


def test_fast_path_registry_agrees_over_random_usages(registry: PricingRegistry) -> None:
    rng = random.Random(20_260_101)
    for _ in range(500):
        model, provider = rng.choice(FAST_MODELS)
        usage = random_usage(rng, max_input=450_000)
        assert registry.price(model, usage, provider=provider).cost_nanos == genai_nanos(
            model, usage, provider_id=provider
        )


def test_linear_price_rounds_once_half_to_even() -> None:
    def per_token_price(usd: str) -> LinearPrice:
        zero = Decimal(0)
        return LinearPrice.from_usd(
            intercept=zero,
            per_input=Decimal(usd),
            per_cache_read=zero,
            per_cache_write=zero,
            per_output=zero,
            per_reasoning=zero,
        )

    assert per_token_price("2.5E-9").nanos(Usage(1)) == 2
    assert per_token_price("3.5E-9").nanos(Usage(1)) == 4
    assert per_token_price("2.5000001E-9").nanos(Usage(1)) == 3
    # Rounded once for the whole call, not once per token.
    assert per_token_price("1.4E-9").nanos(Usage(3)) == 4
    assert per_token_price("1E-12").nanos(Usage(400)) == 0
    assert per_token_price("1E-12").nanos(Usage(600)) == 1


# -- the price at the request time -------------------------------------------------------------


DATED_USAGE = Usage(100_000, 20_000, cache_read_input_tokens=30_000, reasoning_output_tokens=9_000)


def dated_change() -> tuple[str, str, date]:
    """(provider id, model id, start date) of a past price change in genai-prices' data that
    changes what ``DATED_USAGE`` costs."""
    for provider in current_snapshot().providers:
        if provider.id not in ("openai", "anthropic", "google"):
            continue
        for model in provider.models:
            if not isinstance(model.prices, list):
                continue
            for conditional in model.prices:
                constraint = conditional.constraint
                if not isinstance(constraint, StartDateConstraint):
                    continue
                if constraint.start_date > NOW.date():
                    continue
                day_before = at_noon(constraint.start_date - timedelta(days=1))
                if genai_nanos(model.id, DATED_USAGE, provider_id=provider.id, at=day_before) != (
                    genai_nanos(
                        model.id,
                        DATED_USAGE,
                        provider_id=provider.id,
                        at=at_noon(constraint.start_date),
                    )
                ):
                    return provider.id, model.id, constraint.start_date
    raise AssertionError("genai-prices' data has no past price change")


def at_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), timezone.utc)


def test_price_at_a_past_time_uses_the_price_of_that_time(registry: PricingRegistry) -> None:
    provider, model, change = dated_change()
    before, after = at_noon(change - timedelta(days=1)), at_noon(change)
    # Interleaved, so a cached price of one time cannot leak into the other.
    costs = [
        registry.price(model, DATED_USAGE, provider=provider, at=at).cost_nanos
        for at in (after, before, after, before)
    ]
    assert costs[0] == costs[2] == genai_nanos(model, DATED_USAGE, provider_id=provider, at=after)
    assert costs[1] == costs[3] == genai_nanos(model, DATED_USAGE, provider_id=provider, at=before)
    assert costs[0] != costs[1]


def test_a_price_that_starts_later_is_used_from_its_start(
    registry: PricingRegistry, serve: list[PriceServer]
) -> None:
    # Served data with a change a month from today, since the future changes in bundled data
    # run out (for good on Python 3.10, whose last genai-prices release is 0.1.13).
    change = NOW.date() + timedelta(days=30)
    dated_model = {
        "id": "toll-dated",
        "match": {"equals": "toll-dated"},
        "prices": [
            {"prices": {"input_mtok": "1", "output_mtok": "2"}},
            {
                "constraint": {"start_date": change.isoformat()},
                "prices": {"input_mtok": "3", "output_mtok": "5"},
            },
        ],
    }
    providers = [{**SERVED_PROVIDERS[0], "models": [dated_model]}]
    server = PriceServer(json.dumps(providers).encode())
    serve.append(server)
    assert update_pricing(url=server.url, registry=registry) is True
    usage = Usage(1_000, 10)
    start, day_before = at_noon(change), at_noon(change - timedelta(days=1))

    # Interleaved, so a cached price of one time cannot leak into the other.
    now, later, before = (
        registry.price("toll-dated", usage, at=at).cost_nanos for at in (None, start, day_before)
    )
    assert now == before == genai_nanos("toll-dated", usage) == 1_000 * 1_000 + 10 * 2_000
    assert later == genai_nanos("toll-dated", usage, at=start) == 1_000 * 3_000 + 10 * 5_000


# -- provider hints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("semconv", "genai_id"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("gcp.gemini", "google"),
        ("gcp.vertex_ai", "google"),
        ("gcp.gen_ai", "google"),
        ("aws.bedrock", "aws"),
        ("azure.ai.openai", "azure"),
        ("azure.ai.inference", "azure"),
        ("x_ai", "x-ai"),
        ("mistral_ai", "mistral"),
        ("deepseek", "deepseek"),
        ("groq", "groq"),
    ],
)
def test_semconv_provider_names_find_their_genai_prices_provider(
    semconv: str, genai_id: str
) -> None:
    provider = current_snapshot().find_provider(None, genai_provider_id(semconv), None)
    assert provider.id == genai_id


def test_a_hint_that_does_not_resolve_falls_back_to_the_model(registry: PricingRegistry) -> None:
    usage = Usage(1_000, 100)
    expected = genai_nanos("claude-sonnet-4-0", usage)
    # An OpenAI-compatible proxy serving an Anthropic model, and a provider genai-prices lacks.
    assert registry.price("claude-sonnet-4-0", usage, provider="openai").cost_nanos == expected
    assert registry.price("claude-sonnet-4-0", usage, provider="acme.ai").cost_nanos == expected


def test_a_provider_prefixed_name_is_priced_at_that_provider(registry: PricingRegistry) -> None:
    """LiteLLM's and OpenRouter's names, e.g. ``openai/gpt-4o``, as 0.13's LiteLLM callback."""
    usage = Usage(1_000, 100)
    assert registry.price("openai/gpt-4o", usage) == registry.price(
        "gpt-4o", usage, provider="openai"
    )
    assert registry.price("anthropic/claude-sonnet-4-0", usage).cost_nanos == genai_nanos(
        "claude-sonnet-4-0", usage
    )
    assert registry.price("gemini/gemini-2.5-flash", usage).cost_nanos == genai_nanos(
        "gemini-2.5-flash", usage, provider_id="google"
    )
    assert registry.has_model("openai/gpt-4o")
    registry.register_model("gpt-4o", 1e-06, 0)  # an override of the model wins
    assert registry.price("openai/gpt-4o", usage) == Price(1_000_000, True, "override")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PricingMatrixOutdatedWarning)
        # Not a provider genai-prices knows, or not a model of that provider: unknown.
        assert not registry.price("acme/gpt-4o-mini", usage).known
        assert not registry.price("openai/claude-sonnet-4-0", usage).known


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


# -- local, fallback and unknown models ------------------------------------------------------


def test_local_models_are_free_and_silent(registry: PricingRegistry) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for prefix in LOCAL_MODEL_PREFIXES:
            assert registry.price(f"{prefix}llama3:8b", Usage(5_000, 500)) == Price(
                0, True, "local"
            )
    assert caught == []


def test_fallback_prices_unknown_models_only(registry: PricingRegistry) -> None:
    registry.set_fallback_pricing(1e-06, 2e-06)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert registry.price("in-house-model", Usage(10, 1)) == Price(12_000, True, "fallback")
        assert registry.price("gpt-4o", Usage(10, 1)).source == GENAI_SOURCE
    assert caught == []


def test_unknown_model_costs_nothing_and_says_so(registry: PricingRegistry) -> None:
    with pytest.warns(PricingMatrixOutdatedWarning) as caught:
        price = registry.price("in-house-model", Usage(1_000, 100), provider="openai")
    assert price == Price(0, False, "unknown")
    message = str(caught[0].message)
    assert "in-house-model" in message
    assert "tokens are recorded" in message
    assert "register_model" in message


def test_unknown_model_warns_once_per_model_even_across_threads() -> None:
    registry = PricingRegistry()
    start = threading.Barrier(16)
    results: list[Price] = []

    def call() -> None:
        start.wait()
        for n in range(50):
            results.append(registry.price("mystery-a" if n % 2 else "mystery-b", Usage(10, 1)))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=call) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        PricingRegistry().price("mystery-a", Usage(10, 1))  # a registry of its own warns again

    assert set(results) == {Price(0, False, "unknown")}
    messages = [str(w.message) for w in caught if w.category is PricingMatrixOutdatedWarning]
    assert len(messages) == 3
    assert sum("'mystery-a'" in m for m in messages) == 2
    assert sum("'mystery-b'" in m for m in messages) == 1


@pytest.mark.parametrize("model", ["", " ", "x" * 10_000, "gpt-4o\x00", "модель/🙂", "/", "-"])
def test_price_never_raises_for_odd_model_names(registry: PricingRegistry, model: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        price = registry.price(model, Usage(10, 1), provider="no such provider")
    assert isinstance(price, Price)


def test_price_never_raises_for_a_model_that_is_not_a_string(registry: PricingRegistry) -> None:
    with pytest.warns(PricingMatrixOutdatedWarning, match="Could not price"):
        price = registry.price(None, Usage(10, 1))  # type: ignore[arg-type]
    assert price == Price(0, False, "unknown")


@pytest.mark.parametrize(
    "usage",
    [
        Usage(10, 5, cache_read_input_tokens=11),
        Usage(10, 5, cache_read_input_tokens=6, cache_creation_input_tokens=6),
        Usage(10, 5, reasoning_output_tokens=6),
        Usage(-1, 5),
        Usage(10.5, 5),  # type: ignore[arg-type]
        Usage(10, None),  # type: ignore[arg-type]
    ],
)
def test_inconsistent_usage_is_a_warning_not_an_error(
    registry: PricingRegistry, usage: Usage
) -> None:
    with pytest.warns(UsageWarning, match="inconsistent"):
        price = registry.price("gpt-4o", usage)
    assert price == Price(0, False, "unknown")


# -- the 0.13 API ----------------------------------------------------------------------------------


def test_get_cost_returns_usd(registry: PricingRegistry) -> None:
    registry.register_model("m", 2.5e-06, 1e-05)
    assert registry.get_cost("m", 1_000, 100) == 0.0035
    assert registry.get_cost("gpt-4o", 1_000, 100) == genai_nanos("gpt-4o", Usage(1_000, 100)) / 1e9
    with pytest.warns(PricingMatrixOutdatedWarning):
        assert registry.get_cost("in-house-model", 1_000, 100) == 0.0


def test_has_model(registry: PricingRegistry) -> None:
    registry.register_model("in-house", 1e-06, 1e-06)
    registry.set_fallback_pricing(1e-06, 1e-06)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert registry.has_model("in-house")
        assert registry.has_model("in-house-v2")
        assert registry.has_model("ollama/llama3")
        assert registry.has_model("gpt-4o")
        assert registry.has_model("claude-sonnet-4-20250514")
        assert not registry.has_model("unheard-of")
    assert caught == []


def test_list_models_holds_overrides_and_local_prefixes(registry: PricingRegistry) -> None:
    assert registry.list_models() == sorted(LOCAL_MODEL_PREFIXES)
    registry.register_model("b-model", 1e-06, 1e-06)
    registry.register_model("a-model", 1e-06, 1e-06)
    assert registry.list_models() == sorted(["a-model", "b-model", *LOCAL_MODEL_PREFIXES])


def test_load_remote_pricing_registers_all_or_nothing(registry: PricingRegistry) -> None:
    assert registry.load_remote_pricing({"m1": (1e-06, 2e-06), "m2": (3e-06, 4e-06)}) == 2
    assert registry.price("m2", Usage(1, 1)) == Price(7_000, True, "override")
    with pytest.raises(ValueError, match="non-negative"):
        registry.load_remote_pricing({"m3": (1e-06, 1e-06), "m4": (-1.0, 1e-06)})
    assert "m3" not in registry.list_models()


def test_default_registry_is_a_registry() -> None:
    assert isinstance(default_registry, PricingRegistry)


# -- update_pricing --------------------------------------------------------------------------------

SERVED_PROVIDERS = [
    {
        "id": "tollprov",
        "name": "Toll test provider",
        "api_pattern": "https://toll\\.invalid",
        "model_match": {"starts_with": "toll-"},
        "models": [
            {
                "id": "toll-model",
                "match": {"equals": "toll-model"},
                "prices": {"input_mtok": "1.5", "output_mtok": "4", "cache_read_mtok": "0.15"},
            },
            {
                # Tiers one token apart: regions too narrow to derive a fast price from.
                "id": "toll-cliff",
                "match": {"equals": "toll-cliff"},
                "prices": {
                    "input_mtok": {
                        "base": "1",
                        "tiers": [{"start": 0, "price": "2"}, {"start": 1, "price": "3"}],
                    },
                    "output_mtok": "4",
                },
            },
        ],
    }
]


class PriceServer:
    """A loopback HTTP server answering every GET with one body."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/data.json"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()


@pytest.fixture
def serve() -> Iterator[list[PriceServer]]:
    servers: list[PriceServer] = []
    yield servers
    for server in servers:
        server.close()


def closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/data.json"


def test_update_pricing_failure_warns_once_and_keeps_the_prices(
    registry: PricingRegistry,
) -> None:
    before = registry.price("gpt-4o", MIXED)
    with pytest.warns(PricingMatrixOutdatedWarning, match="Could not update prices") as caught:
        assert update_pricing(url=closed_port_url(), registry=registry) is False
    assert len(caught) == 1
    assert registry.price("gpt-4o", MIXED) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"not json", 200), (b'{"providers": []}', 200), (json.dumps(SERVED_PROVIDERS).encode(), 404)],
)
def test_update_pricing_rejects_a_bad_answer(
    registry: PricingRegistry, serve: list[PriceServer], body: bytes, status: int
) -> None:
    server = PriceServer(body, status)
    serve.append(server)
    with pytest.warns(PricingMatrixOutdatedWarning, match="Could not update prices"):
        assert update_pricing(url=server.url, registry=registry) is False
    assert server.requests == 1
    assert registry.price("gpt-4o", MIXED).source == GENAI_SOURCE


def test_update_pricing_uses_fetched_prices_then_respects_ttl(
    registry: PricingRegistry, serve: list[PriceServer]
) -> None:
    other = PricingRegistry()
    with pytest.warns(PricingMatrixOutdatedWarning):
        assert other.price("toll-model", Usage(1_000, 10)).known is False

    server = PriceServer(json.dumps(SERVED_PROVIDERS).encode())
    serve.append(server)
    assert update_pricing(url=server.url, registry=registry) is True

    usage = Usage(1_000, 10, cache_read_input_tokens=400)
    expected = Price(600 * 1_500 + 400 * 150 + 10 * 4_000, True, GENAI_SOURCE)
    assert registry.price("toll-model", usage) == expected
    # Another registry notices the new data by itself.
    assert other.price("toll-model", usage) == expected

    # Fresh data is not fetched again within the TTL.
    assert update_pricing(url=server.url, registry=registry) is True
    assert server.requests == 1
    assert update_pricing(url=server.url, ttl_hours=0, registry=registry) is True
    assert server.requests == 2


def test_narrow_tier_regions_are_priced_by_genai_prices_directly(
    registry: PricingRegistry, serve: list[PriceServer]
) -> None:
    server = PriceServer(json.dumps(SERVED_PROVIDERS).encode())
    serve.append(server)
    assert update_pricing(url=server.url, registry=registry) is True
    found = find_model(current_snapshot(), "toll-cliff", None)
    assert found is not None
    assert found.linear_price(NOW, 0) is None
    assert found.linear_price(NOW, 1) is None
    assert found.linear_price(NOW, 2) is not None

    costs = {n: registry.price("toll-cliff", Usage(n, 1)).cost_nanos for n in (0, 1, 2, 5)}
    # Every input token pays the rate of the highest tier the input count is above.
    assert costs == {0: 4_000, 1: 2_000 + 4_000, 2: 6_000 + 4_000, 5: 15_000 + 4_000}
