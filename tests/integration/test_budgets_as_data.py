"""Budgets as data in-process, through the front door: ``llm_toll.budgets`` with
``@track_costs`` and ``llm_toll.run`` around the real openai client against the loopback
replay server; the stricter of a stored limit and ``max_budget=`` wins, and is the limit
spans report. (A limit set with the CLI binding another running process: the store suite,
``tests/stores/test_budget_limits.py``, on both backends.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError, budgets, track_costs
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from tests.support.otel import Telemetry

MESSAGES = [{"role": "user", "content": "Say hi."}]


@pytest.fixture
def ledger(store: SQLiteStore) -> Iterator[SQLiteStore]:
    """The test's store, whose limits this process reads again only when ``set_budget``
    or ``remove_budget`` change them (so a pickup is never a matter of timing here)."""
    before = budgets.refresh_interval()
    budgets.set_refresh_interval(3600.0)
    try:
        yield store
    finally:
        budgets.set_refresh_interval(before)


def test_a_stored_limit_applies_without_max_budget(
    ledger: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="no-code-limit")
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()
    budgets.set_budget("no-code-limit", 0, reset="daily")
    with pytest.raises(BudgetExceededError) as refusal:
        ask()
    assert refusal.value.max_budget == 0.0
    with pytest.raises(BudgetExceededError), llm_toll.run(project="no-code-limit"):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert budgets.remove_budget("no-code-limit") == 1
    ask()  # nothing in code, nothing stored: no limit
    assert len(ledger.get_usage_logs("no-code-limit")) == 2


def test_strict_calls_respect_stored_limits(
    ledger: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="strict-stored", max_budget=10.0, strict=True)
    def ask() -> Any:
        return openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=50
        )

    ask()
    budgets.set_budget("strict-stored", 0)  # lifetime, as the code's: one limit, the smaller
    with pytest.raises(BudgetExceededError):
        ask()
    budgets.set_budget("strict-stored", 0, reset="monthly")  # another period: checked too
    budgets.remove_budget("strict-stored", reset="lifetime")
    with pytest.raises(BudgetExceededError) as refusal:
        ask()
    assert refusal.value.max_budget == 0.0
    budgets.remove_budget("strict-stored")
    ask()
    assert len(ledger.get_usage_logs("strict-stored")) == 2
    assert ledger.get_reserved("strict-stored", None, datetime.now(timezone.utc)) == 0


def test_spans_report_the_binding_limit(
    ledger: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    @track_costs(project="binding", max_budget=5.0, reset="monthly")
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()
    attributes = telemetry.span().attributes or {}
    assert (attributes["llm_toll.budget.limit"], attributes["llm_toll.budget.period"]) == (
        5.0,
        "monthly",
    )
    telemetry.exporter.clear()
    budgets.set_budget("binding", 1, reset="daily")  # stricter: less money left
    ask()
    attributes = telemetry.span().attributes or {}
    assert (attributes["llm_toll.budget.limit"], attributes["llm_toll.budget.period"]) == (
        1.0,
        "daily",
    )
    # The daily total counts the calls since the daily limit was set; the monthly one all.
    now = datetime.now(timezone.utc)
    monthly = ledger.get_spent("binding", "monthly", now)
    daily = ledger.get_spent("binding", "daily", now)
    assert 0 < daily < monthly
    assert attributes["llm_toll.budget.spent"] == pytest.approx(daily / 1e9)


def budget_gauges(telemetry: Telemetry, project: str) -> dict[str, dict[str, float]]:
    """The budget gauges' series of ``project`` at a collection: period -> gauge -> value."""
    found: dict[str, dict[str, float]] = {}
    for name in ("llm_toll.budget.limit", "llm_toll.budget.spent"):
        for point in telemetry.points(name):
            if point.attributes.get("llm_toll.project") == project:
                found.setdefault(point.attributes["llm_toll.budget.period"], {})[name] = point.value
    return found


def test_the_budget_gauges_follow_the_binding_limit(
    ledger: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    @track_costs(project="gauges", max_budget=5.0, reset="monthly")
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()
    assert set(budget_gauges(telemetry, "gauges")) == {"monthly"}
    budgets.set_budget("gauges", 1, reset="daily")  # binds now: less money left
    ask()
    gauges = budget_gauges(telemetry, "gauges")
    assert set(gauges) == {"daily"}  # the monthly series stopped, not frozen at its last value
    daily = ledger.get_spent("gauges", "daily", datetime.now(timezone.utc))
    assert gauges["daily"] == {
        "llm_toll.budget.limit": 1.0,
        "llm_toll.budget.spent": pytest.approx(daily / 1e9),
    }
    budgets.set_budget("gauges", 5, reset="daily")  # more room than the month has left
    ask()
    assert set(budget_gauges(telemetry, "gauges")) == {"monthly"}


async def test_async_calls_read_stored_limits_off_the_loop(
    ledger: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    @track_costs(project="async-stored")
    async def ask() -> Any:
        return await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    await ask()
    budgets.set_budget("async-stored", 0, key=None, reset="weekly")
    with pytest.raises(BudgetExceededError) as refusal:
        await ask()
    assert refusal.value.max_budget == 0.0
    budgets.remove_budget("async-stored")
    await ask()
    assert len(ledger.get_usage_logs("async-stored")) == 2
