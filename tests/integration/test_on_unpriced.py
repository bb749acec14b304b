"""``on_unpriced="refuse"``: a request to a model with no price never leaves the process.

The real openai client talks to the loopback replay server, which records every request it
receives: a refused request is one the server never saw.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError, UnpricedModelError, track_costs
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing import PricingRegistry, default_registry
from llm_toll.store import SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES
from tests.support.otel import Telemetry

UNPRICED = "acme-unpriced-model-9000"


@pytest.fixture
def registry() -> Iterator[PricingRegistry]:
    """The default registry, its overrides and fallback as they were after the test."""
    overrides, fallback = default_registry._overrides, default_registry._fallback
    yield default_registry
    with default_registry._lock:
        default_registry._overrides, default_registry._fallback = overrides, fallback
        default_registry._forget_routes()


def test_refused_before_it_is_sent(store: SQLiteStore, replay: ReplayServer, openai_client: Any,
                                   telemetry: Telemetry) -> None:  # fmt: skip
    @track_costs(project="guarded", max_budget=1.0, on_unpriced="refuse")
    def ask(model: str) -> None:
        openai_client.chat.completions.create(model=model, messages=MESSAGES)

    with pytest.raises(UnpricedModelError) as refused:
        ask(UNPRICED)
    error = refused.value
    assert isinstance(error, BudgetExceededError)
    assert (error.project, error.model, error.scope) == ("guarded", UNPRICED, "unpriced")
    assert UNPRICED in str(error) and "on_unpriced='refuse'" in str(error)
    assert replay.requests == []  # nothing reached the server
    assert store.get_usage_logs("guarded") == []
    # The refused request's span (the function's own call fails with the same error).
    [span] = [s for s in telemetry.requests() if s.name == f"chat {UNPRICED}"]
    assert (span.attributes or {}).get("error.type") == "UnpricedModelError"
    assert not [e for e in span.events if e.name == "llm_toll.budget.exceeded"]

    ask("gpt-4o-mini")  # a priced model goes
    assert len(replay.requests) == 1
    [row] = store.get_usage_logs("guarded")
    assert row["model"].startswith("gpt-4o-mini") and row["cost_nanos"] > 0


async def test_async_client_in_a_run(store: SQLiteStore, replay: ReplayServer,
                                     async_openai_client: Any) -> None:  # fmt: skip
    async with llm_toll.run(project="guarded-run", on_unpriced="refuse"):
        with pytest.raises(UnpricedModelError):
            await async_openai_client.chat.completions.create(model=UNPRICED, messages=MESSAGES)
        assert replay.requests == []
        await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(replay.requests) == 1
    assert [row["model"] for row in store.get_usage_logs("guarded-run")] == ["gpt-4o"]


def test_local_models_and_overrides_pass(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, registry: PricingRegistry
) -> None:
    registry.register_model(UNPRICED, 1e-06, 2e-06)

    @track_costs(project="guarded-local", on_unpriced="refuse")
    def ask(model: str) -> None:
        openai_client.chat.completions.create(model=model, messages=MESSAGES)

    ask("ollama/llama3")
    ask(UNPRICED)
    assert len(replay.requests) == 2
    rows = sorted(store.get_usage_logs("guarded-local"), key=lambda row: row["id"])
    assert [row["model"] for row in rows] == ["ollama/llama3", UNPRICED]
    assert rows[0]["cost_nanos"] == 0 and rows[1]["cost_nanos"] > 0


def test_fallback_price_passes(store: SQLiteStore, replay: ReplayServer, openai_client: Any,
                               registry: PricingRegistry) -> None:  # fmt: skip
    with llm_toll.run(project="guarded-fallback", on_unpriced="refuse"):
        with pytest.raises(UnpricedModelError):
            openai_client.chat.completions.create(model=UNPRICED, messages=MESSAGES)
        registry.set_fallback_pricing(1e-06, 2e-06)
        openai_client.chat.completions.create(model=UNPRICED, messages=MESSAGES)
    assert len(replay.requests) == 1


def test_the_decorator_model_is_checked_before_the_function_runs(store: SQLiteStore) -> None:
    ran = []

    @track_costs(project="guarded-model", model=UNPRICED, on_unpriced="refuse")
    def work() -> dict[str, int]:
        ran.append(True)
        return {"input_tokens": 10, "output_tokens": 5}

    with pytest.raises(UnpricedModelError):
        work()
    assert ran == []


def test_warn_is_the_default(store: SQLiteStore, replay: ReplayServer,
                             openai_client: Any) -> None:  # fmt: skip
    model = "acme-unpriced-warned"  # warned once per model: a name no other test uses

    @track_costs(project="unguarded")
    def ask() -> None:
        openai_client.chat.completions.create(model=model, messages=MESSAGES)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ask()
    assert any(issubclass(w.category, PricingMatrixOutdatedWarning) for w in caught)
    assert len(replay.requests) == 1
    [row] = store.get_usage_logs("unguarded")
    assert (row["model"], row["cost_nanos"], row["price_known"]) == (model, 0, False)


@pytest.mark.parametrize("value", ["Refuse", "deny", None, True, 1])
def test_a_bad_value_is_an_error_when_decorating(value: object) -> None:
    with pytest.raises(ValueError, match="on_unpriced must be 'warn' or 'refuse'"):
        track_costs(project="p", on_unpriced=value)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="on_unpriced"):
        llm_toll.run(project="p", on_unpriced=value)
