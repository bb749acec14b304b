"""SQLiteStore against real database files: ledger, running totals, periods, compat API."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from llm_toll.budget import LIFETIME
from llm_toll.exceptions import BudgetExceededError
from llm_toll.records import BudgetSpec, BudgetState, CallRecord
from llm_toll.store import (
    BaseStore,
    SQLiteStore,
    StoreError,
    StoreWarning,
    UsageStore,
    create_store,
)
from llm_toll.store.migrations import LATEST_VERSION
from llm_toll.usage.base import Usage

MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
OLD_LOG_KEYS = ["id", "project", "model", "input_tokens", "output_tokens", "cost", "created_at"]
SUMMARY_KEYS = ["total_cost", "total_input_tokens", "total_output_tokens", "call_count"]


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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(db_path) as opened:
        yield opened


def raw(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the file with a connection of its own, as another process would."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def ledger_count(path: Path) -> int:
    return int(raw(path, "SELECT COUNT(*) FROM usage_logs")[0][0])


def connection_of(store: SQLiteStore) -> sqlite3.Connection:
    # White-box access for the tests that must watch the statements the store runs.
    store.get_spent("warm-up", None, MONDAY)
    conn = store._conn
    assert conn is not None
    return conn


# -- the file -------------------------------------------------------------------------------


def test_database_and_wal_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "ledger.db"
    previous_umask = os.umask(0o022)  # SQLite alone would create 0644 files under this umask
    try:
        with SQLiteStore(path) as store:
            store.record_call(make_call())
            modes = {
                suffix: stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode)
                for suffix in ("", "-wal", "-shm")
            }
    finally:
        os.umask(previous_umask)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_database_is_in_wal_mode(store: SQLiteStore, db_path: Path) -> None:
    store.record_call(make_call())
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert raw(db_path, "SELECT version FROM schema_version") == [(LATEST_VERSION,)]


def test_default_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TOLL_DB", str(tmp_path / "from-env.db"))
    with SQLiteStore() as store:
        assert store.db_path == str(tmp_path / "from-env.db")
        store.log_usage("p", "m", 1, 1, 0.5)
    assert ledger_count(tmp_path / "from-env.db") == 1


def test_default_path_is_in_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLM_TOLL_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with SQLiteStore() as store:
        assert store.db_path == str(tmp_path / ".llm_toll.db")


def test_a_relative_path_stays_where_it_was_when_the_store_was_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SQLiteStore("relative.db") as store:
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        store.record_call(make_call())
    assert ledger_count(tmp_path / "relative.db") == 1


def test_bad_constructor_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        SQLiteStore("")
    with pytest.raises(ValueError, match="busy_timeout_s"):
        SQLiteStore(tmp_path / "x.db", busy_timeout_s=-1)


# -- record_call and get_spent ----------------------------------------------------------------


def test_record_call_writes_every_field_of_the_call(store: SQLiteStore, db_path: Path) -> None:
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
    store.record_call(call)
    [row] = store.get_usage_logs("proj")
    assert list(row)[: len(OLD_LOG_KEYS)] == OLD_LOG_KEYS
    expected = {
        "project": "proj",
        "model": "gpt-4o",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cost": 0.123456789,
        "cost_nanos": 123_456_789,
        "created_at": "2026-03-02T12:00:00.250000+00:00",  # stored in UTC
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
    }
    assert {key: row[key] for key in expected} == expected
    assert raw(db_path, "SELECT typeof(cost_nanos) FROM usage_logs") == [("integer",)]


def test_without_a_budget_the_lifetime_total_is_reported(store: SQLiteStore) -> None:
    first = store.record_call(make_call(700))
    second = store.record_call(make_call(300))
    assert first == BudgetState(700, None, LIFETIME)
    assert second == BudgetState(1_000, None, LIFETIME)
    assert store.get_spent("proj", None, MONDAY) == 1_000


def test_get_spent_of_an_unknown_project_is_zero(store: SQLiteStore) -> None:
    assert store.get_spent("nobody", None, MONDAY) == 0
    assert store.get_spent("nobody", "monthly", MONDAY) == 0


def test_projects_are_kept_apart(store: SQLiteStore) -> None:
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
    store: SQLiteStore,
    reset: str,
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
    assert len(store.get_usage_logs("proj")) == 3  # the ledger keeps every call


def test_thresholds_fire_once_per_period(store: SQLiteStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset="daily")
    day_one = [store.record_call(make_call(100), budget).crossed_thresholds for _ in range(12)]
    assert day_one == [(), (), (), (), (50,), (), (), (80,), (), (100,), (), ()]
    next_day = MONDAY + timedelta(days=1)
    big = store.record_call(make_call(900, at=next_day), budget)
    assert big.crossed_thresholds == (50, 80)  # one call can cross several
    assert store.record_call(make_call(100, at=next_day), budget).crossed_thresholds == (100,)
    assert store.record_call(make_call(100, at=next_day), budget).crossed_thresholds == ()


def test_thresholds_are_remembered_by_the_file(db_path: Path) -> None:
    budget = BudgetSpec(limit_nanos=1_000)
    with SQLiteStore(db_path) as store:
        assert store.record_call(make_call(600), budget).crossed_thresholds == (50,)
    with SQLiteStore(db_path) as reopened:
        assert reopened.record_call(make_call(100), budget).crossed_thresholds == ()
        assert reopened.record_call(make_call(100), budget).crossed_thresholds == (80,)


@pytest.mark.parametrize(("cost", "crossing_call"), [(300, 4), (250, 4), (1_000, 1)])
def test_exceeded_now_is_true_for_exactly_the_crossing_call(
    store: SQLiteStore, cost: int, crossing_call: int
) -> None:
    budget = BudgetSpec(limit_nanos=1_000)
    flags = [store.record_call(make_call(cost), budget).exceeded_now for _ in range(6)]
    assert flags == [n == crossing_call for n in range(1, 7)]


def test_a_free_call_at_the_limit_does_not_count_as_crossing(store: SQLiteStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000)
    assert store.record_call(make_call(1_000), budget).exceeded_now
    assert not store.record_call(make_call(0), budget).exceeded_now


def test_a_budget_without_limit_reports_its_period(store: SQLiteStore) -> None:
    state = store.record_call(make_call(5), BudgetSpec(limit_nanos=None, reset="monthly"))
    assert state == BudgetState(5, None, "2026-03")


def test_money_is_exact_over_many_calls(store: SQLiteStore) -> None:
    # 10_000 x 0.1 USD summed as floats is 1000.0000000001588; the store keeps integers.
    assert sum([0.1] * 10_000) != 1000.0
    for _ in range(10_000):
        store.log_usage("exact", "gpt-4o", 1, 1, 0.1)
    assert store.get_total_cost("exact") == 1000.0
    assert store.get_spent("exact", None, MONDAY) == 1_000 * 10**9

    budget = BudgetSpec(limit_nanos=None, reset="daily")
    for _ in range(10_000):
        store.record_call(make_call(123, project="nanos"), budget)
    assert store.get_spent("nanos", "daily", MONDAY) == 1_230_000
    assert store.get_all_project_summaries()[-1]["total_cost_nanos"] == 1_230_000


def test_a_bad_record_is_refused_and_nothing_is_written(store: SQLiteStore, db_path: Path) -> None:
    store.record_call(make_call(1))
    with pytest.raises(ValueError, match="cost_nanos"):
        store.record_call(make_call(0.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_tokens"):
        store.record_call(make_call(1, usage=Usage(input_tokens=-1)))
    with pytest.raises(ValueError, match="unknown reset"):
        store.record_call(make_call(1), BudgetSpec(limit_nanos=5, reset="hourly"))
    with pytest.raises(ValueError, match="limit_nanos"):
        store.record_call(make_call(1), BudgetSpec(limit_nanos=2.5))  # type: ignore[arg-type]
    assert ledger_count(db_path) == 1
    assert store.get_spent("proj", None, MONDAY) == 1


# -- O(1): the hot path never reads the ledger --------------------------------------------


def statements_run_by(store: SQLiteStore, action: Callable[[], object]) -> list[str]:
    conn = connection_of(store)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    return [sql for sql in seen if sql.split()[0].upper() not in ("BEGIN", "COMMIT")]


HOT_PATH_BUDGETS = {
    "no budget": (None, 2),  # ledger insert, lifetime total
    "lifetime budget": (BudgetSpec(limit_nanos=10**6), 2),  # the lifetime total is the budget
    "daily budget": (BudgetSpec(limit_nanos=10**6, reset="daily"), 3),  # + the day's total
}


@pytest.mark.parametrize(("budget", "writes"), HOT_PATH_BUDGETS.values(), ids=HOT_PATH_BUDGETS)
def test_hot_path_statements_use_the_primary_key_and_never_scan(
    store: SQLiteStore, db_path: Path, budget: BudgetSpec | None, writes: int
) -> None:
    for _ in range(20):
        store.record_call(make_call(10), budget)
    usual = statements_run_by(store, lambda: store.record_call(make_call(10), budget))
    crossing = statements_run_by(store, lambda: store.record_call(make_call(600_000), budget))
    check = statements_run_by(store, lambda: store.get_spent("proj", "daily", MONDAY))
    assert len(usual) == writes
    # Crossing thresholds is the one extra write, and only with a limit to cross.
    assert len(crossing) == writes + (budget is not None)
    assert len(check) == 1
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        plans = {
            sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in usual + crossing + check
        }
    for sql, plan in plans.items():
        assert not any("SCAN" in step for step in plan), (sql, plan)
        assert "SUM(" not in sql.upper()
        if not sql.lstrip().upper().startswith("INSERT"):
            assert any("USING PRIMARY KEY" in step for step in plan), (sql, plan)
            assert "usage_logs" not in sql


def vm_steps_of_one_record(store: SQLiteStore, budget: BudgetSpec | None) -> int:
    conn = connection_of(store)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 1)
    try:
        store.record_call(make_call(1), budget)
    finally:
        conn.set_progress_handler(None, 1)
    return steps


@pytest.mark.parametrize("budget", [b for b, _ in HOT_PATH_BUDGETS.values()], ids=HOT_PATH_BUDGETS)
def test_recording_costs_the_same_work_whatever_the_ledger_size(
    store: SQLiteStore, budget: BudgetSpec | None
) -> None:
    store.record_call(make_call(1), budget)
    small = vm_steps_of_one_record(store, budget)
    for _ in range(3_000):
        store.record_call(make_call(1), budget)
    large = vm_steps_of_one_record(store, budget)
    assert small == large  # SQLite virtual machine instructions, not time


# -- llm-toll 0.13 API ------------------------------------------------------------------


def test_log_usage_and_get_total_cost(store: SQLiteStore) -> None:
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


def test_usage_logs_are_newest_first_and_limited(store: SQLiteStore) -> None:
    for hour in range(5):
        store.record_call(make_call(hour, at=MONDAY + timedelta(hours=hour)))
    store.record_call(make_call(99, project="other"))
    rows = store.get_usage_logs("proj", limit=3)
    assert [r["cost_nanos"] for r in rows] == [4, 3, 2]
    assert store.get_usage_logs("proj", limit=0) == []
    assert len(store.get_usage_logs("proj", limit=-1)) == 5


def test_usage_logs_filtered(store: SQLiteStore) -> None:
    store.record_call(make_call(1, project="a", model="m1"))
    store.record_call(make_call(2, project="a", model="m2"))
    store.record_call(make_call(3, project="b", model="m1"))

    def costs(**filters: Any) -> list[int]:
        return sorted(r["cost_nanos"] for r in store.get_usage_logs_filtered(**filters))

    assert costs() == [1, 2, 3]
    assert costs(project="a") == [1, 2]
    assert costs(model="m1") == [1, 3]
    assert costs(project="a", model="m1") == [1]
    assert len(store.get_usage_logs_filtered(limit=2)) == 2
    assert len(store.get_usage_logs_filtered(limit=0)) == 3  # 0 means all


def test_summaries_by_project_and_model(store: SQLiteStore) -> None:
    store.record_call(make_call(100_000_000, project="a", model="m1", at=MONDAY))
    store.record_call(make_call(300_000_000, project="a", model="m2", at=MONDAY))
    store.record_call(
        make_call(50_000_000, project="b", model="m1", at=MONDAY + timedelta(hours=3))
    )
    projects = store.get_all_project_summaries()
    assert [(p["project"], p["total_cost"], p["call_count"]) for p in projects] == [
        ("a", 0.4, 2),
        ("b", 0.05, 1),
    ]
    assert projects[0]["total_input_tokens"] == 20
    assert projects[0]["total_output_tokens"] == 10
    assert projects[1]["last_used"] == "2026-03-02T15:00:00.000000+00:00"
    assert all(key in row for row in projects for key in SUMMARY_KEYS)

    models = store.get_model_summaries()
    assert [(m["model"], m["total_cost"], m["call_count"]) for m in models] == [
        ("m2", 0.3, 1),
        ("m1", 0.15, 2),
    ]
    assert [m["model"] for m in store.get_model_summaries(project="b")] == ["m1"]
    by_project = store.get_project_summaries_for_model("m1")
    assert [(p["project"], p["total_cost"]) for p in by_project] == [("a", 0.1), ("b", 0.05)]
    assert all(key in row for row in models + by_project for key in SUMMARY_KEYS)


def test_daily_cost_trends_cover_the_last_days(store: SQLiteStore) -> None:
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
            "daily_cost_nanos": 3_000_000,
            "daily_input_tokens": 20,
            "daily_output_tokens": 10,
            "call_count": 2,
        },
        {
            "date": (now - timedelta(days=1)).strftime("%Y-%m-%d"),
            "daily_cost": 0.004,
            "daily_cost_nanos": 4_000_000,
            "daily_input_tokens": 10,
            "daily_output_tokens": 5,
            "call_count": 1,
        },
    ]
    assert len(store.get_daily_cost_trends(days=60)) == 3


def test_budget_utilization_per_project_and_period(store: SQLiteStore) -> None:
    store.record_call(make_call(250_000_000, project="a"), BudgetSpec(10**9, "daily"))
    store.log_usage("b", "m", 1, 1, 0.5)
    rows = store.get_budget_utilization()
    view = {
        (r["project"], r["period"]): (r["total_cost"], r["limit"], r["utilization"]) for r in rows
    }
    assert view == {
        ("b", "all"): (0.5, None, None),
        ("a", "all"): (0.25, None, None),
        ("a", "2026-03-02"): (0.25, 1.0, 0.25),
    }
    for row in rows:
        assert row["last_reset_at"] is None
        assert row["updated_at"] is not None


def test_reset_budget_zeroes_totals_and_keeps_the_ledger(store: SQLiteStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset="daily")
    assert store.record_call(make_call(900), budget).crossed_thresholds == (50, 80)
    store.record_call(make_call(5, project="other"))
    store.reset_budget("proj")
    assert store.get_total_cost("proj") == 0.0
    assert store.get_spent("proj", "daily", MONDAY) == 0
    assert store.get_spent("other", None, MONDAY) == 5  # other projects untouched
    assert len(store.get_usage_logs("proj")) == 1
    assert all(
        r["last_reset_at"] is not None
        for r in store.get_budget_utilization()
        if r["project"] == "proj"
    )
    again = store.record_call(make_call(900), budget)
    assert (again.spent_nanos, again.crossed_thresholds) == (900, (50, 80))  # fire again


def test_log_usage_if_within_budget_records_every_call(store: SQLiteStore) -> None:
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


def test_bad_compat_arguments_warn_and_lose_nothing(store: SQLiteStore) -> None:
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


def test_close_is_idempotent_and_the_store_reopens(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    store.log_usage("p", "m", 1, 1, 1.0)
    store.close()
    store.close()
    assert store.get_total_cost("p") == 1.0  # opened again on demand
    store.close()


def test_compat_names() -> None:
    assert UsageStore is SQLiteStore
    assert issubclass(SQLiteStore, BaseStore)
    assert issubclass(StoreError, Exception)


# -- failures -------------------------------------------------------------------------------


def test_a_locked_database_is_a_store_error_and_leaves_no_transaction(
    store: SQLiteStore, db_path: Path
) -> None:
    store.record_call(make_call(1))
    quick = SQLiteStore(db_path, busy_timeout_s=0.05)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError) as failure:
            quick.record_call(make_call(10))
        assert str(db_path) in str(failure.value)
        assert "locked" in str(failure.value)
        with pytest.warns(StoreWarning, match="locked"):
            quick.log_usage("proj", "m", 1, 1, 0.5)
        with pytest.warns(StoreWarning, match="locked"):
            quick.reset_budget("proj")
        assert quick.get_spent("proj", None, MONDAY) == 1  # WAL readers are not blocked
        other.execute("ROLLBACK")
        assert not connection_of(quick).in_transaction
        assert quick.record_call(make_call(100)).spent_nanos == 101
    finally:
        other.close()
        quick.close()
    assert ledger_count(db_path) == 2


def test_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database, just text " * 100)
    with SQLiteStore(path) as store:
        with pytest.raises(StoreError, match="not a database") as failure:
            store.record_call(make_call())
        assert str(path) in str(failure.value)
        with pytest.raises(StoreError, match="not a database"):
            store.get_spent("proj", None, MONDAY)
        with pytest.warns(StoreWarning, match="not a database"):
            assert store.get_usage_logs("proj") == []
        with pytest.warns(StoreWarning, match="not a database"):
            assert store.get_total_cost("proj") == 0.0
        with pytest.warns(StoreWarning, match="not a database"):
            assert store.log_usage_if_within_budget("proj", "m", 1, 1, 0.1, 1.0) == 0.0


def test_a_full_disk_fails_whole_transactions_only(store: SQLiteStore, db_path: Path) -> None:
    conn = connection_of(store)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLITE_FULL, as on a full disk
    recorded = 0
    failure: StoreError | None = None
    for _ in range(10_000):
        try:
            store.record_call(make_call(3))
        except StoreError as exc:
            failure = exc
            break
        recorded += 1
    assert "full" in str(failure)
    assert recorded > 0
    assert not conn.in_transaction
    assert ledger_count(db_path) == recorded
    assert store.get_spent("proj", None, MONDAY) == 3 * recorded


def test_an_error_mid_transaction_rolls_the_whole_call_back(
    store: SQLiteStore, db_path: Path
) -> None:
    store.record_call(make_call(1))
    # A trigger makes the running-total update fail after the ledger row was inserted.
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON budget_totals "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
        conn.commit()
    with pytest.raises(StoreError, match="refused by the test"):
        store.record_call(make_call(10))
    assert not connection_of(store).in_transaction
    assert ledger_count(db_path) == 1  # the failed call's ledger row went with it
    raw(db_path, "DROP TRIGGER refuse")
    assert store.record_call(make_call(100)).spent_nanos == 101


def test_an_old_sqlite_library_is_a_clear_error(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with SQLiteStore(db_path) as store, pytest.raises(StoreError, match=r"SQLite 3\.35 or newer"):
        store.record_call(make_call())
    assert not db_path.exists()


def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        store.record_call(make_call())
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
        conn.commit()
    with SQLiteStore(db_path) as store, pytest.raises(StoreError, match="newer llm_toll"):
        store.record_call(make_call())


def test_a_database_of_llm_toll_0_13_is_carried_over(db_path: Path) -> None:
    # The schema and rows llm-toll 0.13 wrote to the same default file.
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(
            """
            CREATE TABLE usage_logs (
                id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL,
                model TEXT NOT NULL, input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL, cost REAL NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE budgets (
                project TEXT PRIMARY KEY, total_cost REAL NOT NULL DEFAULT 0.0,
                last_reset_at TEXT, updated_at TEXT NOT NULL);
            CREATE INDEX idx_usage_logs_project_created ON usage_logs (project, created_at DESC);
            INSERT INTO usage_logs (project, model, input_tokens, output_tokens, cost, created_at)
                VALUES ('old', 'gpt-4', 100, 50, 0.1, '2025-01-01T10:00:00+00:00'),
                       ('old', 'gpt-4', 200, 80, 0.2, '2025-01-02T10:00:00+00:00');
            INSERT INTO budgets VALUES ('old', 0.2, '2025-01-02T00:00:00+00:00',
                                        '2025-01-02T10:00:00+00:00');
            """
        )
    with SQLiteStore(db_path) as store:
        assert store.get_total_cost("old") == 0.2  # the running total, as it was
        rows = store.get_usage_logs("old")
        assert [(r["cost_nanos"], r["input_tokens"], r["created_at"]) for r in rows] == [
            (200_000_000, 200, "2025-01-02T10:00:00+00:00"),
            (100_000_000, 100, "2025-01-01T10:00:00+00:00"),
        ]
        store.log_usage("old", "gpt-4", 1, 1, 0.05)
        assert store.get_total_cost("old") == 0.25
    tables = {name for (name,) in raw(db_path, "SELECT name FROM sqlite_master")}
    assert "budgets" not in tables
    assert "usage_logs_project_created_at" in tables


# -- processes ------------------------------------------------------------------------------


def record_one_in_a_forked_child(store: SQLiteStore) -> None:
    store.record_call(make_call(10))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_child_opens_its_own_connection(store: SQLiteStore, db_path: Path) -> None:
    store.record_call(make_call(1))  # the parent's connection is open across the fork
    child = multiprocessing.get_context("fork").Process(
        target=record_one_in_a_forked_child, args=(store,)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    store.record_call(make_call(100))
    assert store.get_spent("proj", None, MONDAY) == 111
    assert ledger_count(db_path) == 3
    assert raw(db_path, "PRAGMA integrity_check") == [("ok",)]


# -- create_store ---------------------------------------------------------------------------


def test_create_store_picks_sqlite_for_paths_and_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TOLL_DB", str(tmp_path / "env.db"))
    monkeypatch.chdir(tmp_path)
    cases = {
        None: tmp_path / "env.db",
        str(tmp_path / "plain.db"): tmp_path / "plain.db",
        "sqlite:///relative.db": tmp_path / "relative.db",
        f"sqlite:///{tmp_path}/absolute.db": tmp_path / "absolute.db",
    }
    for url, expected in cases.items():
        with create_store(url, busy_timeout_s=1.0) as store:
            assert isinstance(store, SQLiteStore)
            assert store.db_path == str(expected)


def test_create_store_refuses_what_it_cannot_open() -> None:
    # PostgreSQL URLs: see test_create_store_picks_postgres_for_its_urls (tests/stores).
    with pytest.raises(ValueError, match="unsupported store URL"):
        create_store("mongodb://host/db")
    with pytest.raises(ValueError, match="sqlite:///path"):
        create_store("sqlite://")
