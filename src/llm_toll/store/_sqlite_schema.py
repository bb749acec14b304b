"""Versioned schema of the SQLite store, applied in order inside one write transaction.

Each step is a version number and the statements that bring the schema from the previous
version to it. Steps are never edited once released: a change is a new step at the end.

A file of llm-toll 0.13 is left as it is until llm_toll first writes to it; it is then
shared with 0.13 (``_sqlite_v013``): its first step differs, the others are the same.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable

from llm_toll.store import _sqlite_v013 as v013
from llm_toll.store._errors import SchemaError

Step = tuple[int, tuple[str, ...]]

# One row per call, never updated: the exact ledger.
_LEDGER_V1 = """CREATE TABLE usage_logs (
    id                          INTEGER PRIMARY KEY,
    project                     TEXT    NOT NULL,
    model                       TEXT    NOT NULL,
    provider                    TEXT,
    operation                   TEXT    NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_output_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_nanos                  INTEGER NOT NULL,
    price_known                 INTEGER NOT NULL DEFAULT 1,
    estimated                   INTEGER NOT NULL DEFAULT 0,
    budget_key                  TEXT,
    response_id                 TEXT,
    duration_s                  REAL,
    created_at                  TEXT    NOT NULL
)"""
_LEDGER_INDEX_V1 = "CREATE INDEX usage_logs_project_created_at ON usage_logs (project, created_at)"
# Running totals per (project, period), so budget checks never sum the ledger.
_TOTALS_V1 = """CREATE TABLE budget_totals (
    project          TEXT    NOT NULL,
    period           TEXT    NOT NULL,
    spent_nanos      INTEGER NOT NULL DEFAULT 0,
    limit_nanos      INTEGER,
    thresholds_fired INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT    NOT NULL,
    last_reset_at    TEXT,
    PRIMARY KEY (project, period)
) WITHOUT ROWID"""

MIGRATIONS: tuple[Step, ...] = (
    (1, (_LEDGER_V1, _LEDGER_INDEX_V1, _TOTALS_V1)),
    (
        2,
        (
            # Per-tenant budgets: running totals per (project, budget key, period); the
            # project's own rows have the key ''. A WITHOUT ROWID table cannot change its
            # primary key in place, so it is rebuilt in the migration's transaction.
            """CREATE TABLE budget_totals_v2 (
                project          TEXT    NOT NULL,
                budget_key       TEXT    NOT NULL DEFAULT '',
                period           TEXT    NOT NULL,
                spent_nanos      INTEGER NOT NULL DEFAULT 0,
                limit_nanos      INTEGER,
                thresholds_fired INTEGER NOT NULL DEFAULT 0,
                updated_at       TEXT    NOT NULL,
                last_reset_at    TEXT,
                PRIMARY KEY (project, budget_key, period)
            ) WITHOUT ROWID""",
            """INSERT INTO budget_totals_v2 (project, budget_key, period, spent_nanos,
                   limit_nanos, thresholds_fired, updated_at, last_reset_at)
               SELECT project, '', period, spent_nanos, limit_nanos, thresholds_fired,
                   updated_at, last_reset_at
               FROM budget_totals""",
            "DROP TABLE budget_totals",
            "ALTER TABLE budget_totals_v2 RENAME TO budget_totals",
        ),
    ),
    (
        3,
        (
            # Strict budgets: money reserved by calls in flight, per (project, key, period),
            # next to what was spent, so a reservation's check is one primary-key read.
            "ALTER TABLE budget_totals ADD COLUMN reserved_nanos INTEGER NOT NULL DEFAULT 0",
            # One row per reservation not yet settled or released. AUTOINCREMENT: an id is
            # never reused, so a late settlement cannot release someone else's reservation.
            """CREATE TABLE reservations (
                id           INTEGER PRIMARY KEY AUTOINCREMENT,
                project      TEXT    NOT NULL,
                budget_key   TEXT,
                period       TEXT    NOT NULL,
                amount_nanos INTEGER NOT NULL,
                expires_at   TEXT    NOT NULL,
                created_at   TEXT    NOT NULL
            )""",
            # Reclaiming expired reservations reads only those.
            "CREATE INDEX reservations_expiry ON reservations (project, period, expires_at)",
        ),
    ),
    (
        4,
        (
            # Shared rate limits: one row per scope (what admissions of a scope lock), and
            # the requests and tokens of each scope's last 60 seconds.
            "CREATE TABLE rate_scopes (scope TEXT PRIMARY KEY) WITHOUT ROWID",
            """CREATE TABLE rate_events (
                id      INTEGER PRIMARY KEY AUTOINCREMENT,
                scope   TEXT    NOT NULL,
                at      REAL    NOT NULL,
                request INTEGER NOT NULL,
                tokens  INTEGER NOT NULL
            )""",
            "CREATE INDEX rate_events_window ON rate_events (scope, at)",
        ),
    ),
    (
        5,
        (
            # Records replayed from a spill journal, by the id the journal gave them: a
            # record is written in the same transaction as its id here, so a replay that
            # is interrupted and run again never writes it twice.
            """CREATE TABLE spill_replays (
                record_id   TEXT PRIMARY KEY,
                replayed_at TEXT NOT NULL
            ) WITHOUT ROWID""",
        ),
    ),
    (
        6,
        (
            # Billing-grade prices: what a price was made of and where it came from (see
            # _ledger), so a row can be priced again. Added to 0.13's usage_logs too in a
            # shared file: all NULL or with a default, so 0.13's inserts still work.
            "ALTER TABLE usage_logs ADD COLUMN usage_units TEXT",
            "ALTER TABLE usage_logs ADD COLUMN price_context TEXT",
            "ALTER TABLE usage_logs ADD COLUMN price_source TEXT",
            "ALTER TABLE usage_logs ADD COLUMN price_version TEXT",
            "ALTER TABLE usage_logs ADD COLUMN unpriced_units TEXT",
            "ALTER TABLE usage_logs ADD COLUMN cost_source TEXT NOT NULL DEFAULT 'local'",
            "ALTER TABLE usage_logs ADD COLUMN local_cost_nanos INTEGER",
            # A re-pricing's audit trail: one row per ledger row it changed, with the
            # figures it replaced.
            """CREATE TABLE price_corrections (
                id                INTEGER PRIMARY KEY AUTOINCREMENT,
                ledger_id         INTEGER NOT NULL,
                project           TEXT    NOT NULL,
                old_cost_nanos    INTEGER NOT NULL,
                new_cost_nanos    INTEGER NOT NULL,
                old_price_source  TEXT,
                old_price_version TEXT,
                new_price_source  TEXT,
                new_price_version TEXT,
                corrected_at      TEXT    NOT NULL,
                reason            TEXT    NOT NULL
            )""",
            "CREATE INDEX price_corrections_ledger_id ON price_corrections (ledger_id)",
        ),
    ),
    (
        7,
        (
            # Budgets as data: limits set without a deploy (``llm-toll budget set``), per
            # (project, budget key or '' for the project, reset period or 'lifetime').
            # A table of its own: llm-toll 0.13 never reads it, so a shared file stays
            # writable by 0.13.
            """CREATE TABLE budget_limits (
                project     TEXT    NOT NULL,
                budget_key  TEXT    NOT NULL DEFAULT '',
                reset       TEXT    NOT NULL,
                limit_nanos INTEGER NOT NULL,
                set_by      TEXT,
                set_at      TEXT    NOT NULL,
                PRIMARY KEY (project, budget_key, reset)
            ) WITHOUT ROWID""",
            # Reads over a date range across projects (the dashboard, ``llm-toll spend
            # --since``, the newest calls): without it each one scans the whole ledger.
            "CREATE INDEX usage_logs_created_at ON usage_logs (created_at)",
            # Runs: the ledger row names the innermost run it was made in (NULL outside any
            # run, and in every row llm-toll 0.13 writes to a shared file).
            "ALTER TABLE usage_logs ADD COLUMN run_id TEXT",
            # One row per ended run, written once when it ends; its parent's id makes the
            # chain of nested runs.
            """CREATE TABLE runs (
                id             TEXT    PRIMARY KEY,
                parent_id      TEXT,
                project        TEXT    NOT NULL,
                name           TEXT    NOT NULL,
                budget_key     TEXT,
                status         TEXT    NOT NULL,
                requests       INTEGER NOT NULL,
                cost_nanos     INTEGER NOT NULL,
                max_cost_nanos INTEGER,
                started_at     TEXT    NOT NULL,
                ended_at       TEXT    NOT NULL
            ) WITHOUT ROWID""",
            "CREATE INDEX runs_started_at ON runs (started_at)",
            # Calls refused before they were sent, counted per (project, key, model,
            # reason, minute): a retry loop adds to one row instead of flooding the file.
            """CREATE TABLE refusals (
                project    TEXT    NOT NULL,
                budget_key TEXT    NOT NULL DEFAULT '',
                model      TEXT    NOT NULL DEFAULT '',
                reason     TEXT    NOT NULL,
                minute     TEXT    NOT NULL,
                count      INTEGER NOT NULL,
                last_at    TEXT    NOT NULL,
                message    TEXT    NOT NULL,
                PRIMARY KEY (project, budget_key, model, reason, minute)
            ) WITHOUT ROWID""",
            "CREATE INDEX refusals_last_at ON refusals (last_at)",
        ),
    ),
    (
        8,
        (
            # The ledger's index on its time alone cost every call's insert 15-30 µs; reads
            # across projects use the one on (project, created_at), per project (see
            # ``_reads.in_time_range`` and ``_sqlite_newest``). llm-toll 0.13 never used it.
            "DROP INDEX IF EXISTS usage_logs_created_at",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]

_SHARED_STEP_1 = (*v013.EXTEND_LEDGER, _TOTALS_V1)
"""Step 1 in a file shared with llm-toll 0.13: its ``usage_logs`` extended (its index on
(project, created_at) serves as llm_toll's), then the running totals."""


class Layout(enum.Enum):
    """What a file holds, once ``migrate`` has seen it."""

    NATIVE = "llm_toll's tables"
    SHARED = "llm_toll's tables, sharing llm-toll 0.13's ledger and budgets"
    V013 = "llm-toll 0.13's tables only, left unchanged"


def migrate(conn: sqlite3.Connection, *, backup: Callable[[], object] | None = None) -> Layout:
    """Bring the schema of ``conn`` (autocommit mode) to LATEST_VERSION; its layout.

    A file of llm-toll 0.13 is changed only when ``backup`` is given (by a write): it is
    then copied by ``backup``, under the write lock, and shared with 0.13 in the same
    transaction. Safe when several processes open a file at once: the version is re-read
    under ``BEGIN IMMEDIATE``, so exactly one of them applies each step.
    """
    version = _version(conn)
    if version == LATEST_VERSION:  # the usual case: no write lock taken
        return Layout.SHARED if v013.is_shared(conn) else Layout.NATIVE
    if version == 0 and backup is None and v013.is_v013_file(conn):
        return Layout.V013  # read as it is: not even a lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        layout = _migrate_locked(conn, backup)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return layout


def _migrate_locked(conn: sqlite3.Connection, backup: Callable[[], object] | None) -> Layout:
    current = _version(conn)
    if current > LATEST_VERSION:
        raise SchemaError(
            f"schema version {current} was written by a newer llm_toll "
            f"(this one knows up to {LATEST_VERSION}); upgrade llm_toll"
        )
    sharing = current == 0 and v013.is_v013_file(conn)
    if sharing:
        if backup is None:
            return Layout.V013  # 0.13 created it while this process waited for the lock
        backup()  # under the write lock: exactly the file before the change
    for version, statements in MIGRATIONS:
        if version > current:
            _run(conn, _SHARED_STEP_1 if sharing and version == 1 else statements)
    if sharing:
        _run(conn, (v013.SEED_TOTALS, *v013.TRIGGERS))
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST_VERSION,))
    return Layout.SHARED if v013.is_shared(conn) else Layout.NATIVE


def _version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM main.schema_version").fetchone()
    return int(row[0] or 0)


def _run(conn: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    # One execute per statement: executescript() would COMMIT the open transaction.
    for statement in statements:
        conn.execute(statement)
