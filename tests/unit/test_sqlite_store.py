"""What only SQLiteStore has: the file, its pragmas, locks, corruption, migration, query plans.

What every store must do (ledger, running totals, periods, thresholds, the llm-toll 0.13
API, concurrent writers) is tested once for every backend, SQLite included, in
tests/stores/test_store_conformance.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.store import (
    BaseStore,
    SQLiteStore,
    StoreError,
    StoreWarning,
    UsageStore,
    create_store,
)
from llm_toll.store._sqlite_schema import LATEST_VERSION
from llm_toll.usage._base import Usage

MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def make_call(cost_nanos: int = 1_000) -> CallRecord:
    usage = Usage(input_tokens=10, output_tokens=5)
    return CallRecord("proj", "gpt-4o", usage, cost_nanos, started_at=MONDAY)


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


def test_a_record_binds_its_flags_as_integers(store: SQLiteStore, db_path: Path) -> None:
    # sqlite3 looks for an adapter of every bool it binds (a failed class lookup that
    # raises inside sqlite3, per flag, per call): a record binds 0 and 1 instead.
    adapted: list[bool] = []

    def count(value: bool) -> int:
        adapted.append(value)
        return int(value)

    sqlite3.register_adapter(bool, count)
    try:
        store.record_call(make_call(), BudgetSpec(10**12, None))
    finally:
        del sqlite3.adapters[(bool, sqlite3.PrepareProtocol)]
    assert adapted == []
    [flags] = raw(db_path, "SELECT price_known, estimated FROM usage_logs")
    assert flags == (1, 0)
    [log] = store.get_usage_logs("proj")
    assert (log["price_known"], log["estimated"]) == (True, False)


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


def test_database_is_versioned_in_wal_mode_with_integer_money(
    store: SQLiteStore, db_path: Path
) -> None:
    store.record_call(make_call(), BudgetSpec(limit_nanos=10**6))
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert raw(db_path, "SELECT version FROM schema_version") == [(LATEST_VERSION,)]
    assert raw(db_path, "SELECT typeof(cost_nanos) FROM usage_logs") == [("integer",)]
    money = "SELECT typeof(spent_nanos), typeof(limit_nanos) FROM budget_totals"
    assert raw(db_path, money) == [("integer", "integer")]


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
    for climbing in ("../../etc/passwd", "/tmp/../etc/passwd", tmp_path / ".." / "x.db"):
        with pytest.raises(ValueError, match=r"must not contain '\.\.'"):
            SQLiteStore(climbing)
    with pytest.raises(ValueError, match=r"must not contain '\.\.'"):
        create_store("sqlite:///../x.db")


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


# -- names --------------------------------------------------------------------------------


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
        with pytest.warns(StoreWarning, match="now shares it with 0.13"):
            store.log_usage("old", "gpt-4", 1, 1, 0.05)
        assert store.get_total_cost("old") == 0.25
    # Shared, not migrated away: 0.13's tables and index stay, its running total follows.
    tables = {name for (name,) in raw(db_path, "SELECT name FROM sqlite_master")}
    assert {"budgets", "idx_usage_logs_project_created", "budget_totals"} <= tables
    assert raw(db_path, "SELECT total_cost FROM budgets") == [(0.25,)]


# -- processes ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_child_leaves_the_file_intact(store: SQLiteStore, db_path: Path) -> None:
    # That the child records on connections of its own: test_a_forked_child_uses_connections_
    # of_its_own (tests/stores). Here: the parent's connection, open across the fork, is
    # neither used nor closed by the child, so its WAL is neither checkpointed nor deleted.
    store.record_call(make_call(1))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            store.record_call(make_call(10))
            store.close()  # closes the child's connection only
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert Path(f"{db_path}-wal").exists()
    assert store.record_call(make_call(100)).spent_nanos == 111
    assert raw(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert ledger_count(db_path) == 3


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
