"""A database shared with the real llm-toll 0.13.0, run from a virtualenv of its own.

A fleet upgrades one process at a time: while 0.13 processes still use a database, both
libraries record into it and enforce the same budgets. A SQLite file is not changed by a
read, and is shared with 0.13 on llm_toll's first write (``store/_sqlite_v013.py``); a
PostgreSQL database is used the way 0.13 uses it, and never changed
(``store/_postgres_v013.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llm_toll import BudgetExceededError, set_store, track_costs
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import BudgetSpec
from llm_toll.cli import main as cli
from llm_toll.store import SQLiteStore, StoreError, StoreWarning, _ledger
from llm_toll.store import _postgres_v013 as pg_v013
from llm_toll.store import _sqlite_v013 as sqlite_v013
from llm_toll.store._sql import SQLStore
from llm_toll.store._sqlite_v013 import V013_LEDGER_COLUMNS
from llm_toll.store._time import utc_now
from llm_toll.store.reprice import reprice
from llm_toll.store.sqlite import V013_BACKUP_LABEL
from tests.stores.conftest import PostgresServer, StoreFactory, open_store
from tests.stores.helpers import make_call
from tests.support import fleet_worker
from tests.support.v013_venv import clean_env, old_python

WORKER = Path(fleet_worker.__file__).resolve()
SHARING_NOTICE = "llm_toll now shares it with 0.13"
TIMEOUT_S = 300


# -- helpers --------------------------------------------------------------------------------


def v013(url: str | Path, code: str, *, cwd: Path | None = None) -> str:
    """Run ``code`` under the real llm-toll 0.13.0, with ``store`` its store on ``url`` (a
    SQLite file or a PostgreSQL DSN); its stdout. A warning of 0.13 (it reports a failed
    write so) fails the test."""
    script = f"from llm_toll.store import create_store\nstore = create_store({str(url)!r})\n"
    done = subprocess.run(
        [str(old_python()), "-W", "error", "-c", f"{script}{code}\nstore.close()\n"],
        cwd=cwd or Path(url).parent,  # not the checkout, whose src is not 0.13
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"llm-toll 0.13 failed:\n{done.stderr}"
    return done.stdout


def v013_total(url: str | Path, project: str, *, cwd: Path | None = None) -> float:
    """The lifetime total 0.13's budget check reads."""
    return float(v013(url, f"print(repr(store.get_total_cost({project!r})))", cwd=cwd))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump(db: Path) -> list[str]:
    """The file's schema and rows, as SQL."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())


def raw(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def columns(db: Path, table: str) -> set[str]:
    return {row[1] for row in raw(db, f"PRAGMA table_info({table})")}


def backups(db: Path) -> list[Path]:
    return sorted(db.parent.glob(f"{db.name}.{V013_BACKUP_LABEL}-*"))


V013_HISTORY = """
store.log_usage('chat', 'gpt-4o', 100, 20, 0.25)
store.log_usage('chat', 'gpt-4o-mini', 10, 2, 0.125)
store.log_usage('batch', 'gpt-4o', 1000, 200, 1.5)
store.reset_budget('batch')
store.log_usage('batch', 'gpt-4o', 100, 20, 0.5)
"""
"""What 0.13 wrote before llm_toll came: two projects, one of them reset once."""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A SQLite file of llm-toll 0.13, with V013_HISTORY."""
    path = tmp_path / "ledger.db"
    v013(path, V013_HISTORY)
    return path


