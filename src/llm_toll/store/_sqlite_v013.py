"""A SQLite file shared with llm-toll 0.13: 0.13's tables kept, filled and followed.

llm-toll 0.13 keeps ``usage_logs`` (``cost`` REAL, in USD) and ``budgets`` (``total_cost``
per project: the lifetime total its budget check reads) in the same default file, with no
``schema_version`` table. A fleet upgrades one process at a time, so 0.13 processes may
keep writing to the file while llm_toll processes use it. Therefore:

- Reading such a file never changes it: this connection sees 0.13's tables through TEMP
  views (they live in the connection, not in the file) that show them as llm_toll's.
- Its first write (or ``llm-toll migrate``) *shares* the file, after a backup, in one
  transaction: 0.13's ``usage_logs`` gains llm_toll's columns (0.13's own keep their names,
  types and meaning), llm_toll's tables are created and seeded from 0.13's rows, and
  triggers keep both sides in step, whichever library writes:

  - a row 0.13 inserts (``cost_nanos`` NULL) gets its exact cost, and is added to llm_toll's
    running totals of its project: the lifetime one and those of the current UTC day, week
    and month (0.13 does not say which period a budget uses);
  - a row llm_toll inserts (``cost`` filled too, see :data:`LEDGER_INSERT`) is added to
    0.13's ``budgets``, so 0.13's budget check counts it;
  - a budget reset on either side resets the other's.

0.13 keeps its lifetime total as a float sum; llm_toll's totals are exact integers, and a
0.13 cost becomes nanos as ``ROUND(cost * 1e9)``. A 0.13 cost that is not a finite,
non-negative amount counts 0 for llm_toll and is flagged ``price_known = 0``.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from llm_toll.store import _ledger
from llm_toll.store._errors import SchemaError

V013_LEDGER_COLUMNS: Final = (
    "id",
    "project",
    "model",
    "input_tokens",
    "output_tokens",
    "cost",
    "created_at",
)
"""The columns of 0.13's ``usage_logs``."""


def _cost_ok(cost: str) -> str:
    # 9e9 USD is about the most nano-USD an INTEGER holds (2**63 - 1).
    return f"(typeof({cost}) IN ('integer', 'real') AND {cost} BETWEEN 0 AND 9e9)"


def _nanos(cost: str) -> str:
    """SQL: the nano-USD of a 0.13 ``cost`` (0 when it is not an amount)."""
    return f"(CASE WHEN {_cost_ok(cost)} THEN CAST(ROUND({cost} * 1e9) AS INTEGER) ELSE 0 END)"


def _period(day: str) -> str:
    """SQL: the key of the period of kind ``kind`` (a column: 'all', 'daily', 'weekly',
    'monthly') that the UTC day ``day`` ('YYYY-MM-DD') is in, as ``period_key`` writes it."""
    return (
        f"(CASE kind WHEN 'all' THEN 'all' WHEN 'daily' THEN {day} "
        f"WHEN 'weekly' THEN 'W' || date({day}, '-6 days', 'weekday 1') "
        f"ELSE substr({day}, 1, 7) END)"
    )


def _kinds(*kinds: str) -> str:
    # A row per period kind. Not a CTE: SQLite allows none in a trigger.
    return "(" + " UNION ALL ".join(f"SELECT '{kind}' AS kind" for kind in kinds) + ")"


_DAY_OF_ROW = "substr({table}.created_at, 1, 10)"  # 0.13 writes UTC ISO 8601 times

