"""The fast path, a linear price per model and tier region, agrees with genai-prices over
random usages and over every model of its data, and rounds once per call, half to even."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from llm_toll._budget.money import usd_to_nanos
from llm_toll.pricing import PricingRegistry
from llm_toll.pricing._genai import GenaiModel, current_snapshot, find_model
from llm_toll.pricing._linear import LinearPrice
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import NOW, genai_nanos, genai_usage

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
