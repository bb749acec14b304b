"""The price at the request time: a past call is priced at the price of its time, and a
price that starts later is used from its start date."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone

from genai_prices.types import StartDateConstraint

from llm_toll.pricing import PricingRegistry
from llm_toll.pricing._genai import current_snapshot
from llm_toll.pricing._update import update_pricing
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import NOW, SERVED_PROVIDERS, PriceServer, genai_nanos

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
