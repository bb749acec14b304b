"""The registry's 0.13 API: ``get_cost`` in USD, ``has_model``, ``list_models``,
``load_remote_pricing`` and ``default_registry``."""

from __future__ import annotations

import warnings

import pytest

from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing import LOCAL_MODEL_PREFIXES, Price, PricingRegistry, default_registry
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import genai_nanos

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