@pytest.fixture
def pg(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database of llm-toll 0.13 (its psycopg2 store), with V013_HISTORY."""
    dsn = postgres_server.create_database()
    try:
        v013(dsn, V013_HISTORY, cwd=tmp_path)
        yield dsn
    finally:
        postgres_server.drop_database(dsn)


def share(db: Path) -> None:
    """llm_toll's first write, which shares the file with 0.13."""
    with SQLiteStore(db) as store, pytest.warns(StoreWarning, match=SHARING_NOTICE):
        backup = store.upgrade_schema()
    assert backup is not None


# -- reading never changes the file ---------------------------------------------------------


def test_reading_a_0_13_file_changes_none_of_its_bytes(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, files = digest(db), sorted(os.listdir(db.parent))
    for command in ("summary", "models", "logs", "budgets", "trends", "export"):
        assert cli(["--db", str(db), command]) == 0
        assert cli(["--db", str(db), "--json", command]) == 0
    assert cli(["--db", str(db), "--stats"]) == 0
    out = capsys.readouterr().out
    assert "chat" in out and "$0.3750" in out
    store = SQLiteStore(db)
    try:
        now = utc_now()
        assert store.get_total_cost("chat") == 0.375
        assert store.get_spent("batch", None, now) == 500_000_000  # since its reset
        assert store.get_spent("chat", "daily", now) == 375_000_000
        assert store.get_reserved("chat", "daily", now) == 0
        assert len(store.get_usage_logs("batch", limit=-1)) == 2

        # A decorated call refused before it is made reads the budget, and only reads it.
        @track_costs(project="chat", max_budget=0.3)
        def call() -> str:
            raise AssertionError("refused before it runs")

        set_store(store)
        with pytest.raises(BudgetExceededError):
            call()
    finally:
        set_store(None)
        store.close()
    assert digest(db) == before
    assert sorted(os.listdir(db.parent)) == files  # no backup, no WAL left behind


# -- the first write shares the file --------------------------------------------------------


def test_the_first_write_shares_the_file_after_a_backup(db: Path) -> None:
    before = dump(db)
    v013_tables = {name for (name,) in raw(db, "SELECT name FROM sqlite_master")}
    with SQLiteStore(db) as store:
        with pytest.warns(StoreWarning, match=SHARING_NOTICE) as notices:
            store.log_usage("chat", "gpt-4o", 1, 1, 0.05)
        assert store.get_total_cost("chat") == 0.425
    [backup] = backups(db)
    assert str(backup) in str(notices[0].message)
    assert dump(backup) == before  # the file as 0.13 left it
    assert backup.stat().st_mode & 0o777 == 0o600
    # 0.13's tables, columns and index are all kept.
    assert v013_tables <= {name for (name,) in raw(db, "SELECT name FROM sqlite_master")}
    assert set(V013_LEDGER_COLUMNS) <= columns(db, "usage_logs")
    assert columns(db, "budgets") == {"project", "total_cost", "last_reset_at", "updated_at"}
    # 0.13 reads llm_toll's call in its budget check, and keeps writing.
    assert v013_total(db, "chat") == pytest.approx(0.425, abs=1e-12)
    v013(db, "store.log_usage('chat', 'gpt-4o', 1, 1, 0.125)")
    with SQLiteStore(db) as store:
        assert store.get_total_cost("chat") == 0.55
        assert store.get_spent("batch", None, utc_now()) == 500_000_000
        assert [row["cost_nanos"] for row in store.get_usage_logs("chat")] == [
            125_000_000,
            50_000_000,
            125_000_000,
            250_000_000,
        ]
        assert store.upgrade_schema() is None  # shared once only
        # Both libraries' calls, newest first across projects through 0.13's index.
        assert [(r["project"], r["cost_nanos"]) for r in store.calls(limit=2)] == [
            ("chat", 125_000_000),
            ("chat", 50_000_000),
        ]
    assert len(backups(db)) == 1
    # The ledger's inserts, 0.13's and llm_toll's, keep 0.13's index on it only.
    assert raw(
        db, "SELECT name FROM sqlite_master WHERE tbl_name = 'usage_logs' AND type = 'index'"
    ) == [("idx_usage_logs_project_created",)]


def test_reads_through_views_and_after_sharing_agree(db: Path) -> None:
    def everything(store: SQLiteStore) -> list[Any]:
        now = utc_now()
        return [
            store.get_all_project_summaries(),
            store.get_model_summaries(),
            store.get_model_summaries("chat"),
            store.get_project_summaries_for_model("gpt-4o"),
            store.get_usage_logs_filtered(limit=0),
            store.get_daily_cost_trends(),
            [
                (r["project"], r["period"], r["total_cost_nanos"])
                for r in store.get_budget_utilization()
            ],
            [
                store.get_spent(p, r, now)
                for p in ("chat", "batch")
                for r in (None, "daily", "weekly", "monthly")
            ],
            store.spend(["day", "week", "month", "project", "model", "key", "provider"]),
            store.calls(limit=-1),
            list(store.iter_calls(project="chat")),
            store.projects(),
            # The forecasts' burn: 0.13's rows of the last hour, the reset one's included.
            [store.get_spent_since(p, now - timedelta(hours=1)) for p in ("chat", "batch")],
        ]

    with SQLiteStore(db) as store:
        through_views = everything(store)
        assert [r["cost_nanos"] for r in store.spend(["project"])] == [2_000_000_000, 375_000_000]
    assert through_views[-1] == [375_000_000, 2_000_000_000]
    share(db)
    with SQLiteStore(db) as store:
        assert everything(store) == through_views


def test_a_reader_follows_another_process_sharing_the_file(db: Path) -> None:
    now = utc_now()
    spec = BudgetSpec(10_000_000_000, "daily")
    with SQLiteStore(db) as reader:
        assert reader.get_reserved("chat", "daily", now) == 0  # read through the views
        with SQLiteStore(db) as writer, pytest.warns(StoreWarning, match=SHARING_NOTICE):
            held = writer.reserve(
                "chat", budget_key=None, spec=spec, at=now, amount_nanos=7, ttl_s=60.0
            )
        assert held is not None
        assert reader.get_reserved("chat", "daily", now) == 7
        state = reader.settle_reservation(held, make_call(5, project="chat", at=now))
        assert state.spent_nanos == 375_000_005
        assert reader.get_reserved("chat", "daily", now) == 0
    assert v013_total(db, "chat") == pytest.approx(0.375000005, abs=1e-12)


def test_a_budget_reset_on_either_side_resets_the_other(db: Path) -> None:
    share(db)
    now = utc_now()
    with SQLiteStore(db) as store:
        store.record_call(make_call(1_000, project="chat", at=now), BudgetSpec(None, "daily"))
        store.reset_budget("chat")
        assert store.get_spent("chat", "daily", now) == 0
    assert v013_total(db, "chat") == 0.0
    v013(db, "store.log_usage('chat', 'gpt-4o', 1, 1, 0.5)\nstore.reset_budget('batch')")
    with SQLiteStore(db) as store:
        assert store.get_spent("chat", None, now) == 500_000_000
        assert store.get_spent("chat", "daily", now) == 500_000_000
        assert [store.get_spent("batch", r, now) for r in (None, "daily", "monthly")] == [0, 0, 0]
        assert len(store.get_usage_logs("chat", limit=-1)) == 4  # the history is kept


def test_0_13_rows_count_in_every_period_they_fall_in(db: Path) -> None:
    share(db)
    days = ["2026-03-01", "2026-03-02", "2026-03-08", "2026-12-31", "2027-01-01", "2028-02-29"]
    for day in days:
        # The statement 0.13's log_usage runs, at a chosen time (0.13 writes the present).
        raw_insert = (
            "INSERT INTO usage_logs (project, model, input_tokens, output_tokens, cost, "
            "created_at) VALUES (?, 'gpt-4o', 1, 1, 0.001, ?)"
        )
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
            conn.execute(raw_insert, (f"on-{day}", f"{day}T23:59:59.999999+00:00"))
    for day in days:
        at = datetime.fromisoformat(f"{day}T23:59:59.999999+00:00")
        rows = raw(
            db, "SELECT period, spent_nanos FROM budget_totals WHERE project = ?", (f"on-{day}",)
        )
        expected = {period_key(reset, at) for reset in (None, "daily", "weekly", "monthly")}
        assert dict(rows) == dict.fromkeys(expected, 1_000_000)


def test_a_0_13_cost_that_is_no_amount_counts_nothing_and_is_flagged(db: Path) -> None:
    share(db)
    v013(db, "store.log_usage('odd', 'm', 1, 1, -0.5)\nstore.log_usage('odd', 'm', 1, 1, 1e300)")
    v013(db, "store.log_usage('odd', 'm', 1, 1, 0.25)")
    with SQLiteStore(db) as store:
        assert store.get_spent("odd", None, utc_now()) == 250_000_000
        rows = store.get_usage_logs("odd")
        assert [(r["cost_nanos"], r["price_known"]) for r in rows] == [
            (250_000_000, True),
            (0, False),
            (0, False),
        ]


@pytest.mark.parametrize("as_written", [sqlite_v013.AS_WRITTEN_BY_V013, pg_v013.AS_WRITTEN_BY_V013])
def test_rows_0_13_wrote_read_as_every_ledger_column(as_written: dict[str, str]) -> None:
    v013_own = set(V013_LEDGER_COLUMNS) - {"id", "cost"}
    assert set(as_written) | v013_own == set(_ledger.COLUMNS)
    assert not set(as_written) & v013_own


def test_the_migrate_command_shares_the_file_once(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["--db", str(db), "migrate"]) == 0
    [backup] = backups(db)
    assert str(backup) in capsys.readouterr().out
    assert cli(["--db", str(db), "migrate"]) == 0
    assert capsys.readouterr().out == "The schema is up to date.\n"
    assert len(backups(db)) == 1


def test_re_pricing_a_shared_file_keeps_0_13s_budget_in_step(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(db)
    assert cli(["--db", str(db), "reprice", "--dry-run"]) == 0
    assert "Dry run: 4 call(s) would be corrected" in capsys.readouterr().out
    assert digest(db) == before  # a dry run only reads: the file is still 0.13's own
    share(db)
    with SQLiteStore(db) as store:
        report = reprice(store)
        assert report.changed == 4  # 0.13's own costs were made up: priced from their tokens
        now = utc_now()
        rows = {p: store.get_usage_logs(p, limit=-1) for p in ("chat", "batch")}
        assert all(row["price_source"] == "genai-prices" for r in rows.values() for row in r)
        chat = sum(row["cost_nanos"] for row in rows["chat"])
        after_reset = rows["batch"][0]["cost_nanos"]  # newest first: the row after the reset
        assert store.get_spent("chat", None, now) == chat
        assert store.get_spent("chat", "daily", now) == chat
        assert store.get_spent("batch", None, now) == after_reset
        assert store.get_spent("batch", "monthly", now) == after_reset
    assert all(
        cost == pytest.approx(nanos / 1e9, abs=1e-12)
        for cost, nanos in raw(db, "SELECT cost, cost_nanos FROM usage_logs")
    )
    # 0.13's budget check reads the corrected totals, and 0.13 still records.
    assert v013_total(db, "chat") == pytest.approx(chat / 1e9, abs=1e-12)
    assert v013_total(db, "batch") == pytest.approx(after_reset / 1e9, abs=1e-12)
    v013(db, "store.log_usage('chat', 'gpt-4o', 1, 1, 0.25)")
    with SQLiteStore(db) as store:
        assert store.get_spent("chat", None, utc_now()) == chat + 250_000_000
        assert reprice(store, project="batch").changed == 0  # nothing changed since


# -- a process killed while it shares the file ----------------------------------------------

KILLED_WHILE_SHARING = """
import sys
from llm_toll.store import SQLiteStore, _sqlite_schema, _sqlite_v013

real_run = _sqlite_schema._run


def run(conn, statements):
    real_run(conn, statements)
    if _sqlite_v013.SEED_TOTALS in statements:  # half-way: the file is not shared yet
        print("sharing", flush=True)
        sys.stdin.readline()  # held in the transaction until killed


_sqlite_schema._run = run
SQLiteStore(sys.argv[1]).upgrade_schema()
"""


def test_a_process_killed_while_sharing_leaves_the_file_to_0_13_and_a_backup(db: Path) -> None:
    before = dump(db)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WHILE_SHARING, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "sharing\n"
        [backup] = backups(db)  # complete: it has its final name
        assert dump(backup) == before
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # Nothing of the transaction remains: the file is 0.13's, and 0.13 keeps using it.
    assert "schema_version" not in {name for (name,) in raw(db, "SELECT name FROM sqlite_master")}
    assert columns(db, "usage_logs") == set(V013_LEDGER_COLUMNS)
    v013(db, "store.log_usage('chat', 'gpt-4o', 1, 1, 0.125)")
    assert v013_total(db, "chat") == 0.5
    # The next write shares it, after a backup of its own.
    with SQLiteStore(db) as store:
        with pytest.warns(StoreWarning, match=SHARING_NOTICE):
            store.log_usage("chat", "gpt-4o", 1, 1, 0.25)
        assert store.get_total_cost("chat") == 0.75
    assert len(backups(db)) == 2
    with SQLiteStore(backup) as copy:  # the backup is a whole 0.13 file
        assert copy.get_total_cost("chat") == 0.375


# -- a mixed fleet, writing at once -----------------------------------------------------------

CALLS = 100
PROJECT = "fleet"


@contextlib.contextmanager
def workers(
    fleet: StoreFactory, pythons: list[Path], *, calls: int, max_budget: float
) -> Iterator[list[Any]]:
    """Fleet workers (``tests/support/fleet_worker.py``) on the database of ``fleet``,
    started together; their reports. Every worker is stopped, whatever happens."""
    scratch = fleet.scratch
    env = {**clean_env(), "LLM_TOLL_STORE_URL": fleet.location}
    procs = [
        subprocess.Popen(
            [str(python), str(WORKER), PROJECT, str(calls), repr(max_budget)],
            cwd=scratch,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(scratch / f"worker-{index}.stderr").open("w"),
            text=True,
        )
        for index, python in enumerate(pythons)
    ]
    try:
        pipes = [(proc.stdin, proc.stdout) for proc in procs]
        for index, (_, out) in enumerate(pipes):
            assert out is not None
            assert out.readline() == "ready\n", (scratch / f"worker-{index}.stderr").read_text()
        for into, _ in pipes:
            assert into is not None
            into.write("go\n")
            into.flush()
        reports = [json.loads(out.readline()) for _, out in pipes if out is not None]
        assert [proc.wait(timeout=TIMEOUT_S) for proc in procs] == [0] * len(procs)
        yield reports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_mixed_fleet_records_every_call_and_enforces_one_budget(
    store_factory: StoreFactory,
) -> None:
    fleet, scratch = store_factory, store_factory.scratch

    def v013_spent() -> float:
        return v013_total(fleet.location, PROJECT, cwd=scratch)

    def ledger() -> list[int]:
        with fleet() as store:
            return [row["cost_nanos"] for row in store.get_usage_logs(PROJECT, limit=-1)]

    # A database 0.13 created and uses.
    v013(
        fleet.location,
        f"store.log_usage({PROJECT!r}, 'fleet-model', 1000, 500, 0.002)",
        cwd=scratch,
    )
    old, new = old_python(), Path(sys.executable)
    with workers(fleet, [old, new, old, new], calls=CALLS, max_budget=1_000.0) as reports:
        pass
    assert [(r["returned"], r["refused"]) for r in reports] == [(CALLS, 0)] * 4
    # No write failed: 0.13 warns of a failed write, llm_toll of a record it kept. The one
    # notice on SQLite is that of the llm_toll process that shared the file.
    given = [message for r in reports for message in r["warnings"]]
    notices = 1 if fleet.backend == "sqlite" else 0
    assert len(given) == notices and all(SHARING_NOTICE in m for m in given), given

    # Every call, once, and both budget checks read the ledger's total.
    assert ledger() == [fleet_worker.CALL_NANOS] * (1 + 4 * CALLS)
    total = sum(ledger())
    with fleet() as store:
        assert store.get_spent(PROJECT, None, utc_now()) == total
    assert v013_spent() == pytest.approx(total / 1e9, abs=1e-9)

    # Both libraries enforce it: each refuses a call under a budget just below it, and
    # makes one under a budget above it.
    for budget, outcome in ((total / 1e9 - 0.001, (0, 1)), (total / 1e9 + 1.0, (1, 0))):
        for python in (old, new):
            with workers(fleet, [python], calls=1, max_budget=budget) as [report]:
                assert (report["returned"], report["refused"], report["warnings"]) == (
                    *outcome,
                    [],
                )
    total += 2 * fleet_worker.CALL_NANOS
    assert sum(ledger()) == total
    with fleet() as store:
        assert store.get_spent(PROJECT, None, utc_now()) == total
    assert v013_spent() == pytest.approx(total / 1e9, abs=1e-9)


# -- PostgreSQL: 0.13's tables, used the way 0.13 uses them -----------------------------------

SCHEMA = """
SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public'
UNION ALL SELECT tgname, 't', NULL, NULL, NULL FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT p.proname, 'f', NULL, NULL, NULL
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
ORDER BY 1, 3
"""


def rows_of(dsn: str) -> list[Any]:
    return [
        PostgresServer.run(dsn, "SELECT * FROM usage_logs ORDER BY id"),
        PostgresServer.run(dsn, "SELECT * FROM budgets ORDER BY project"),
    ]


def test_a_0_13_postgres_database_is_shared_and_never_changed(
    pg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema, rows = PostgresServer.run(pg, SCHEMA), rows_of(pg)
    for command in ("summary", "models", "logs", "budgets", "trends", "export"):
        assert cli(["--store-url", pg, command]) == 0
    assert "$0.3750" in capsys.readouterr().out
    now = utc_now()
    with open_store("postgres", pg) as store:
        assert store.get_total_cost("chat") == 0.375
        assert [store.get_spent("batch", r, now) for r in (None, "daily", "monthly")] == [
            500_000_000
        ] * 3  # since its reset
        assert [r["cost_nanos"] for r in store.get_usage_logs("chat")] == [125_000_000, 250_000_000]
        assert store.get_spent_since("chat", now - timedelta(hours=1)) == 375_000_000
    assert rows_of(pg) == rows  # reading changed no row

    with open_store("postgres", pg) as store:
        # 0.13's 375_000_000 today were half the limit already: this call crosses 80 %.
        state = store.record_call(
            make_call(225_000_000, project="chat", at=now), BudgetSpec(750_000_000, "daily")
        )
        assert (state.spent_nanos, state.crossed_thresholds) == (600_000_000, (80,))
        store.reset_budget("batch")
    assert v013_total(pg, "chat", cwd=tmp_path) == pytest.approx(0.6, abs=1e-12)
    assert v013_total(pg, "batch", cwd=tmp_path) == 0.0
    v013(pg, "store.log_usage('batch', 'gpt-4o', 1, 1, 0.25)", cwd=tmp_path)
    with open_store("postgres", pg) as store:
        assert [store.get_spent("batch", r, now) for r in (None, "daily", "weekly")] == [
            250_000_000
        ] * 3
        assert store.get_total_cost("chat") == 0.6
    assert PostgresServer.run(pg, SCHEMA) == schema  # no table, column, trigger or function

    assert cli(["--store-url", pg, "migrate"]) == 1
    assert "llm-toll 0.13's tables" in capsys.readouterr().err


def test_the_ledger_reads_over_a_date_range_read_0_13s_tables(pg: str) -> None:
    with open_store("postgres", pg) as store:
        assert store.projects() == ["batch", "chat"]
        [chat_4o, chat_mini] = store.spend(["day", "project", "model", "key"], project="chat")
        assert (chat_4o["day"], chat_4o["model"], chat_4o["cost_nanos"]) == (
            chat_4o["first_at"].date().isoformat(),
            "gpt-4o",
            250_000_000,
        )
        assert (chat_mini["calls"], chat_mini["unpriced_calls"], chat_mini["key"]) == (1, 0, None)
        calls = store.calls(limit=-1)
        assert [row["cost_nanos"] for row in calls] == [
            500_000_000,
            1_500_000_000,
            125_000_000,
            250_000_000,
        ]
        oldest_first = [row["id"] for row in store.iter_calls()]
        assert oldest_first == sorted(row["id"] for row in calls)
        assert store.calls(after_id=oldest_first[-2])[0]["cost_nanos"] == 500_000_000


def test_what_needs_llm_tolls_own_tables_is_declined_on_0_13s(pg: str) -> None:
    now = utc_now()
    spec = BudgetSpec(10_000_000_000, "daily")
    with open_store("postgres", pg) as store:
        with pytest.raises(NotImplementedError, match="strict reservations"):
            store.reserve("chat", budget_key=None, spec=spec, at=now, amount_nanos=1, ttl_s=60.0)
        with pytest.raises(NotImplementedError, match="shared rate limits"):
            store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=0, now=1.0)
        with pytest.raises(StoreError, match="budget key"):
            store.get_spent("chat", None, now, budget_key="tenant")
        assert store.get_reserved("chat", "daily", now) == 0
        rows = rows_of(pg)
        with pytest.raises(StoreError, match=r"llm-toll 0\.13's tables"):
            reprice(store)
        assert isinstance(store, SQLStore)
        with pytest.warns(StoreWarning, match="one total per project"):
            store.reset_budget("batch", budget_key="tenant")
        with pytest.warns(StoreWarning, match="one total per project"):
            store.reset_budget("batch", period="all")
        assert rows_of(pg) == rows
        # A call with a budget key is recorded for its project all the same.
        store.record_call(make_call(5, project="chat", at=now, budget_key="tenant"), None, spec)
        assert store.get_spent("chat", None, now) == 375_000_005
