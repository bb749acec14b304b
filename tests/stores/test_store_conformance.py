"""One suite, every backend: what any budget store must do, run against SQLite and PostgreSQL.

The tests of the first part take the parametrised ``store`` / ``store_factory`` fixtures
and run unchanged against a fresh SQLite file and a fresh PostgreSQL database. The last
part holds what only PostgreSQL has (a server, a connection pool, a schema shared by
hosts) and a test that records the same calls into both backends and compares every
answer of the llm-toll 0.13 read API.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.periods import LIFETIME, Reset
from llm_toll._budget.records import BudgetSpec, BudgetState, CallRecord
from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError
from llm_toll.store import BaseStore, SQLiteStore, StoreError, StoreWarning, create_store
from llm_toll.store._time import utc_now
from llm_toll.usage.base import Usage
from tests.stores.conftest import (
    REPO,
    PostgresServer,
    StoreFactory,
    free_port,
    open_store,
    start_postgres_server,
)

MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)

LOG_KEYS = [
    *("id", "project", "model", "input_tokens", "output_tokens", "cost", "created_at"),
    *("provider", "operation", "cache_read_input_tokens", "cache_creation_input_tokens"),
    *("reasoning_output_tokens", "price_known", "estimated", "budget_key", "response_id"),
    *("duration_s", "cost_nanos"),
]
TOTALS_KEYS = ["total_cost", "total_input_tokens", "total_output_tokens", "call_count"]
PROJECT_SUMMARY_KEYS = ["project", *TOTALS_KEYS, "last_used", "total_cost_nanos"]
MODEL_SUMMARY_KEYS = ["model", *TOTALS_KEYS, "total_cost_nanos"]
PROJECT_FOR_MODEL_KEYS = ["project", *TOTALS_KEYS, "total_cost_nanos"]
DAILY_KEYS = [
    *("date", "daily_cost", "daily_input_tokens", "daily_output_tokens", "call_count"),
    "daily_cost_nanos",
]
BUDGET_KEYS = [
    *("project", "period", "total_cost", "limit", "thresholds_fired", "last_reset_at"),
    *("updated_at", "total_cost_nanos", "limit_nanos", "utilization", "budget_key"),
]


def make_call(
    cost_nanos: int = 1_000,
    *,
    project: str = "proj",
    model: str = "gpt-4o",
    at: datetime = MONDAY,
    usage: Usage | None = None,
    **fields: Any,
) -> CallRecord:
    return CallRecord(
        project=project,
        model=model,
        usage=usage or Usage(input_tokens=10, output_tokens=5),
        cost_nanos=cost_nanos,
        started_at=at,
        **fields,
    )


def all_logs(store: BaseStore, project: str = "proj") -> list[dict[str, Any]]:
    return store.get_usage_logs_filtered(project=project, limit=0)


# == every backend ==========================================================================

# -- record_call and get_spent ----------------------------------------------------------------


def test_record_call_keeps_every_field_of_the_call(store: BaseStore) -> None:
    usage = Usage(
        input_tokens=1200,
        output_tokens=300,
        cache_read_input_tokens=1000,
        cache_creation_input_tokens=100,
        reasoning_output_tokens=200,
    )
    call = make_call(
        123_456_789,
        usage=usage,
        at=datetime(2026, 3, 2, 13, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1))),
        duration_s=1.5,
        provider="openai",
        operation="embeddings",
        price_known=False,
        estimated=True,
        response_id="resp-1",
        budget_key="team-a",
    )
    assert store.record_call(call) == BudgetState(123_456_789, None, LIFETIME)
    [row] = store.get_usage_logs("proj")
    assert row == {
        "id": 1,
        "project": "proj",
        "model": "gpt-4o",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cost": 0.123456789,
        "created_at": "2026-03-02T12:00:00.250000+00:00",  # in UTC
        "provider": "openai",
        "operation": "embeddings",
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 100,
        "reasoning_output_tokens": 200,
        "price_known": False,
        "estimated": True,
        "budget_key": "team-a",
        "response_id": "resp-1",
        "duration_s": 1.5,
        "cost_nanos": 123_456_789,
    }
    assert list(row) == LOG_KEYS


def test_without_a_budget_the_lifetime_total_is_reported(store: BaseStore) -> None:
    first = store.record_call(make_call(700))
    second = store.record_call(make_call(300))
    assert first == BudgetState(700, None, LIFETIME)
    assert second == BudgetState(1_000, None, LIFETIME)
    assert store.get_spent("proj", None, MONDAY) == 1_000


def test_get_spent_of_an_unknown_project_is_zero(store: BaseStore) -> None:
    assert store.get_spent("nobody", None, MONDAY) == 0
    assert store.get_spent("nobody", "monthly", MONDAY) == 0


def test_projects_are_kept_apart(store: BaseStore) -> None:
    store.record_call(make_call(5, project="a"))
    store.record_call(make_call(7, project="b"))
    assert (store.get_spent("a", None, MONDAY), store.get_spent("b", None, MONDAY)) == (5, 7)


@pytest.mark.parametrize(
    ("reset", "start", "same_period", "next_period", "keys"),
    [
        (
            "daily",
            datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc),
            datetime(2026, 3, 2, 23, 59, 59, tzinfo=timezone.utc),
            datetime(2026, 3, 3, 0, 0, tzinfo=timezone.utc),
            ("2026-03-02", "2026-03-03"),
        ),
        (
            "weekly",  # ISO weeks: Monday to Sunday
            datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc),
            datetime(2026, 3, 8, 23, 59, tzinfo=timezone.utc),
            datetime(2026, 3, 9, 0, 0, tzinfo=timezone.utc),
            ("W2026-03-02", "W2026-03-09"),
        ),
        (
            "monthly",
            datetime(2026, 2, 1, 0, 0, tzinfo=timezone.utc),
            datetime(2026, 2, 28, 23, 59, tzinfo=timezone.utc),
            datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc),
            ("2026-02", "2026-03"),
        ),
    ],
)
def test_periods_roll_over_and_keep_history(
    store: BaseStore,
    reset: Reset,
    start: datetime,
    same_period: datetime,
    next_period: datetime,
    keys: tuple[str, str],
) -> None:
    budget = BudgetSpec(limit_nanos=10_000, reset=reset)
    states = [
        store.record_call(make_call(1_000, at=start), budget),
        store.record_call(make_call(2_000, at=same_period), budget),
        store.record_call(make_call(4_000, at=next_period), budget),
    ]
    assert [(s.period, s.spent_nanos, s.limit_nanos) for s in states] == [
        (keys[0], 1_000, 10_000),
        (keys[0], 3_000, 10_000),
        (keys[1], 4_000, 10_000),  # a new period starts from zero
    ]
    assert store.get_spent("proj", reset, same_period) == 3_000
    assert store.get_spent("proj", reset, next_period) == 4_000
    assert store.get_spent("proj", None, next_period) == 7_000  # the lifetime total goes on
    assert len(all_logs(store)) == 3  # the ledger keeps every call


def test_the_period_is_that_of_started_at_in_utc(store: BaseStore) -> None:
    # Monday 1 March 2027, 00:30 in UTC+02:00, is Sunday 28 February in UTC: the day, the
    # ISO week and the month all differ from the local ones.
    started_at = datetime(2027, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    periods = {
        reset: store.record_call(make_call(10, at=started_at), BudgetSpec(100, reset)).period
        for reset in ("daily", "weekly", "monthly")
    }
    assert periods == {"daily": "2027-02-28", "weekly": "W2027-02-22", "monthly": "2027-02"}
    utc_evening = datetime(2027, 2, 28, 23, 0, tzinfo=timezone.utc)
    assert store.get_spent("proj", "daily", utc_evening) == 10
    assert store.get_spent("proj", "daily", started_at) == 10  # read back through UTC too
    assert store.get_spent("proj", "daily", datetime(2027, 3, 1, 12, tzinfo=timezone.utc)) == 0
    assert {row["created_at"] for row in all_logs(store)} == {"2027-02-28T22:30:00.000000+00:00"}


def test_thresholds_fire_once_per_period(store: BaseStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset="daily")
    day_one = [store.record_call(make_call(100), budget).crossed_thresholds for _ in range(12)]
    assert day_one == [(), (), (), (), (50,), (), (), (80,), (), (100,), (), ()]
    next_day = MONDAY + timedelta(days=1)
    big = store.record_call(make_call(900, at=next_day), budget)
    assert big.crossed_thresholds == (50, 80)  # one call can cross several
    assert store.record_call(make_call(100, at=next_day), budget).crossed_thresholds == (100,)
    assert store.record_call(make_call(100, at=next_day), budget).crossed_thresholds == ()


def test_thresholds_are_remembered_by_the_database(store_factory: StoreFactory) -> None:
    budget = BudgetSpec(limit_nanos=1_000)
    with store_factory() as store:
        assert store.record_call(make_call(600), budget).crossed_thresholds == (50,)
    with store_factory() as reopened:
        assert reopened.record_call(make_call(100), budget).crossed_thresholds == ()
        assert reopened.record_call(make_call(100), budget).crossed_thresholds == (80,)


@pytest.mark.parametrize("reset", [None, "monthly"])  # the lifetime total, a period's total
@pytest.mark.parametrize(("cost", "crossing_call"), [(300, 4), (250, 4), (1_000, 1)])
def test_exceeded_now_is_true_for_exactly_the_crossing_call(
    store: BaseStore, cost: int, crossing_call: int, reset: Reset | None
) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset=reset)
    flags = [store.record_call(make_call(cost), budget).exceeded_now for _ in range(6)]
    assert flags == [n == crossing_call for n in range(1, 7)]


def test_a_free_call_at_the_limit_does_not_count_as_crossing(store: BaseStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000)
    assert store.record_call(make_call(1_000), budget).exceeded_now
    assert not store.record_call(make_call(0), budget).exceeded_now


def test_a_budget_without_limit_reports_its_period(store: BaseStore) -> None:
    state = store.record_call(make_call(5), BudgetSpec(limit_nanos=None, reset="monthly"))
    assert state == BudgetState(5, None, "2026-03")
    state = store.record_call(make_call(6), BudgetSpec(limit_nanos=None))
    assert state == BudgetState(11, None, LIFETIME)


@pytest.mark.parametrize("limit_nanos", [None, 10**12])
def test_money_is_exact_over_many_calls(store: BaseStore, limit_nanos: int | None) -> None:
    # 2_000 x 0.1 USD summed as floats is not 200.0; the store keeps integers.
    calls = 2_000
    assert sum([0.1] * calls) != 200.0
    for _ in range(calls):
        store.log_usage("exact", "gpt-4o", 1, 1, 0.1)
    assert store.get_total_cost("exact") == 200.0
    assert store.get_spent("exact", None, MONDAY) == 200 * 10**9

    budget = BudgetSpec(limit_nanos=limit_nanos, reset="daily")
    for _ in range(calls):
        store.record_call(make_call(123, project="nanos"), budget)
    assert store.get_spent("nanos", "daily", MONDAY) == 123 * calls
    summaries = {row["project"]: row for row in store.get_all_project_summaries()}
    assert summaries["nanos"]["total_cost_nanos"] == 123 * calls
    assert summaries["exact"]["total_cost_nanos"] == 200 * 10**9
    assert summaries["exact"]["total_cost"] == 200.0


def test_amounts_up_to_the_largest_integer_are_exact(store: BaseStore) -> None:
    big = 2**62  # about 4.6 billion USD in nanos: beyond a double's exact integers
    store.record_call(make_call(big))
    assert store.record_call(make_call(1)).spent_nanos == big + 1
    assert store.get_spent("proj", None, MONDAY) == big + 1
    assert [row["cost_nanos"] for row in all_logs(store)] == [1, big]


def test_a_bad_record_is_refused_and_nothing_is_written(store: BaseStore) -> None:
    store.record_call(make_call(1))
    with pytest.raises(ValueError, match="cost_nanos"):
        store.record_call(make_call(0.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost_nanos"):
        store.record_call(make_call(2**63))
    with pytest.raises(ValueError, match="input_tokens"):
        store.record_call(make_call(1, usage=Usage(input_tokens=-1)))
    with pytest.raises(ValueError, match="unknown reset"):
        store.record_call(make_call(1), BudgetSpec(limit_nanos=5, reset="hourly"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit_nanos"):
        store.record_call(make_call(1), BudgetSpec(limit_nanos=2.5))  # type: ignore[arg-type]
    assert len(all_logs(store)) == 1
    assert store.get_spent("proj", None, MONDAY) == 1


# -- the llm-toll 0.13 API ------------------------------------------------------------------


def test_log_usage_and_get_total_cost(store: BaseStore) -> None:
    assert store.get_total_cost("chat") == 0.0
    store.log_usage("chat", "gpt-4o", 100, 20, 0.25)
    store.log_usage("chat", "gpt-4o-mini", 10, 2, 0.125)
    assert store.get_total_cost("chat") == 0.375
    rows = store.get_usage_logs("chat")
    assert [(r["model"], r["input_tokens"], r["output_tokens"], r["cost"]) for r in rows] == [
        ("gpt-4o-mini", 10, 2, 0.125),  # newest first
        ("gpt-4o", 100, 20, 0.25),
    ]
    assert all(r["price_known"] and r["operation"] == "chat" for r in rows)


def test_usage_logs_are_newest_first_and_limited(store: BaseStore) -> None:
    for hour in range(5):
        store.record_call(make_call(hour, at=MONDAY + timedelta(hours=hour)))
    store.record_call(make_call(99, project="other"))
    rows = store.get_usage_logs("proj", limit=3)
    assert [r["cost_nanos"] for r in rows] == [4, 3, 2]
    assert store.get_usage_logs("proj", limit=0) == []
    assert len(store.get_usage_logs("proj", limit=-1)) == 5
    # Calls of the same instant: the last recorded first.
    store.record_call(make_call(7, project="same"))
    store.record_call(make_call(8, project="same"))
    assert [r["cost_nanos"] for r in store.get_usage_logs("same")] == [8, 7]


def test_usage_logs_filtered(store: BaseStore) -> None:
    store.record_call(make_call(1, project="a", model="m1"))
    store.record_call(make_call(2, project="a", model="m2"))
    store.record_call(make_call(3, project="b", model="m1"))

    def costs(**filters: Any) -> list[int]:
        return sorted(r["cost_nanos"] for r in store.get_usage_logs_filtered(**filters))

    assert costs() == [1, 2, 3]
    assert costs(project="a") == [1, 2]
    assert costs(model="m1") == [1, 3]
    assert costs(project="a", model="m1") == [1]
    assert costs(project="nobody") == []
    assert len(store.get_usage_logs_filtered(limit=2)) == 2
    assert len(store.get_usage_logs_filtered(limit=0)) == 3  # 0 means all
    assert len(store.get_usage_logs_filtered(limit=-5)) == 3
    assert all(list(row) == LOG_KEYS for row in store.get_usage_logs_filtered())


def test_summaries_by_project_and_model(store: BaseStore) -> None:
    store.record_call(make_call(100_000_000, project="a", model="m1", at=MONDAY))
    store.record_call(make_call(300_000_000, project="a", model="m2", at=MONDAY))
    store.record_call(
        make_call(50_000_000, project="b", model="m1", at=MONDAY + timedelta(hours=3))
    )
    projects = store.get_all_project_summaries()
    assert projects == [
        {
            "project": "a",
            "total_cost": 0.4,
            "total_input_tokens": 20,
            "total_output_tokens": 10,
            "call_count": 2,
            "last_used": "2026-03-02T12:00:00.000000+00:00",
            "total_cost_nanos": 400_000_000,
        },
        {
            "project": "b",
            "total_cost": 0.05,
            "total_input_tokens": 10,
            "total_output_tokens": 5,
            "call_count": 1,
            "last_used": "2026-03-02T15:00:00.000000+00:00",
            "total_cost_nanos": 50_000_000,
        },
    ]
    assert all(list(row) == PROJECT_SUMMARY_KEYS for row in projects)

    models = store.get_model_summaries()
    assert [(m["model"], m["total_cost"], m["call_count"]) for m in models] == [
        ("m2", 0.3, 1),
        ("m1", 0.15, 2),
    ]
    assert models[1]["total_cost_nanos"] == 150_000_000
    assert models[1]["total_input_tokens"] == 20
    assert [m["model"] for m in store.get_model_summaries(project="b")] == ["m1"]
    assert store.get_model_summaries(project="nobody") == []
    by_project = store.get_project_summaries_for_model("m1")
    assert [(p["project"], p["total_cost"]) for p in by_project] == [("a", 0.1), ("b", 0.05)]
    assert all(list(row) == MODEL_SUMMARY_KEYS for row in models)
    assert all(list(row) == PROJECT_FOR_MODEL_KEYS for row in by_project)


def test_reports_sort_ties_by_name_bytewise(store: BaseStore) -> None:
    for project in ("b", "B", "a", "_"):
        store.record_call(make_call(10, project=project, model=f"m-{project}"))
    assert [p["project"] for p in store.get_all_project_summaries()] == ["B", "_", "a", "b"]
    assert [m["model"] for m in store.get_model_summaries()] == ["m-B", "m-_", "m-a", "m-b"]


def test_daily_cost_trends_cover_the_last_days(store: BaseStore) -> None:
    now = datetime.now(timezone.utc)
    store.record_call(make_call(1_000_000, at=now - timedelta(days=2)))
    store.record_call(make_call(2_000_000, at=now - timedelta(days=2)))
    store.record_call(make_call(4_000_000, at=now - timedelta(days=1)))
    store.record_call(make_call(8_000_000, at=now - timedelta(days=40)))
    trends = store.get_daily_cost_trends(days=30)
    assert trends == [
        {
            "date": (now - timedelta(days=2)).strftime("%Y-%m-%d"),
            "daily_cost": 0.003,
            "daily_input_tokens": 20,
            "daily_output_tokens": 10,
            "call_count": 2,
            "daily_cost_nanos": 3_000_000,
        },
        {
            "date": (now - timedelta(days=1)).strftime("%Y-%m-%d"),
            "daily_cost": 0.004,
            "daily_input_tokens": 10,
            "daily_output_tokens": 5,
            "call_count": 1,
            "daily_cost_nanos": 4_000_000,
        },
    ]
    assert all(list(row) == DAILY_KEYS for row in trends)
    assert len(store.get_daily_cost_trends(days=60)) == 3


def test_budget_utilization_per_project_and_period(store: BaseStore) -> None:
    store.record_call(make_call(250_000_000, project="a"), BudgetSpec(10**9, "daily"))
    store.log_usage("b", "m", 1, 1, 0.5)
    rows = store.get_budget_utilization()
    view = {
        (r["project"], r["period"]): (
            r["total_cost"],
            r["limit"],
            r["utilization"],
            r["thresholds_fired"],
            r["total_cost_nanos"],
            r["limit_nanos"],
        )
        for r in rows
    }
    assert view == {
        ("b", "all"): (0.5, None, None, 0, 500_000_000, None),
        ("a", "all"): (0.25, None, None, 0, 250_000_000, None),
        ("a", "2026-03-02"): (0.25, 1.0, 0.25, 0, 250_000_000, 10**9),
    }
    assert [(r["project"], r["period"]) for r in rows] == [
        ("b", "all"),  # costliest first, then by project and period
        ("a", "2026-03-02"),
        ("a", "all"),
    ]
    for row in rows:
        assert list(row) == BUDGET_KEYS
        assert row["last_reset_at"] is None
        assert datetime.fromisoformat(row["updated_at"]).tzinfo is not None


def test_reset_budget_zeroes_totals_and_keeps_the_ledger(store: BaseStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset="daily")
    assert store.record_call(make_call(900), budget).crossed_thresholds == (50, 80)
    store.record_call(make_call(5, project="other"))
    store.reset_budget("proj")
    store.reset_budget("nobody")  # nothing to reset: no error
    assert store.get_total_cost("proj") == 0.0
    assert store.get_spent("proj", "daily", MONDAY) == 0
    assert store.get_spent("other", None, MONDAY) == 5  # other projects untouched
    assert len(store.get_usage_logs("proj")) == 1
    reset_rows = [r for r in store.get_budget_utilization() if r["project"] == "proj"]
    assert len(reset_rows) == 2
    assert all(r["last_reset_at"] is not None and r["thresholds_fired"] == 0 for r in reset_rows)
    again = store.record_call(make_call(900), budget)
    assert (again.spent_nanos, again.crossed_thresholds) == (900, (50, 80))  # fire again


# -- budget keys (per-tenant budgets) ---------------------------------------------------------


def keyed(cost_nanos: int, key: str | None, **fields: Any) -> CallRecord:
    return make_call(cost_nanos, budget_key=key, **fields)


def test_budget_keys_are_kept_apart_from_each_other_and_from_the_project(
    store: BaseStore,
) -> None:
    budget = BudgetSpec(10_000, "daily")
    key_budget = BudgetSpec(1_000, "daily")
    first = store.record_call(keyed(300, "alice"), budget, key_budget)
    assert first == BudgetState(
        300, 10_000, "2026-03-02", key_state=BudgetState(300, 1_000, "2026-03-02")
    )
    store.record_call(keyed(200, "bob"), budget, key_budget)
    store.record_call(keyed(50, None), budget, key_budget)  # no key: the project only
    store.record_call(keyed(7, "carol"), budget)  # no key budget: ledger only
    state = store.record_call(keyed(400, "alice"), budget, key_budget)
    assert (state.spent_nanos, state.key_state) == (
        957,
        BudgetState(700, 1_000, "2026-03-02", (50,)),
    )
    assert store.get_spent("proj", "daily", MONDAY) == 957
    assert store.get_spent("proj", "daily", MONDAY, budget_key="alice") == 700
    assert store.get_spent("proj", "daily", MONDAY, budget_key="bob") == 200
    assert store.get_spent("proj", None, MONDAY, budget_key="alice") == 700  # lifetime too
    assert store.get_spent("proj", "daily", MONDAY, budget_key="carol") == 0
    assert store.get_spent("other", "daily", MONDAY, budget_key="alice") == 0
    assert store.get_total_cost("proj") == 957 / 1e9
    assert [r["budget_key"] for r in all_logs(store)] == ["alice", "carol", None, "bob", "alice"]

    rows = store.get_budget_utilization()
    view = {
        (r["budget_key"], r["period"]): (r["total_cost_nanos"], r["limit_nanos"], r["utilization"])
        for r in rows
    }
    assert view == {
        ("", "all"): (957, None, None),
        ("", "2026-03-02"): (957, 10_000, 957 / 10_000),
        ("alice", "all"): (700, None, None),
        ("alice", "2026-03-02"): (700, 1_000, 0.7),
        ("bob", "all"): (200, None, None),
        ("bob", "2026-03-02"): (200, 1_000, 0.2),
    }
    for row in rows:
        assert list(row) == BUDGET_KEYS


def test_budget_keys_have_their_own_periods_and_thresholds(store: BaseStore) -> None:
    budget = BudgetSpec(None, "daily")
    key_budget = BudgetSpec(100, "daily")
    tuesday = MONDAY + timedelta(days=1)
    states = [
        store.record_call(keyed(cost, key, at=at), budget, key_budget)
        for cost, key, at in [
            (60, "a", MONDAY),
            (60, "b", MONDAY),
            (30, "a", MONDAY),
            (20, "a", MONDAY),
            (60, "a", tuesday),
        ]
    ]
    key_states = [state.key_state for state in states]
    assert [(k.spent_nanos, k.crossed_thresholds, k.exceeded_now) for k in key_states if k] == [
        (60, (50,), False),
        (60, (50,), False),  # b's thresholds are b's own
        (90, (80,), False),
        (110, (100,), True),
        (60, (50,), False),  # a new period fires again
    ]
    assert [k.period for k in key_states if k] == ["2026-03-02"] * 4 + ["2026-03-03"]
    assert all(state.limit_nanos is None for state in states)  # the project has no limit
    assert store.get_spent("proj", "daily", MONDAY, budget_key="a") == 110
    assert store.get_spent("proj", "daily", tuesday, budget_key="a") == 60
    assert store.get_spent("proj", None, tuesday, budget_key="a") == 170
    assert store.get_spent("proj", "daily", MONDAY) == 170


def test_thresholds_of_budget_keys_are_remembered_by_the_database(
    store_factory: StoreFactory,
) -> None:
    key_budget = BudgetSpec(100, None)
    with store_factory() as store:
        state = store.record_call(keyed(60, "k"), None, key_budget)
        assert state == BudgetState(
            60, None, LIFETIME, key_state=BudgetState(60, 100, "all", (50,))
        )
    with store_factory() as store:
        state = store.record_call(keyed(30, "k"), None, key_budget)
        assert state.key_state == BudgetState(90, 100, "all", (80,))


def test_reset_budget_resets_the_keys_of_the_project(store: BaseStore) -> None:
    key_budget = BudgetSpec(100, "daily")
    store.record_call(keyed(90, "k"), BudgetSpec(1_000, "daily"), key_budget)
    store.record_call(keyed(90, "k", project="other"), None, key_budget)
    store.reset_budget("proj")
    assert store.get_spent("proj", "daily", MONDAY, budget_key="k") == 0
    assert store.get_spent("proj", None, MONDAY, budget_key="k") == 0
    assert store.get_spent("other", "daily", MONDAY, budget_key="k") == 90
    again = store.record_call(keyed(90, "k"), BudgetSpec(1_000, "daily"), key_budget)
    assert again.key_state == BudgetState(90, 100, "2026-03-02", (50, 80))


def test_a_bad_key_budget_is_refused_and_nothing_is_written(store: BaseStore) -> None:
    with pytest.raises(ValueError, match="limit_nanos"):
        store.record_call(keyed(1, "k"), None, BudgetSpec(-1))
    assert all_logs(store) == []


def test_log_usage_if_within_budget_records_every_call(store: BaseStore) -> None:
    totals = [store.log_usage_if_within_budget("b", "m", 1, 1, 0.4, 1.0) for _ in range(3)]
    assert totals == [0.4, 0.8, 1.2]  # the crossing call is recorded and returns
    with pytest.raises(BudgetExceededError) as refused:
        store.log_usage_if_within_budget("b", "m", 1, 1, 0.4, 1.0)
    assert (refused.value.project, refused.value.max_budget) == ("b", 1.0)
    assert refused.value.current_cost == 1.6
    assert store.get_total_cost("b") == 1.6  # recorded all the same: the money is spent
    assert len(store.get_usage_logs("b")) == 4
    [row] = [r for r in store.get_budget_utilization() if r["project"] == "b"]
    assert (row["limit"], row["utilization"]) == (1.0, 1.6)


def test_bad_compat_arguments_warn_and_lose_nothing(store: BaseStore) -> None:
    with pytest.warns(StoreWarning, match="not a non-negative amount") as caught:
        store.log_usage("p", "m", 10, 5, float("nan"))
    assert caught[0].filename == __file__  # points at the caller
    with pytest.warns(StoreWarning, match="bad token counts"):
        store.log_usage("p", "m", -3, 5, 0.5)
    with pytest.warns(StoreWarning, match="max_budget"):
        assert store.log_usage_if_within_budget("p", "m", 1, 1, 0.25, float("inf")) == 0.75
    rows = store.get_usage_logs("p")
    assert [(r["cost"], r["price_known"], r["input_tokens"]) for r in rows] == [
        (0.25, True, 1),
        (0.5, True, 0),
        (0.0, False, 10),
    ]


def test_close_is_idempotent_and_the_store_reopens(store: BaseStore) -> None:
    store.log_usage("p", "m", 1, 1, 1.0)
    store.close()
    store.close()
    assert store.get_total_cost("p") == 1.0  # opened again on demand
    store.log_usage("p", "m", 1, 1, 1.0)
    store.close()
    assert store.get_total_cost("p") == 2.0


def test_stores_on_one_database_see_each_other(store_factory: StoreFactory) -> None:
    first, second = store_factory(), store_factory()
    first.record_call(make_call(10))
    assert second.record_call(make_call(5)).spent_nanos == 15
    assert first.get_spent("proj", None, MONDAY) == 15


def test_reads_wait_for_writes_in_flight_and_record_call_does_not(store: BaseStore) -> None:
    waited: list[str] = []
    store.set_write_barrier(lambda: waited.append("barrier"))
    store.record_call(make_call(1))
    store.log_usage("proj", "m", 1, 1, 0.5)  # a write: it is what the barrier waits for
    assert waited == []
    reads: list[Callable[[], object]] = [
        lambda: store.get_spent("proj", None, MONDAY),
        lambda: store.get_total_cost("proj"),
        lambda: store.get_usage_logs("proj"),
        lambda: store.get_usage_logs_filtered(),
        lambda: store.get_all_project_summaries(),
        lambda: store.get_model_summaries(),
        lambda: store.get_project_summaries_for_model("m"),
        lambda: store.get_daily_cost_trends(),
        lambda: store.get_budget_utilization(),
        lambda: store.reset_budget("proj"),
    ]
    for count, read in enumerate(reads, start=1):
        read()
        assert len(waited) == count
    store.set_write_barrier(None)


# -- failures -------------------------------------------------------------------------------


def test_an_unreachable_database_is_a_store_error_or_a_warning(
    store_factory: StoreFactory,
) -> None:
    broken = store_factory.unreachable()
    failed = r"^llm_toll store \S+: could not \w+"  # the database, then what failed and why
    with pytest.raises(StoreError, match=failed) as failure:
        broken.record_call(make_call())
    assert failure.value.path is not None
    assert str(failure.value).startswith(f"llm_toll store {failure.value.path}: ")
    with pytest.raises(StoreError, match=failed):
        broken.record_call(make_call(), BudgetSpec(10, "daily"))
    with pytest.raises(StoreError, match=failed):
        broken.get_spent("proj", "daily", MONDAY)

    # The llm-toll 0.13 API warns and answers with a neutral value, as 0.13 never raised.
    with pytest.warns(StoreWarning, match=failed):
        broken.log_usage("proj", "m", 1, 1, 0.5)
    with pytest.warns(StoreWarning, match=failed):
        assert broken.log_usage_if_within_budget("proj", "m", 1, 1, 0.5, 1.0) == 0.0
    with pytest.warns(StoreWarning, match=failed):
        assert broken.get_total_cost("proj") == 0.0
    with pytest.warns(StoreWarning, match=failed):
        broken.reset_budget("proj")
    reads: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: broken.get_usage_logs("proj"),
        lambda: broken.get_usage_logs_filtered(),
        lambda: broken.get_all_project_summaries(),
        lambda: broken.get_model_summaries(),
        lambda: broken.get_model_summaries(project="proj"),
        lambda: broken.get_project_summaries_for_model("m"),
        lambda: broken.get_daily_cost_trends(),
        lambda: broken.get_budget_utilization(),
    ]
    for read in reads:
        with pytest.warns(StoreWarning, match=failed) as caught:
            assert read() == []
        assert caught[0].filename == __file__  # points at the caller
    broken.close()
    broken.close()


# -- strict budgets: reservations -------------------------------------------------------------

DAILY = BudgetSpec(1_000, "daily")
TTL_S = 60.0


def test_reserve_settle_and_release_arithmetic(store: BaseStore) -> None:
    first = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=300, ttl_s=TTL_S
    )
    second = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=200, ttl_s=TTL_S
    )
    assert first is not None and second is not None
    assert first.id != second.id
    assert (first.period, first.amount_nanos, first.budget_key) == ("2026-03-02", 300, None)
    assert first.expires_at == MONDAY + timedelta(seconds=TTL_S)
    assert store.get_reserved("proj", "daily", MONDAY) == 500
    assert store.get_spent("proj", "daily", MONDAY) == 0

    # Settled to the actual cost: recorded like record_call, reservation released at once.
    state = store.settle_reservation(first, make_call(120))
    assert state == BudgetState(120, 1_000, "2026-03-02")
    assert store.get_reserved("proj", "daily", MONDAY) == 200
    assert store.get_spent("proj", "daily", MONDAY) == 120
    assert store.get_spent("proj", None, MONDAY) == 120
    assert len(all_logs(store)) == 1

    store.release_reservation(second)
    assert store.get_reserved("proj", "daily", MONDAY) == 0
    # Releasing or settling again never releases twice; a late settlement still records.
    store.release_reservation(second)
    store.release_reservation(first)
    assert store.settle_reservation(second, make_call(5)).spent_nanos == 125
    assert store.get_reserved("proj", "daily", MONDAY) == 0
    assert len(all_logs(store)) == 2


def test_reserve_refuses_what_does_not_fit(store: BaseStore) -> None:
    store.record_call(make_call(400), DAILY)
    held = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=500, ttl_s=TTL_S
    )
    assert held is not None
    # spent 400 + reserved 500 + 101 > 1000, though spent alone is far under the limit.
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=101, ttl_s=TTL_S)
        is None
    )
    exact = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=100, ttl_s=TTL_S
    )  # exactly at the limit
    assert exact is not None
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=0, ttl_s=TTL_S)
        is not None
    )  # nothing to add
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=1, ttl_s=TTL_S)
        is None
    )
    assert store.get_reserved("proj", "daily", MONDAY) == 600
    # A refusal writes no reservation; another day is another period.
    assert store.reserve(
        "proj",
        budget_key=None,
        spec=DAILY,
        at=MONDAY + timedelta(days=1),
        amount_nanos=1_000,
        ttl_s=TTL_S,
    )
    # A spec without a limit never refuses.
    assert store.reserve(
        "other",
        budget_key=None,
        spec=BudgetSpec(None, "daily"),
        at=MONDAY,
        amount_nanos=10**15,
        ttl_s=TTL_S,
    )


def test_reservations_of_a_budget_key(store: BaseStore) -> None:
    key_spec = BudgetSpec(300, "daily")
    held = store.reserve(
        "proj",
        budget_key="k",
        spec=DAILY,
        at=MONDAY,
        amount_nanos=250,
        ttl_s=TTL_S,
        key_spec=key_spec,
    )
    assert held is not None and held.budget_key == "k"
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 250
    assert store.get_reserved("proj", "daily", MONDAY) == 250
    # The key's limit refuses; another key and the project go on.
    assert (
        store.reserve(
            "proj",
            budget_key="k",
            spec=DAILY,
            at=MONDAY,
            amount_nanos=51,
            ttl_s=TTL_S,
            key_spec=key_spec,
        )
        is None
    )
    other = store.reserve(
        "proj",
        budget_key="j",
        spec=DAILY,
        at=MONDAY,
        amount_nanos=51,
        ttl_s=TTL_S,
        key_spec=key_spec,
    )
    assert other is not None
    state = store.settle_reservation(held, keyed(200, "k"))
    assert state.spent_nanos == 200
    assert state.key_state == BudgetState(200, 300, "2026-03-02", (50,), False)
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 0
    assert store.get_reserved("proj", "daily", MONDAY) == 51
    store.release_reservation(other)
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="j") == 0
    assert store.get_reserved("proj", "daily", MONDAY) == 0
    with pytest.raises(ValueError, match="reset"):
        store.reserve(
            "proj",
            budget_key="k",
            spec=DAILY,
            at=MONDAY,
            amount_nanos=1,
            ttl_s=TTL_S,
            key_spec=BudgetSpec(300, "monthly"),
        )
    with pytest.raises(ValueError, match="amount_nanos"):
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=-1, ttl_s=TTL_S)


def test_expired_reservations_are_reclaimed_by_the_next_reserve(store: BaseStore) -> None:
    key_spec = BudgetSpec(1_000, "daily")
    crashed = store.reserve(
        "proj",
        budget_key="k",
        spec=DAILY,
        at=MONDAY,
        amount_nanos=600,
        ttl_s=30.0,
        key_spec=key_spec,
    )
    alive = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=300, ttl_s=3600.0
    )
    assert crashed is not None and alive is not None
    assert (
        store.reserve(
            "proj",
            budget_key=None,
            spec=DAILY,
            at=MONDAY + timedelta(seconds=29),
            amount_nanos=200,
            ttl_s=60.0,
        )
        is None
    )
    # At its expiry the crashed process's reservation is given back, the live one kept.
    later = MONDAY + timedelta(seconds=30)
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=later, amount_nanos=200, ttl_s=60.0)
        is not None
    )
    assert store.get_reserved("proj", "daily", MONDAY) == 500
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 0
    # The crashed call's late settlement records its cost and releases nothing twice.
    store.settle_reservation(crashed, keyed(100, "k"))
    assert store.get_reserved("proj", "daily", MONDAY) == 500
    assert store.get_spent("proj", "daily", MONDAY, budget_key="k") == 100


# -- processes ------------------------------------------------------------------------------


def record_one_in_a_forked_child(store: BaseStore) -> None:
    store.record_call(make_call(10))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_child_uses_connections_of_its_own(store: BaseStore) -> None:
    store.record_call(make_call(1))  # the parent's connections are open across the fork
    child = multiprocessing.get_context("fork").Process(
        target=record_one_in_a_forked_child, args=(store,)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert store.record_call(make_call(100)).spent_nanos == 111  # the parent's still work
    assert store.get_spent("proj", None, MONDAY) == 111
    assert len(all_logs(store)) == 3


# Several processes, each with several threads, writing one database at the same time.
# -- shared rate limits ---------------------------------------------------------------------

T0 = 1_800_000_000.0  # seconds since the epoch: the tests' controlled clock


def test_shared_rpm_admits_up_to_the_limit_then_tells_when(store: BaseStore) -> None:
    assert store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0).admitted
    assert store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 10).admitted
    refused = store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 20)
    assert (refused.admitted, refused.limit_type) == (False, "rpm")
    assert refused.retry_after == pytest.approx(40.0)  # the first request leaves at T0 + 60
    assert store.acquire_rate(
        "other", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 20
    ).admitted  # scopes are apart
    assert not store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 59.5).admitted
    assert store.acquire_rate(
        "s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 60
    ).admitted  # gone at exactly T0 + 60
    refused = store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 61)
    assert refused.retry_after == pytest.approx(9.0)
    assert store.acquire_rate(
        "s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 200
    ).admitted  # the window emptied


def test_shared_tpm_reserves_settles_and_releases(store: BaseStore) -> None:
    first = store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=60, now=T0)
    assert first.admitted and first.lease_id is not None
    refused = store.acquire_rate(
        "t", rpm=None, tpm=100, estimated_tokens=60, now=T0 + 1
    )  # 60 held + 60 > 100
    assert (refused.admitted, refused.limit_type) == (False, "tpm")
    assert refused.retry_after == pytest.approx(59.0)
    store.settle_rate("t", first.lease_id, 30, T0 + 5)  # it really used 30, counted from T0 + 5
    second = store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=60, now=T0 + 6)
    assert second.admitted and second.lease_id is not None
    refused = store.acquire_rate(
        "t", rpm=None, tpm=100, estimated_tokens=20, now=T0 + 7
    )  # 30 + 60 + 20 > 100
    assert refused.retry_after == pytest.approx(58.0)  # when the settled 30 leave
    store.settle_rate("t", second.lease_id, 0, T0 + 8)  # a release gives the 60 back
    assert store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=20, now=T0 + 8).admitted
    # Both limits: the one that frees up last is reported.
    assert store.acquire_rate("both", rpm=1, tpm=10, estimated_tokens=10, now=T0).admitted
    refused = store.acquire_rate("both", rpm=1, tpm=10, estimated_tokens=10, now=T0 + 30)
    assert refused.retry_after == pytest.approx(30.0)
    # An estimate above the whole limit needs an empty window, not forever.
    assert store.acquire_rate("huge", rpm=None, tpm=10, estimated_tokens=500, now=T0).admitted


def test_shared_rate_arguments_are_checked(store: BaseStore) -> None:
    with pytest.raises(ValueError, match="scope"):
        store.acquire_rate("", rpm=1, tpm=None, estimated_tokens=0, now=T0)
    with pytest.raises(ValueError, match="rpm"):
        store.acquire_rate("s", rpm=0, tpm=None, estimated_tokens=0, now=T0)
    with pytest.raises(ValueError, match="estimated_tokens"):
        store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=-1, now=T0)
    with pytest.raises(ValueError, match="actual_tokens"):
        store.settle_rate("s", 1, -5, T0)


def test_shared_rate_events_are_pruned_as_the_window_moves(store: BaseStore) -> None:
    for n in range(50):
        assert store.acquire_rate(
            "p", rpm=1_000, tpm=None, estimated_tokens=0, now=T0 + n * 10
        ).admitted
    # Only the last 6 (within 60 s of T0 + 490) are left: the window is all that is read.
    refused = store.acquire_rate("p", rpm=6, tpm=None, estimated_tokens=0, now=T0 + 490)
    assert refused.retry_after == pytest.approx(10.0)


# Workers are spawned, so each opens the (fresh) database on its own, all at once.

PROCESSES = 4
THREADS = 4
CALLS = 150
TOTAL_CALLS = PROCESSES * THREADS * CALLS
COST_NANOS = 1_000_003  # not a round number, so any lost or doubled call shows
LIMIT_NANOS = COST_NANOS * (TOTAL_CALLS // 2)


def record_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's calls; returns the (crossed thresholds, exceeded_now) of each."""
    budget = BudgetSpec(limit_nanos=LIMIT_NANOS, reset="daily")
    results: list[Any] = []
    for n in range(CALLS):
        call = make_call(COST_NANOS, project="shared", response_id=f"{worker}-{n}")
        state = store.record_call(call, budget)
        results.append((state.crossed_thresholds, state.exceeded_now))
    return results


