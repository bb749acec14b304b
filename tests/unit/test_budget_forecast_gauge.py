"""The ``llm_toll.budget.time_remaining`` gauge, read through the OTel SDK's metric reader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from llm_toll import default_registry, track_costs
from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.store import SQLiteStore
from llm_toll.usage._base import Usage
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import chat

GAUGE = "llm_toll.budget.time_remaining"
MODEL = "forecast-gauge-model"  # $0.001 a token: 200 input tokens cost $0.20


@pytest.fixture(autouse=True)
def priced_model() -> None:
    default_registry.register_model(MODEL, 0.001, 0.001)


def seconds_left(telemetry: Telemetry, project: str) -> dict[tuple[str, str | None], float]:
    """(period, budget key) -> the gauge's value, for one project."""
    return {
        (p.attributes["llm_toll.budget.period"], p.attributes.get("llm_toll.budget.key")): p.value
        for p in telemetry.points(GAUGE)
        if p.attributes["llm_toll.project"] == project
    }


def test_the_gauge_forecasts_at_collection_from_the_whole_ledger(
    store: SQLiteStore, telemetry: Telemetry
) -> None:
    @track_costs(project="forecast-gauge", max_budget=1.0)
    def ask() -> dict[str, Any]:
        return chat(200, 0, model=MODEL)

    for _ in range(4):
        ask()
    # $0.80 in the last hour, $0.20 left: 900 s at that rate.
    assert seconds_left(telemetry, "forecast-gauge") == {("lifetime", None): 900.0}

    # Another process spends $0.10 through the same store: the next collection sees it
    # ($0.10 left at $0.90 an hour), although this process made no call since.
    other = CallRecord(
        project="forecast-gauge",
        model=MODEL,
        usage=Usage(input_tokens=100, output_tokens=0),
        cost_nanos=100_000_000,
        started_at=datetime.now(timezone.utc),
    )
    with SQLiteStore(store.location) as elsewhere:
        elsewhere.record_call(other, BudgetSpec(1_000_000_000))
    assert seconds_left(telemetry, "forecast-gauge") == {("lifetime", None): 400.0}


def test_a_spent_budget_shows_zero_and_one_that_outlasts_its_period_nothing(
    store: SQLiteStore, telemetry: Telemetry
) -> None:
    @track_costs(project="forecast-spent", max_budget=0.3)
    def spend() -> dict[str, Any]:
        return chat(200, 0, model=MODEL)

    # $0.01 of a $100 monthly budget: at that rate it lasts far beyond any month.
    @track_costs(project="forecast-lasting", max_budget=100.0, reset="monthly")
    def sip() -> dict[str, Any]:
        return chat(10, 0, model=MODEL)

    spend()
    spend()  # $0.40 of $0.30
    sip()
    assert seconds_left(telemetry, "forecast-spent") == {("lifetime", None): 0.0}
    assert seconds_left(telemetry, "forecast-lasting") == {}
    # The other budget gauges do have the lasting budget.
    assert [p.value for p in telemetry.points("llm_toll.budget.spent")
            if p.attributes["llm_toll.project"] == "forecast-lasting"] == [0.01]  # fmt: skip


@dataclass(frozen=True)
class User:
    user_id: str


def test_budget_keys_are_forecast_when_they_are_in_metrics(
    store: SQLiteStore, telemetry: Telemetry
) -> None:
    @track_costs(
        project="forecast-keys",
        max_budget=10.0,
        budget_key=lambda user: user.user_id,
        key_budget=0.5,
        key_in_metrics=True,
    )
    def ask(user: User) -> dict[str, Any]:
        return chat(200, 0, model=MODEL)

    ask(User("u1"))
    ask(User("u1"))
    ask(User("u2"))
    assert seconds_left(telemetry, "forecast-keys") == {
        ("lifetime", None): 56_400.0,  # $9.40 left at $0.60 an hour
        ("lifetime", "u1"): 900.0,  # $0.10 left at $0.40 an hour
        ("lifetime", "u2"): 5400.0,  # $0.30 left at $0.20 an hour
    }
