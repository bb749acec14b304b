"""Where each price came from, and what it was made of, through the real SDKs: the ledger
row and the span say the price's source and data version and the context the response
was served in; a reported unit without a price is flagged on both and warned about, never
dropped in silence."""

from __future__ import annotations

from typing import Any

import anthropic
import genai_prices
import openai
import pytest

from llm_toll import track_costs
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.store import SQLiteStore
from tests.support.otel import Telemetry
from tests.support.payloads import chat, message

MESSAGES: Any = [{"role": "user", "content": "What is the capital of France?"}]


def test_the_ledger_and_the_span_say_where_the_price_came_from(
    openai_client: openai.OpenAI, replay: ReplayServer, store: SQLiteStore, telemetry: Telemetry
) -> None:
    replay.script(body=chat("o3", 12_000, 800, tier="flex", reasoning=300))

    @track_costs(project="provenance")
    def ask() -> None:
        openai_client.chat.completions.create(model="o3", messages=MESSAGES)

    ask()

    [row] = store.get_usage_logs("provenance")
    assert (row["price_source"], row["price_version"]) == (
        "genai-prices",
        genai_prices.__version__,
    )
    assert row["price_context"] == {"service_tier": "flex"}
    assert row["unpriced_units"] is None
    span = telemetry.span().attributes or {}
    assert span["llm_toll.price.source"] == "genai-prices"
    assert span["llm_toll.price.version"] == genai_prices.__version__
    assert "llm_toll.price.partial" not in span


def test_a_unit_without_a_price_is_flagged_on_the_span_and_in_the_ledger(
    anthropic_client: anthropic.Anthropic,
    replay: ReplayServer,
    store: SQLiteStore,
    telemetry: Telemetry,
) -> None:
    # genai-prices lists no web-search price for Claude 3 Haiku.
    model = "claude-3-haiku-20240307"
    replay.script(body=message(model, 2_000, 300, web_searches=3))

    @track_costs(project="partial")
    def ask() -> None:
        anthropic_client.messages.create(model=model, max_tokens=512, messages=MESSAGES)

    with pytest.warns(PricingMatrixOutdatedWarning, match=f"web_searches of model '{model}'"):
        ask()

    [row] = store.get_usage_logs("partial")
    assert row["unpriced_units"] == ["web_searches"]
    assert row["usage_units"] == {"web_searches": 3}
    assert row["price_known"] is True  # the tokens are priced: part of the bill, not none
    span = telemetry.span().attributes or {}
    assert span["llm_toll.price.partial"] is True
    assert list(span["llm_toll.price.unpriced_units"]) == ["web_searches"]  # type: ignore[arg-type]