_STEP_1_COLUMNS: Final = (
    ("provider", "TEXT"),
    ("operation", "TEXT NOT NULL DEFAULT 'chat'"),
    ("cache_read_input_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("cache_creation_input_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("reasoning_output_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("cost_nanos", "INTEGER"),  # NULL in a row 0.13 inserts, until the trigger below sets it
    ("price_known", "INTEGER NOT NULL DEFAULT 1"),
    ("estimated", "INTEGER NOT NULL DEFAULT 0"),
    ("budget_key", "TEXT"),
    ("response_id", "TEXT"),
    ("duration_s", "REAL"),
)
"""The ledger columns of schema step 1 that 0.13's ``usage_logs`` lacks, added to it when
the file is shared. Part of a released step, so never edited: a later ledger column comes
with its own step, which adds it to shared files too."""

AS_WRITTEN_BY_V013: Final = {
    "provider": "NULL",
    "operation": "'chat'",
    "cache_read_input_tokens": "0",
    "cache_creation_input_tokens": "0",
    "reasoning_output_tokens": "0",
    "cost_nanos": _nanos("cost"),
    "price_known": _cost_ok("cost"),
    "estimated": "0",
    "budget_key": "NULL",
    "response_id": "NULL",
    "duration_s": "NULL",
    "usage_units": "NULL",
    "price_context": "NULL",
    "price_source": "NULL",
    "price_version": "NULL",
    "unpriced_units": "NULL",
    "cost_source": "'local'",
    "local_cost_nanos": "NULL",
    "run_id": "NULL",
}
"""Every ledger column that 0.13's ``usage_logs`` lacks, as a row 0.13 wrote reads (SQL)."""

LEDGER_INSERT: Final = (
    f"INSERT INTO usage_logs ({', '.join(_ledger.COLUMNS)}, cost) "
    f"VALUES ({', '.join('?' * (len(_ledger.COLUMNS) + 1))})"
)
"""The ledger insert in a shared file: the row of ``_ledger.row``, then the cost in USD for
0.13's ``cost`` column (NOT NULL, with no default)."""

# -- llm_toll's running totals of 0.13's rows ------------------------------------------------

TOTALS_OF_V013_ROWS: Final = f"""
SELECT project, '' AS budget_key, period, SUM(nanos) AS spent_nanos, NULL AS limit_nanos,
       0 AS thresholds_fired, MAX(created_at) AS updated_at, last_reset_at,
       0 AS reserved_nanos
FROM (
    SELECT l.project, l.created_at, b.last_reset_at, {_nanos("l.cost")} AS nanos,
           {_period(_DAY_OF_ROW.format(table="l"))} AS period,
           {_period("date('now')")} AS current_period
    FROM main.usage_logs AS l
    CROSS JOIN {_kinds("all", "daily", "weekly", "monthly")}
    LEFT JOIN main.budgets AS b ON b.project = l.project
    WHERE (b.last_reset_at IS NULL OR l.created_at > b.last_reset_at)
      AND (kind = 'all' OR l.created_at >= min(
          date('now', '-6 days', 'weekday 1'), date('now', 'start of month')))
)
WHERE period = current_period
GROUP BY project, period
"""
"""llm_toll's running totals of 0.13's rows, in the column order of ``budget_totals``: per
project, the sum of its rows since its last reset (0.13's ``budgets.last_reset_at``), over
its lifetime and over the current UTC day, week and month."""

TOTALS_COLUMNS: Final = (
    "project, budget_key, period, spent_nanos, limit_nanos, thresholds_fired, updated_at, "
    "last_reset_at, reserved_nanos"
)

# -- sharing the file ------------------------------------------------------------------------

EXTEND_LEDGER: Final = (
    *(f"ALTER TABLE usage_logs ADD COLUMN {name} {spec}" for name, spec in _STEP_1_COLUMNS),
    f"UPDATE usage_logs SET cost_nanos = {_nanos('cost')}, price_known = {_cost_ok('cost')}",
)
"""0.13's ``usage_logs`` made llm_toll's ledger too: its columns added, its rows priced."""

SEED_TOTALS: Final = f"INSERT INTO budget_totals ({TOTALS_COLUMNS}) {TOTALS_OF_V013_ROWS}"

TRIGGERS: Final = (
    # A row 0.13 inserted: its exact cost, and llm_toll's totals of its project.
    f"""CREATE TRIGGER llm_toll_v013_row_to_totals AFTER INSERT ON usage_logs
    WHEN NEW.cost_nanos IS NULL
    BEGIN
        UPDATE usage_logs SET cost_nanos = {_nanos("NEW.cost")},
            price_known = {_cost_ok("NEW.cost")}
        WHERE id = NEW.id;
        INSERT INTO budget_totals (project, budget_key, period, spent_nanos, updated_at)
        SELECT NEW.project, '', {_period(_DAY_OF_ROW.format(table="NEW"))},
               {_nanos("NEW.cost")}, NEW.created_at
        FROM {_kinds("all", "daily", "weekly", "monthly")} WHERE true
        ON CONFLICT (project, budget_key, period) DO UPDATE SET
            spent_nanos = spent_nanos + excluded.spent_nanos, updated_at = excluded.updated_at;
    END""",
    # A row llm_toll inserted: 0.13's lifetime total of its project, as 0.13 adds to it.
    """CREATE TRIGGER llm_toll_row_to_v013_budgets AFTER INSERT ON usage_logs
    WHEN NEW.cost_nanos IS NOT NULL
    BEGIN
        INSERT INTO budgets (project, total_cost, updated_at)
        VALUES (NEW.project, NEW.cost, NEW.created_at)
        ON CONFLICT (project) DO UPDATE SET
            total_cost = total_cost + excluded.total_cost, updated_at = excluded.updated_at;
    END""",
    # 0.13 reset a project's budget: so does llm_toll (RESET_PROJECT of _totals).
    """CREATE TRIGGER llm_toll_v013_reset_to_totals AFTER UPDATE OF last_reset_at ON budgets
    WHEN NEW.last_reset_at IS NOT OLD.last_reset_at
    BEGIN
        UPDATE budget_totals SET spent_nanos = 0, thresholds_fired = 0,
            last_reset_at = NEW.last_reset_at, updated_at = NEW.updated_at
        WHERE project = NEW.project AND last_reset_at IS NOT NEW.last_reset_at;
    END""",
    # llm_toll reset a project's budget (its lifetime row tells): so does 0.13.
    """CREATE TRIGGER llm_toll_reset_to_v013_budgets AFTER UPDATE OF last_reset_at
    ON budget_totals
    WHEN NEW.budget_key = '' AND NEW.period = 'all'
        AND NEW.last_reset_at IS NOT OLD.last_reset_at
    BEGIN
        UPDATE budgets SET total_cost = 0.0, last_reset_at = NEW.last_reset_at,
            updated_at = NEW.updated_at
        WHERE project = NEW.project AND last_reset_at IS NOT NEW.last_reset_at;
    END""",
)

# -- reading a file 0.13 alone has written ---------------------------------------------------

_LEDGER_VIEW = (
    "CREATE TEMP VIEW usage_logs AS SELECT id, "
    + ", ".join(
        name if name in V013_LEDGER_COLUMNS else f"{AS_WRITTEN_BY_V013[name]} AS {name}"
        for name in _ledger.COLUMNS
    )
    + ", cost FROM main.usage_logs"
)
_TOTALS_VIEW = f"CREATE TEMP VIEW budget_totals AS {TOTALS_OF_V013_ROWS}"
_VIEWS = ("usage_logs", "budget_totals")


def is_v013_file(conn: sqlite3.Connection) -> bool:
    """Whether the file (without llm_toll's ``schema_version``) holds 0.13's tables; False
    when it has no ledger yet. Another ``usage_logs`` is a ``SchemaError``."""
    columns = _columns(conn, "usage_logs")
    if not columns:
        return False
    if set(V013_LEDGER_COLUMNS) <= columns and "cost_nanos" not in columns:
        return True
    raise SchemaError(f"unknown usage_logs table without a schema version: columns {columns}")


def is_shared(conn: sqlite3.Connection) -> bool:
    """Whether llm_toll's ledger is 0.13's ``usage_logs``, shared with 0.13."""
    return "cost" in _columns(conn, "usage_logs")


def open_views(conn: sqlite3.Connection) -> int:
    """Show 0.13's tables to this connection as llm_toll's ledger and running totals;
    returns the file's schema cookie, which changes when another process shares it."""
    drop_views(conn)
    conn.execute(_LEDGER_VIEW)
    conn.execute(_TOTALS_VIEW)
    return schema_cookie(conn)


def drop_views(conn: sqlite3.Connection) -> None:
    for name in _VIEWS:
        conn.execute(f"DROP VIEW IF EXISTS temp.{name}")


def schema_cookie(conn: sqlite3.Connection) -> int:
    """The file's schema version number, which every schema change increments."""
    return int(conn.execute("PRAGMA main.schema_version").fetchone()[0])


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
