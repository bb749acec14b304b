"""What only PostgreSQL has: a server, a connection pool, a schema shared by hosts; and one
test that records the same calls into both backends and compares every answer of the
llm-toll 0.13 read API."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.store import BaseStore, SQLiteStore, StoreError, StoreWarning, create_store
from tests.stores.conftest import (
    REPO,
    PostgresServer,
    free_port,
    open_store,
)
from tests.stores.helpers import (
    MONDAY,
    make_call,
)


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
        from llm_toll.store.postgres import PostgresStore

        store.record_call(make_call(1))
        assert isinstance(store, PostgresStore)
        pool = store._connections._pool
        assert pool is not None
        pool.wait()  # until the pool holds its 3 connections (PoolTimeout if it never does)
        [(connections,)] = PostgresServer.run(pg_dsn, f"SELECT count(*) {ours}", (database,))
        assert connections >= 3
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
