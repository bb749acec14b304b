"""Provider hints: semantic-convention provider names find their genai-prices provider,
a hint that does not resolve falls back to the model, and a provider-prefixed model
name is priced at that provider."""

from __future__ import annotations

import warnings

import pytest

from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing import Price, PricingRegistry
from llm_toll.pricing._genai import current_snapshot, genai_provider_id
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import genai_nanos

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
