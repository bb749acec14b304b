"""Versioned schema of the SQLite store, applied in order inside one write transaction.

Each step is a version number and the statements that bring the schema from the previous
version to it. Steps are never edited once released: a change is a new step at the end.
"""

from __future__ import annotations

import math
import sqlite3

from llm_toll._budget.money import usd_to_nanos
from llm_toll.store.errors import SchemaError

Step = tuple[int, tuple[str, ...]]

MIGRATIONS: tuple[Step, ...] = (
    (
        1,
        (
            # One row per call, never updated: the exact ledger.
            """CREATE TABLE usage_logs (
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
            )""",
            "CREATE INDEX usage_logs_project_created_at ON usage_logs (project, created_at)",
            # Running totals per (project, period), so budget checks never sum the ledger.
            """CREATE TABLE budget_totals (
                project          TEXT    NOT NULL,
                period           TEXT    NOT NULL,
                spent_nanos      INTEGER NOT NULL DEFAULT 0,
                limit_nanos      INTEGER,
                thresholds_fired INTEGER NOT NULL DEFAULT 0,
                updated_at       TEXT    NOT NULL,
                last_reset_at    TEXT,
                PRIMARY KEY (project, period)
            ) WITHOUT ROWID""",
        ),
    ),
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
)

LATEST_VERSION = MIGRATIONS[-1][0]

# llm-toll 0.13 kept `usage_logs` (cost REAL) and `budgets` (total_cost REAL) without a
# schema_version table, in the same default file. Its data is carried over into version 1.
_LEGACY_V013_SET_ASIDE = (
    "DROP INDEX IF EXISTS idx_usage_logs_project_created",
    "ALTER TABLE usage_logs RENAME TO legacy_v013_usage_logs",
)
_LEGACY_V013_IMPORT = (
    """INSERT INTO usage_logs (id, project, model, operation, input_tokens, output_tokens,
                               cost_nanos, created_at)
       SELECT id, project, model, 'chat', input_tokens, output_tokens,
              llm_toll_usd_to_nanos(cost), created_at
       FROM legacy_v013_usage_logs""",
    """INSERT INTO budget_totals (project, period, spent_nanos, updated_at, last_reset_at)
       SELECT project, 'all', llm_toll_usd_to_nanos(total_cost), updated_at, last_reset_at
       FROM budgets""",
    "DROP TABLE legacy_v013_usage_logs",
    "DROP TABLE budgets",
)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema of ``conn`` (autocommit mode) to LATEST_VERSION.

    Safe when several processes open a fresh file at once: the version is re-read under
    ``BEGIN IMMEDIATE``, so exactly one of them applies each step.
    """
    if _version(conn) == LATEST_VERSION:
        return  # the usual case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        _migrate_locked(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _migrate_locked(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    current = _version(conn)
    if current > LATEST_VERSION:
        raise SchemaError(
            f"schema version {current} was written by a newer llm_toll "
            f"(this one knows up to {LATEST_VERSION}); upgrade llm_toll"
        )
    legacy = current == 0 and _is_legacy_v013(conn)
    if legacy:
        _run(conn, _LEGACY_V013_SET_ASIDE)
    for version, statements in MIGRATIONS:
        if version > current:
            _run(conn, statements)
    if legacy:
        conn.create_function("llm_toll_usd_to_nanos", 1, _legacy_usd_to_nanos)
        _run(conn, _LEGACY_V013_IMPORT)
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST_VERSION,))


def _version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _is_legacy_v013(conn: sqlite3.Connection) -> bool:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(usage_logs)")}
    if not columns:
        return False
    if "cost" in columns and "cost_nanos" not in columns:
        return True
    raise SchemaError(f"unknown usage_logs table without a schema version: columns {columns}")


def _run(conn: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    # One execute per statement: executescript() would COMMIT the open transaction.
    for statement in statements:
        conn.execute(statement)


def _legacy_usd_to_nanos(value: float | int | None) -> int:
    # 0.13 stored whatever float it was given; a NaN or infinite cost carries no money.
    if value is None or not math.isfinite(value):
        return 0
    return usd_to_nanos(value)
