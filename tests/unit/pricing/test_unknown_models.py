"""Local, fallback and unknown models: local models are free, the fallback prices only
unknown models, an unknown model costs nothing and warns once, and odd model names or
inconsistent usage never raise."""

from __future__ import annotations

import threading
import warnings

import pytest

from llm_toll.exceptions import PricingMatrixOutdatedWarning, UsageWarning
from llm_toll.pricing import LOCAL_MODEL_PREFIXES, Price, PricingRegistry
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import GENAI_SOURCE

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
