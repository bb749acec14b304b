"""``update_pricing``: a failure warns once and keeps the prices, a bad answer is
rejected, fetched prices are used then kept for their TTL, and narrow tier regions are
priced by genai-prices directly."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing import Price, PricingRegistry
from llm_toll.pricing._genai import current_snapshot, find_model
from llm_toll.pricing._update import update_pricing
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import (
    GENAI_SOURCE,
    GENAI_VERSION,
    MIXED,
    NOW,
    SERVED_PROVIDERS,
    PriceServer,
)

# -- update_pricing --------------------------------------------------------------------------------


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
    # The fetched data is named by genai-prices' version and the time it was fetched.
    fetched = current_snapshot().timestamp
    version = f"{GENAI_VERSION}+data.{fetched:%Y%m%dT%H%M%S}"
    expected = Price(600 * 1_500 + 400 * 150 + 10 * 4_000, True, GENAI_SOURCE, version)
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
