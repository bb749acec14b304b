"""The ledger read over a date range: spend grouped by time and by who spent it, and the
calls themselves, written once for both backends.

Times are UTC: ``since`` inclusive, ``until`` exclusive (a naive time is taken as UTC).
Days read ``2026-11-30``, weeks are ISO weeks (``2026-W49``), months ``2026-11``; a backend
supplies the SQL that turns ``created_at`` into each (:class:`TimeBuckets`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from llm_toll.store._dimensions import DIMENSIONS, TIME_DIMENSIONS
from llm_toll.store._ledger import READ_COLUMNS
from llm_toll.store._time import parse_time

_COLUMN_OF: Final = {
    "project": "project",
    "model": "model",
    "key": "NULLIF(budget_key, '')",  # no budget key: None, however it was written
    "provider": "provider",
}

_SUMS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
    "cost_nanos",
)
_FIGURES: Final = f"""
COUNT(*) AS calls,
{", ".join(f"SUM({name}) AS {name}" for name in _SUMS)},
SUM(CASE WHEN price_known THEN 0 ELSE 1 END) AS unpriced_calls,
SUM(CASE WHEN estimated THEN 1 ELSE 0 END) AS estimated_calls,
MIN(created_at) AS first_at, MAX(created_at) AS last_at"""
_COUNTS: Final = ("calls", *_SUMS, "unpriced_calls", "estimated_calls")

_LOG_COLUMNS: Final = ", ".join(READ_COLUMNS)
BATCH_ROWS: Final = 1_000
"""Rows per read of ``iter_calls``: memory stays constant however long the ledger."""


@dataclass(frozen=True)
class TimeBuckets:
    """SQL turning ``created_at`` into the UTC text of its day, ISO week and month."""

    day: str
    week: str
    month: str


_SQLITE_THURSDAY = "date(created_at, '-3 days', 'weekday 4')"  # an ISO week is its Thursday's
SQLITE_BUCKETS: Final = TimeBuckets(
    day="strftime('%Y-%m-%d', created_at)",
    week=(
        f"strftime('%Y', {_SQLITE_THURSDAY}) || '-W' || "
        f"printf('%02d', (CAST(strftime('%j', {_SQLITE_THURSDAY}) AS INTEGER) + 6) / 7)"
    ),
    month="strftime('%Y-%m', created_at)",
)
_PG_UTC = "created_at AT TIME ZONE 'UTC'"
POSTGRES_BUCKETS: Final = TimeBuckets(
    day=f"to_char({_PG_UTC}, 'YYYY-MM-DD')",
    week=f"""to_char({_PG_UTC}, 'IYYY-"W"IW')""",
    month=f"to_char({_PG_UTC}, 'YYYY-MM')",
)


@dataclass(frozen=True)
class Filters:
    """Which calls a read covers; None: no condition."""

    since: datetime | None = None
    until: datetime | None = None
    project: str | None = None
    model: str | None = None
    key: str | None = None
    provider: str | None = None
    after_id: int | None = None

    def where(
        self,
        time_param: Callable[[datetime], object],
        time_column: str = "created_at",
        *,
        ranges_of: str | None = None,
    ) -> tuple[str, list[object]]:
        """The WHERE clause ('' for none) and its parameters; ``since`` and ``until`` bound
        ``time_column``. ``ranges_of``: the ledger, when its only index on time is the one on
        (project, created_at); a range without a project is then read per project
        (:func:`in_time_range`)."""
        clauses: list[str] = []
        params: list[object] = []
        since = self.since and time_param(_utc(self.since))
        until = self.until and time_param(_utc(self.until))
        if ranges_of is not None and self.project is None and (since or until):
            clause, bounds = in_time_range(ranges_of, since, until)
            clauses.append(clause)
            params.extend(bounds)
            since = until = None
        conditions: tuple[tuple[object, str], ...] = (
            (since, f"{time_column} >= ?"),
            (until, f"{time_column} < ?"),
            (self.project, "project = ?"),
            (self.model, "model = ?"),
            (self.key, "budget_key = ?"),
            (self.provider, "provider = ?"),
            (self.after_id, "id > ?"),
        )
        for value, clause in conditions:
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def dimensions(by: Sequence[str] | str) -> tuple[str, ...]:
    """``by`` checked: known dimensions, each once (a single name may be given as is)."""
    names = (by,) if isinstance(by, str) else tuple(by)
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown:
        raise ValueError(
            f"cannot group spend by {', '.join(map(repr, unknown))}: "
            f"choose among {', '.join(DIMENSIONS)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"a dimension is repeated in {list(names)}")
    return names


def spend_query(by: tuple[str, ...], buckets: TimeBuckets, ledger: str, where: str) -> str:
    """SQL: the figures of the calls ``where`` selects, one row per value of ``by``."""
    exprs = [getattr(buckets, name) if name in TIME_DIMENSIONS else _COLUMN_OF[name] for name in by]
    select = "".join(f"{expr} AS {name}, " for expr, name in zip(exprs, by, strict=True))
    sql = f"SELECT {select}{_FIGURES} FROM {ledger} {where}"
    if by:
        sql += " GROUP BY " + ", ".join(str(i) for i in range(1, len(by) + 1))
        # The same order on both backends: a missing value (no key, no provider) first.
        sql += " ORDER BY " + ", ".join(f"{expr} IS NOT NULL, {expr}" for expr in exprs)
    return sql


def spend_rows(by: tuple[str, ...], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``spend_query`` as the API returns them: counts and sums as ints (PostgreSQL
    sums bigints as numerics), times as UTC datetimes; no row for a group without calls."""
    result = []
    for row in rows:
        if not row["calls"]:
            continue  # a total over no calls at all
        spend = {name: row[name] for name in by}
        spend.update((name, int(row[name] or 0)) for name in _COUNTS)
        spend["first_at"] = parse_time(row["first_at"])
        spend["last_at"] = parse_time(row["last_at"])
        result.append(spend)
    return result