def log_within_budget(store: BaseStore, worker: str) -> list[Any]:
    """One thread's llm-toll 0.13 calls; returns ("ok" | "refused", total in nano-USD)."""
    results: list[Any] = []
    cost = COST_NANOS / 1e9
    max_budget = LIMIT_NANOS / 1e9
    for _ in range(CALLS):
        try:
            total = store.log_usage_if_within_budget("legacy", "gpt-4o", 3, 2, cost, max_budget)
            results.append(("ok", usd_to_nanos(total)))
        except BudgetExceededError as refused:
            results.append(("refused", usd_to_nanos(refused.current_cost or 0)))
    return results


KEYS = 4
KEY_LIMIT_NANOS = COST_NANOS * (TOTAL_CALLS // KEYS // 2)


def record_keyed_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's calls spread over KEYS budget keys; returns each call's key and states."""
    budget = BudgetSpec(limit_nanos=LIMIT_NANOS, reset="daily")
    key_budget = BudgetSpec(limit_nanos=KEY_LIMIT_NANOS, reset="daily")
    results: list[Any] = []
    for n in range(CALLS):
        key = f"k{n % KEYS}"
        call = make_call(COST_NANOS, project="keyed", response_id=f"{worker}-{n}", budget_key=key)
        state = store.record_call(call, budget, key_budget)
        assert state.key_state is not None
        key_state = state.key_state
        results.append(
            (
                key,
                state.crossed_thresholds,
                state.exceeded_now,
                key_state.crossed_thresholds,
                key_state.exceeded_now,
            )
        )
    return results


# Strict budgets through the decorator: each call reserves its worst case, then settles to
# its actual cost, which varies from call to call and never exceeds the worst case.
STRICT_MODEL = "strict-load-model"
STRICT_CALLS = 20
STRICT_WORST_USD = 0.3  # 100 input tokens at $1/1k + up to 100 output tokens at $2/1k
STRICT_LIMIT_NANOS = usd_to_nanos(25.0)  # room for about half of the calls


def strict_decorated(store: BaseStore) -> Callable[..., Any]:
    import llm_toll
    from llm_toll import _runtime

    if _runtime._store is not store:
        llm_toll.set_store(store)
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    llm_toll.default_registry.register_model(STRICT_MODEL, 0.001, 0.002)

    @llm_toll.track_costs(
        project="strict",
        max_budget=STRICT_LIMIT_NANOS / 1e9,
        strict=True,
        estimate=lambda call_id, output_tokens: STRICT_WORST_USD,
    )
    def ask(call_id: str, output_tokens: int) -> dict[str, Any]:
        return strict_response(call_id, output_tokens)

    return ask


def strict_response(call_id: str, output_tokens: int) -> dict[str, Any]:
    return {
        "id": call_id,
        "object": "chat.completion",
        "model": STRICT_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": output_tokens,
                  "total_tokens": 100 + output_tokens},
    }  # fmt: skip


def strict_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's strict calls through the decorator; returns ("ok", id) or ("refused",)."""
    ask = strict_decorated(store)
    results: list[Any] = []
    for n in range(STRICT_CALLS):
        call_id = f"{worker}-{n}"
        try:
            ask(call_id, (n * 37) % 101)
        except BudgetExceededError:
            results.append(("refused", call_id))
        else:
            results.append(("ok", call_id))
    return results


def default_mode_calls(store: BaseStore, worker: str) -> list[Any]:
    """The same calls as ``strict_calls`` without ``strict``: checked, not reserved."""
    import llm_toll

    strict_decorated(store)  # the store and the model's price

    @llm_toll.track_costs(project="default-mode", max_budget=STRICT_LIMIT_NANOS / 1e9)
    def ask(call_id: str, output_tokens: int) -> dict[str, Any]:
        return strict_response(call_id, output_tokens)

    results: list[Any] = []
    for n in range(STRICT_CALLS):
        call_id = f"{worker}-{n}"
        try:
            ask(call_id, (n * 37) % 101)
        except BudgetExceededError:
            results.append(("refused", call_id))
        else:
            results.append(("ok", call_id))
    return results


RATE_N = 37
RATE_CALLS = 10  # per thread: 160 tries for 37 places


def shared_rate_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's calls through ``@track_costs(rate_limit=RATE_N, shared_limits=True)`` at
    one controlled instant; returns ("ok",) or ("refused", retry_after) for each."""
    import llm_toll
    from llm_toll import _runtime
    from llm_toll._call import admission

    if _runtime._store is not store:
        llm_toll.set_store(store)
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    admission._wall_clock = lambda: T0  # every process and thread asks at the same instant

    @llm_toll.track_costs(project="rate", rate_limit=RATE_N, shared_limits=True)
    def ask(call_id: str) -> dict[str, Any]:
        return strict_response(call_id, 1)

    results: list[Any] = []
    for n in range(RATE_CALLS):
        try:
            ask(f"{worker}-{n}")
        except LocalRateLimitError as refused:
            results.append(("refused", refused.retry_after))
        else:
            results.append(("ok",))
    return results


WORKLOADS = {
    "shared_rate_calls": shared_rate_calls,
    "strict_calls": strict_calls,
    "default_mode_calls": default_mode_calls,
    "record_calls": record_calls,
    "log_within_budget": log_within_budget,
    "record_keyed_calls": record_keyed_calls,
}


def process_main(
    backend: str, location: str, workload: str, index: int, start: Any, results: Any
) -> None:
    """A spawned process: THREADS threads share one store, all start together."""
    store = open_store(backend, location)
    go = threading.Barrier(THREADS)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def thread_main(thread_index: int) -> None:
        go.wait()
        try:
            outcome = WORKLOADS[workload](store, f"{index}.{thread_index}")
        except BaseException as exc:  # reported to the parent, which fails the test
            outcome = [("error", repr(exc))]
        with lock:
            outcomes.extend(outcome)

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(THREADS)]
    start.wait()  # every process opens the fresh database at the same moment
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    results.put(outcomes)


def run_processes(factory: StoreFactory, workload: str, processes: int = PROCESSES) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    spawned = [
        context.Process(
            target=process_main,
            args=(factory.backend, factory.location, workload, i, start, results),
        )
        for i in range(processes)
    ]
    for process in spawned:
        process.start()
    try:
        outcomes: list[Any] = []
        for _ in spawned:
            outcomes.extend(results.get(timeout=120))
        for process in spawned:
            process.join(timeout=60)
            assert process.exitcode == 0
    finally:
        for process in spawned:
            if process.is_alive():
                process.kill()
                process.join()
    assert [o for o in outcomes if o[0] == "error"] == []
    return outcomes


@pytest.mark.filterwarnings("ignore::UserWarning")  # the model has no price
def test_shared_rate_limit_holds_across_processes(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "shared_rate_calls")
    assert len(outcomes) == PROCESSES * THREADS * RATE_CALLS
    assert Counter(o[0] for o in outcomes)["ok"] == RATE_N  # exactly N, across processes
    assert {o[1] for o in outcomes if o[0] == "refused"} == {60.0}
    with store_factory() as store:
        scope = "rate:shared_rate_calls.<locals>.ask"
        admission = store.acquire_rate(scope, rpm=RATE_N, tpm=None, estimated_tokens=0, now=T0)
        assert not admission.admitted


def test_concurrent_record_call_loses_nothing(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "record_calls")
    assert len(outcomes) == TOTAL_CALLS

    with store_factory() as store:
        assert store.get_spent("shared", "daily", MONDAY) == COST_NANOS * TOTAL_CALLS
        assert store.get_spent("shared", None, MONDAY) == COST_NANOS * TOTAL_CALLS
        rows = store.get_usage_logs_filtered(project="shared", limit=0)
    assert len(rows) == TOTAL_CALLS
    assert len({row["response_id"] for row in rows}) == TOTAL_CALLS  # each call exactly once

    # Totals are serialised: exactly one call crossed the limit, each threshold fired once.
    assert sum(exceeded for _, exceeded in outcomes) == 1
    fired = Counter(pct for crossed, _ in outcomes for pct in crossed)
    assert fired == {50: 1, 80: 1, 100: 1}


def test_concurrent_record_call_with_budget_keys_is_exact(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "record_keyed_calls")
    assert len(outcomes) == TOTAL_CALLS
    calls_per_key = Counter(o[0] for o in outcomes)
    assert len(calls_per_key) == KEYS

    with store_factory() as store:
        assert store.get_spent("keyed", "daily", MONDAY) == COST_NANOS * TOTAL_CALLS
        for key, calls in calls_per_key.items():
            for reset in ("daily", None):
                spent = store.get_spent("keyed", reset, MONDAY, budget_key=key)
                assert spent == COST_NANOS * calls
        rows = store.get_usage_logs_filtered(project="keyed", limit=0)
    assert len({row["response_id"] for row in rows}) == TOTAL_CALLS
    assert Counter(row["budget_key"] for row in rows) == calls_per_key
    # The project's and every key's totals are serialised: one crossing call each, and each
    # threshold fired once per scope.
    assert sum(o[2] for o in outcomes) == 1
    assert Counter(pct for o in outcomes for pct in o[1]) == {50: 1, 80: 1, 100: 1}
    for k in range(KEYS):
        of_key = [o for o in outcomes if o[0] == f"k{k}"]
        assert sum(o[4] for o in of_key) == 1
        assert Counter(pct for o in of_key for pct in o[3]) == {50: 1, 80: 1, 100: 1}


def test_concurrent_log_usage_if_within_budget_is_atomic(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "log_within_budget")

    # Every call was recorded and saw its own total: the totals are exactly 1..N calls.
    totals = sorted(total for _, total in outcomes)
    assert totals == [COST_NANOS * n for n in range(1, TOTAL_CALLS + 1)]
    # Refused are exactly the calls that found the budget already spent.
    refused = sorted(total for outcome, total in outcomes if outcome == "refused")
    assert refused == [COST_NANOS * n for n in range(TOTAL_CALLS // 2 + 1, TOTAL_CALLS + 1)]

    with store_factory() as store:
        assert usd_to_nanos(store.get_total_cost("legacy")) == COST_NANOS * TOTAL_CALLS
        assert len(store.get_usage_logs("legacy", limit=-1)) == TOTAL_CALLS


def check_strict_outcomes(store: BaseStore, outcomes: list[Any]) -> None:
    ok = {call_id for outcome, call_id in outcomes if outcome == "ok"}
    refused = [call_id for outcome, call_id in outcomes if outcome == "refused"]
    assert ok and refused
    rows = store.get_usage_logs_filtered(project="strict", limit=0)
    ids = [row["response_id"] for row in rows]
    assert len(ids) == len(set(ids)) and set(ids) == ok  # every successful call, exactly once
    spent = store.get_spent("strict", None, utc_now())
    assert spent == sum(row["cost_nanos"] for row in rows)
    assert spent <= STRICT_LIMIT_NANOS  # never over the budget, whatever the concurrency
    assert spent > STRICT_LIMIT_NANOS // 2  # and the budget was used, not refused wholesale
    assert store.get_reserved("strict", None, utc_now()) == 0  # no reservation left


def test_concurrent_strict_calls_never_overspend(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "strict_calls", processes=8)
    assert len(outcomes) == 8 * THREADS * STRICT_CALLS
    with store_factory() as store:
        check_strict_outcomes(store, outcomes)


def test_default_mode_overspends_within_the_stated_bound(store_factory: StoreFactory) -> None:
    """README: without strict, the overspend is at most the calls in flight (one per
    thread) plus, per process, one call started on a total at most a second old."""
    processes = 8
    outcomes = run_processes(store_factory, "default_mode_calls", processes=processes)
    ok = {call_id for outcome, call_id in outcomes if outcome == "ok"}
    assert ok and len(ok) < len(outcomes)  # the budget ran out and later calls were refused
    with store_factory() as store:
        rows = store.get_usage_logs_filtered(project="default-mode", limit=0)
        ids = [row["response_id"] for row in rows]
        assert len(ids) == len(set(ids)) and set(ids) == ok  # every success, exactly once
        spent = store.get_spent("default-mode", None, utc_now())
    bound = (processes * THREADS + processes) * usd_to_nanos(STRICT_WORST_USD)
    assert STRICT_LIMIT_NANOS <= spent <= STRICT_LIMIT_NANOS + bound


def test_concurrent_async_strict_calls_never_overspend(store_factory: StoreFactory) -> None:
    import asyncio

    import llm_toll

    store = store_factory()
    strict_decorated(store)  # the store and the model's price

    @llm_toll.track_costs(
        project="strict",
        max_budget=STRICT_LIMIT_NANOS / 1e9,
        strict=True,
        estimate=lambda call_id, output_tokens: STRICT_WORST_USD,
    )
    async def ask(call_id: str, output_tokens: int) -> dict[str, Any]:
        await asyncio.sleep(0)
        return strict_response(call_id, output_tokens)

    async def one(n: int) -> tuple[str, str]:
        call_id = f"async-{n}"
        try:
            await ask(call_id, (n * 37) % 101)
        except BudgetExceededError:
            return ("refused", call_id)
        return ("ok", call_id)

    async def main() -> list[tuple[str, str]]:
        return await asyncio.gather(*(one(n) for n in range(300)))

    try:
        outcomes = asyncio.run(main())
        check_strict_outcomes(store, outcomes)
    finally:
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)


# -- schema upgrades ------------------------------------------------------------------------

V1_ROWS = (
    """INSERT INTO usage_logs (project, model, operation, input_tokens, output_tokens,
                               cost_nanos, created_at)
       VALUES ('proj', 'gpt-4o', 'chat', 10, 5, 500, '2026-03-02T12:00:00+00:00')""",
    """INSERT INTO budget_totals (project, period, spent_nanos, limit_nanos, thresholds_fired,
                                  updated_at)
       VALUES ('proj', 'all', 500, NULL, 0, '2026-03-02T12:00:00+00:00'),
              ('proj', '2026-03-02', 500, 1000, 1, '2026-03-02T12:00:00+00:00')""",
)


def make_v1_database(factory: StoreFactory, version: int = 1) -> None:
    """The database of ``factory`` as llm_toll left it at schema ``version`` (1 to 3), with
    the data of V1_ROWS (written at version 1)."""
    if factory.backend == "sqlite":
        import sqlite3

        from llm_toll.store._sqlite_schema import MIGRATIONS

        statements = tuple(
            statement
            for step, step_statements in MIGRATIONS
            if step <= version
            for statement in (*step_statements, *(V1_ROWS if step == 1 else ()))
        )
        conn = sqlite3.connect(factory.location, isolation_level=None)
        try:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        finally:
            conn.close()
        return
    from llm_toll.store._postgres_schema import MIGRATIONS as PG_MIGRATIONS

    PostgresServer.run(factory.location, "CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for step, step_statements in PG_MIGRATIONS:
        if step <= version:
            for statement in (*step_statements, *(V1_ROWS if step == 1 else ())):
                PostgresServer.run(factory.location, statement)
    PostgresServer.run(
        factory.location, "INSERT INTO schema_version (version) VALUES (%s)", (version,)
    )


def test_a_version_2_database_is_upgraded_for_reservations(store_factory: StoreFactory) -> None:
    make_v1_database(store_factory, version=2)
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 500
        assert store.get_reserved("proj", "daily", MONDAY) == 0
        [row] = [r for r in store.get_budget_utilization() if r["period"] == "2026-03-02"]
        assert (row["total_cost_nanos"], row["limit_nanos"], row["thresholds_fired"]) == (
            500,
            1000,
            1,
        )
        # 500 spent: a 600 worst case does not fit, a 500 one does.
        spec = BudgetSpec(1_000, "daily")
        assert (
            store.reserve(
                "proj", budget_key=None, spec=spec, at=MONDAY, amount_nanos=600, ttl_s=60.0
            )
            is None
        )
        held = store.reserve(
            "proj", budget_key=None, spec=spec, at=MONDAY, amount_nanos=500, ttl_s=60.0
        )
        assert held is not None
        state = store.settle_reservation(held, make_call(300))
        assert (state.spent_nanos, state.crossed_thresholds) == (800, (80,))
        assert store.get_reserved("proj", "daily", MONDAY) == 0
    with store_factory() as store:  # opened again: nothing applied twice
        assert store.get_spent("proj", "daily", MONDAY) == 800
        assert len(all_logs(store)) == 2


def test_a_version_3_database_is_upgraded_for_shared_rate_limits(
    store_factory: StoreFactory,
) -> None:
    make_v1_database(store_factory, version=3)
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 500
        assert store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=0, now=T0).admitted
        assert not store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=0, now=T0 + 1).admitted
        held = store.reserve(
            "proj",
            budget_key=None,
            spec=BudgetSpec(1_000, "daily"),
            at=MONDAY,
            amount_nanos=500,
            ttl_s=60.0,
        )
        assert held is not None
    with store_factory() as store:  # opened again: nothing applied twice, the window kept
        assert not store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=0, now=T0 + 2).admitted
        assert store.get_reserved("proj", "daily", MONDAY) == 500


def test_a_version_1_database_is_upgraded_and_keeps_its_data(
    store_factory: StoreFactory,
) -> None:
    make_v1_database(store_factory)
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 500
        assert store.get_spent("proj", None, MONDAY) == 500
        [log] = all_logs(store)
        assert (log["cost_nanos"], log["budget_key"]) == (500, None)
        rows = store.get_budget_utilization()
        assert [(r["budget_key"], r["period"], r["thresholds_fired"]) for r in rows] == [
            ("", "2026-03-02", 1),
            ("", "all", 0),
        ]
        state = store.record_call(
            keyed(300, "k"), BudgetSpec(1_000, "daily"), BudgetSpec(100, "daily")
        )
        # The project's 50 % had fired before the upgrade: it does not fire again.
        assert (state.spent_nanos, state.crossed_thresholds) == (800, (80,))
        assert state.key_state == BudgetState(300, 100, "2026-03-02", (50, 80, 100), True)
        assert store.get_spent("proj", "daily", MONDAY, budget_key="k") == 300
    # Opened again: the schema is current, nothing is applied twice.
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 800
        assert len(all_logs(store)) == 2


# == PostgreSQL only ========================================================================


@pytest.fixture
def pg_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database of the session's server."""
    dsn = postgres_server.create_database()
    yield dsn
    postgres_server.drop_database(dsn)


@pytest.fixture
def pg_store(pg_dsn: str) -> Iterator[BaseStore]:
    with open_store("postgres", pg_dsn) as store:
        yield store


def test_postgres_schema_is_versioned_with_exact_integer_money(
    pg_store: BaseStore, pg_dsn: str
) -> None:
    from llm_toll.store._postgres_schema import LATEST_VERSION

    pg_store.record_call(make_call())
    assert PostgresServer.run(pg_dsn, "SELECT version FROM schema_version") == [(LATEST_VERSION,)]
    types = dict(
        PostgresServer.run(
            pg_dsn,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE column_name LIKE '%%nanos' OR column_name LIKE '%%tokens'",
        )
    )
    assert types["usage_logs.cost_nanos"] == "bigint"
    assert types["budget_totals.spent_nanos"] == "bigint"
    assert types["budget_totals.limit_nanos"] == "bigint"
    assert types["usage_logs.input_tokens"] == "bigint"


def test_postgres_fresh_database_opened_by_many_at_once(pg_dsn: str) -> None:
    # Each thread's store opens its own first connection and migrates: one of them
    # applies the schema under the advisory lock, the others wait and find it done.
    opened = 8
    go = threading.Barrier(opened)
    errors: list[BaseException] = []
    stores = [open_store("postgres", pg_dsn) for _ in range(opened)]

    def first_call(store: BaseStore) -> None:
        go.wait()
        try:
            store.record_call(make_call(1), BudgetSpec(100, "daily"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_call, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert stores[0].get_spent("proj", "daily", MONDAY) == opened
        assert len(PostgresServer.run(pg_dsn, "SELECT * FROM schema_version")) == 1
    finally:
        for store in stores:
            store.close()


def test_postgres_schema_of_a_newer_version_is_refused(pg_store: BaseStore, pg_dsn: str) -> None:
    pg_store.record_call(make_call())
    pg_store.close()
    PostgresServer.run(pg_dsn, "UPDATE schema_version SET version = 99")
    with open_store("postgres", pg_dsn) as store, pytest.raises(StoreError, match="newer llm_toll"):
        store.record_call(make_call())


def test_postgres_tables_of_another_application_are_left_alone(pg_dsn: str) -> None:
    PostgresServer.run(pg_dsn, "CREATE TABLE usage_logs (id int, note text)")
    with (
        open_store("postgres", pg_dsn) as store,
        pytest.raises(StoreError, match="usage_logs exist without llm_toll's schema_version"),
    ):
        store.record_call(make_call())
    assert PostgresServer.run(pg_dsn, "SELECT to_regclass('budget_totals')") == [(None,)]


def test_postgres_connections_closed_by_the_server_are_replaced(pg_dsn: str) -> None:
    database = pg_dsn.rsplit("/", 1)[1]
    ours = "FROM pg_stat_activity WHERE datname = %s AND application_name = 'llm_toll'"
    with open_store("postgres", pg_dsn, pool_min=3) as store:
        store.record_call(make_call(1))
        deadline = time.monotonic() + 30
        while PostgresServer.run(pg_dsn, f"SELECT count(*) {ours}", (database,)) < [(3,)]:
            assert time.monotonic() < deadline, "the pool did not open its 3 connections"
            time.sleep(0.01)
        # As a server restart or an administrator would: every idle connection goes.
        killed = PostgresServer.run(
            pg_dsn, f"SELECT pg_terminate_backend(pid, 10000) {ours}", (database,)
        )
        assert len(killed) >= 3 and all(ok for (ok,) in killed)
        # Each dead connection is found so on checkout, without a round trip, and replaced.
        spent = [store.record_call(make_call(10)).spent_nanos for _ in range(4)]
        assert spent == [11, 21, 31, 41]
        assert store.get_spent("proj", None, MONDAY) == 41


def test_postgres_store_closed_while_a_call_runs(pg_store: BaseStore) -> None:
    from llm_toll.store.postgres import PostgresStore

    assert isinstance(pg_store, PostgresStore)
    pg_store.record_call(make_call(1))
    with pg_store._transaction("a call in progress", write=False) as tx:  # white box
        pg_store.close()
        assert tx.run("SELECT 1") == [(1,)]  # it finishes on its connection
    assert pg_store.record_call(make_call(10)).spent_nanos == 11  # opened again on demand


@pytest.mark.postgres
def test_postgres_server_down_then_back() -> None:
    server = start_postgres_server()  # a server of its own, to stop and start again
    try:
        dsn = server.create_database()
        with open_store("postgres", dsn, pool_timeout_s=0.5, connect_timeout_s=2) as store:
            assert store.record_call(make_call(1)).spent_nanos == 1
            server.stop()
            with pytest.raises(StoreError) as failure:
                store.record_call(make_call(10))
            message = str(failure.value)
            assert "could not record a call" in message
            assert "no database connection was free within 0.5 s" in message
            assert "the server does not accept connections" in message
            with pytest.warns(StoreWarning, match="could not read the budget"):
                assert store.get_total_cost("proj") == 0.0
            with pytest.warns(StoreWarning, match="could not read usage logs"):
                assert store.get_usage_logs("proj") == []
            server.start()  # same port, same data
            assert store.record_call(make_call(100)).spent_nanos == 101
            assert len(all_logs(store)) == 2  # the failed call left nothing
    finally:
        server.remove()


def test_postgres_pool_exhaustion_is_a_store_error(pg_dsn: str) -> None:
    from llm_toll.store.postgres import PostgresStore

    with PostgresStore(pg_dsn, pool_max=1, pool_timeout_s=0.2) as store:
        store.record_call(make_call(1))
        with store._transaction("hold the only connection", write=False):  # white box
            with pytest.raises(StoreError) as failure:
                store.record_call(make_call(10))
            with pytest.warns(StoreWarning, match="all 1 connections of the pool were in use"):
                assert store.get_total_cost("proj") == 0.0
        message = str(failure.value)
        assert "no database connection was free within 0.2 s" in message
        assert "all 1 connections of the pool were in use" in message
        assert "raise pool_max or pool_timeout_s" in message
        assert store.record_call(make_call(100)).spent_nanos == 101  # free again


def test_postgres_messages_never_show_the_password() -> None:
    port = free_port()
    store = open_store("postgres", f"postgresql://alice:s3cr3t-pw@127.0.0.1:{port}/ledger")
    with pytest.raises(StoreError) as failure:
        store.record_call(make_call())
    assert "s3cr3t-pw" not in str(failure.value)
    assert f"llm_toll store postgresql://alice@127.0.0.1:{port}/ledger:" in str(failure.value)
    assert failure.value.path == f"postgresql://alice@127.0.0.1:{port}/ledger"
    with pytest.raises(ValueError, match="not a valid PostgreSQL") as bad:
        open_store("postgres", "host=127.0.0.1 password=s3cr3t-pw dbname")
    assert "s3cr3t-pw" not in str(bad.value)


def test_postgres_constructor_arguments_are_checked(pg_dsn: str) -> None:
    from llm_toll.store.postgres import PostgresStore

    for kwargs, name in [
        ({"pool_min": -1}, "pool_min"),
        ({"pool_max": 0}, "pool_max"),
        ({"pool_min": 5, "pool_max": 2}, "pool_max"),
        ({"pool_timeout_s": 0}, "pool_timeout_s"),
        ({"connect_timeout_s": -1}, "connect_timeout_s"),
    ]:
        with pytest.raises(ValueError, match=name):
            PostgresStore(pg_dsn, **kwargs)
    with pytest.raises(ValueError, match="dsn"):
        PostgresStore("")


def test_create_store_picks_postgres_for_its_urls(pg_dsn: str) -> None:
    from llm_toll.store.postgres import PostgresStore

    for url in (pg_dsn, pg_dsn.replace("postgresql://", "postgres://", 1)):
        with create_store(url, pool_max=2) as store:
            assert isinstance(store, PostgresStore)
            store.record_call(make_call(1))
    with open_store("postgres", pg_dsn) as store:
        assert store.get_spent("proj", None, MONDAY) == 2


def test_llm_toll_imports_without_psycopg_and_names_the_extra() -> None:
    # A fresh interpreter in which psycopg cannot be imported.
    script = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "sys.modules['psycopg_pool'] = None\n"
        "import llm_toll, llm_toll.store\n"
        "try:\n"
        "    llm_toll.store.create_store('postgresql://u@127.0.0.1/db')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'llm-toll[postgres]'" in done.stdout


def test_both_backends_answer_alike(tmp_path: Path, pg_dsn: str) -> None:
    """The same calls into SQLite and PostgreSQL: every 0.13 read gives the same rows."""
    # Safely in the past: rows that log_usage stamps with the real time sort after it in
    # both stores, whatever the clock's microseconds are when the test runs.
    now = (datetime.now(timezone.utc) - timedelta(seconds=10)).replace(microsecond=123_456)
    script: list[tuple[CallRecord, BudgetSpec | None]] = [
        (make_call(100_000_000, project="a", model="m1", at=now - timedelta(days=3)), None),
        (make_call(250_000_000, project="a", model="m2", at=now), BudgetSpec(10**9, "daily")),
        (make_call(5, project="b", model="m1", at=now, provider="openai"), BudgetSpec(10)),
        (make_call(7, project="b", model="m1", at=now, estimated=True), BudgetSpec(10)),
        (make_call(9, project="c", model="m3", at=now), BudgetSpec(None, "weekly")),
    ]
    stores = [SQLiteStore(tmp_path / "alike.db"), open_store("postgres", pg_dsn)]
    answers = []
    try:
        for store in stores:
            states = [store.record_call(call, budget) for call, budget in script]
            keyed = make_call(11, project="a", model="m2", at=now, budget_key="t1")
            states.append(store.record_call(keyed, BudgetSpec(10**9, "daily"), BudgetSpec(20)))
            store.log_usage("d", "m1", 3, 4, 0.001)
            store.reset_budget("b")
            utilization = store.get_budget_utilization()
            for row in utilization:  # the times of the write itself differ
                row["updated_at"] = row["last_reset_at"] = bool(row["last_reset_at"])
            logs = store.get_usage_logs_filtered(limit=0)
            for row in logs:
                if row["project"] == "d":
                    row["created_at"] = None  # logged at the time of log_usage
            answers.append(
                {
                    "states": states,
                    "logs": logs,
                    "logs a": store.get_usage_logs("a", limit=1),
                    "projects": [
                        {**row, "last_used": None} if row["project"] == "d" else row
                        for row in store.get_all_project_summaries()
                    ],
                    "models": store.get_model_summaries(),
                    "models of a": store.get_model_summaries(project="a"),
                    "projects of m1": store.get_project_summaries_for_model("m1"),
                    "trends": store.get_daily_cost_trends(days=7),
                    "utilization": utilization,
                    "total a": store.get_total_cost("a"),
                    "spent a daily": store.get_spent("a", "daily", now),
                }
            )
    finally:
        for store in stores:
            store.close()
    sqlite_answers, postgres_answers = answers
    for key, expected in sqlite_answers.items():
        assert postgres_answers[key] == expected, key
        # Same types too: no Decimal, datetime or date leaks out of PostgreSQL.
        assert repr(postgres_answers[key]) == repr(expected), key
