"""Fixtures of the pricing tests: genai-prices' bundled data around every test, a fresh
registry, and the price servers a test starts (closed at its end)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from genai_prices.data_snapshot import set_custom_snapshot

from llm_toll.pricing import PricingRegistry
from tests.unit.pricing.helpers import PriceServer


@pytest.fixture(autouse=True)
def bundled_prices() -> Iterator[None]:
    """Every test starts and ends with the prices genai-prices ships."""
    set_custom_snapshot(None)
    yield
    set_custom_snapshot(None)


@pytest.fixture
def registry() -> PricingRegistry:
    return PricingRegistry()


@pytest.fixture
def serve() -> Iterator[list[PriceServer]]:
    servers: list[PriceServer] = []
    yield servers
    for server in servers:
        server.close()