def calls_query(ledger: str, where: str, *, newest_first: bool) -> str:
    """SQL: the ledger rows ``where`` selects, at most LIMIT ?."""
    order = "created_at DESC, id DESC" if newest_first else "id"
    return f"SELECT {_LOG_COLUMNS} FROM {ledger} {where} ORDER BY {order} LIMIT ?"


def call_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row with its time as a UTC datetime, on both backends."""
    row["created_at"] = parse_time(row["created_at"])
    return row


def projects_query(ledger: str, totals: str, *, indexed: bool = False) -> str:
    """SQL: the projects of the ledger and of the running totals, sorted; ``indexed``: the
    ledger's are found by a walk of its index on (project, created_at)."""
    projects = ledger_projects(ledger) if indexed else f"SELECT project FROM {ledger}"
    return f"{projects} UNION SELECT project FROM {totals} ORDER BY 1"


def ledger_projects(ledger: str) -> str:
    """SQL: every project of the ledger, one row each, found through its index on
    (project, created_at) by a loose index scan: one index seek per project, however many
    rows each has. ``project`` is NOT NULL, in 0.13's ledger too, so no row is missed."""
    return f"""WITH RECURSIVE ledger_projects(project) AS (
    SELECT MIN(project) FROM {ledger}
    UNION ALL
    SELECT (SELECT MIN(project) FROM {ledger} WHERE project > ledger_projects.project)
    FROM ledger_projects WHERE project IS NOT NULL
) SELECT project FROM ledger_projects WHERE project IS NOT NULL"""


def in_time_range(ledger: str, since: object, until: object) -> tuple[str, list[object]]:
    """A condition (and its parameters) selecting the ledger rows created in [since, until)
    (either None: open) across projects, read as a range of the (project, created_at) index
    per project.

    The ids are collected from the index first, then the rows read in id order: visiting
    the rows of each project in turn would read most pages of the table once per project.
    """
    bounds = [bound for bound in (since, until) if bound is not None]
    conditions = " AND ".join(
        condition
        for bound, condition in ((since, "created_at >= ?"), (until, "created_at < ?"))
        if bound is not None
    )
    clause = (
        f"id IN (SELECT id FROM {ledger} "
        f"WHERE project IN ({ledger_projects(ledger)}) AND {conditions})"
    )
    return clause, bounds


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at
