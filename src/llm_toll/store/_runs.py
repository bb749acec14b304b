"""Runs and refused calls (schema step 7), written once for both backends over their
transactions.

A run's row is written once, when it ends. Refused calls are counted, not listed: one row
per (project, budget key, model, reason, minute) holds how many were refused and the last
time and message, so a retry loop that is refused again and again adds to one row.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final

from llm_toll._budget.records import RefusalCount, RunRecord
from llm_toll.store._base import BaseStore
from llm_toll.store._compat import warn
from llm_toll.store._errors import StoreError
from llm_toll.store._ledger import as_dicts
from llm_toll.store._reads import Filters
from llm_toll.store._time import parse_time
from llm_toll.store._totals import scope_key
from llm_toll.store._transaction import Transaction, missing_table

BEFORE_READS: list[Callable[[], None]] = []
"""Called before a read of runs or refusals: this process's rows still waiting to be
written are written first."""

RUN_COLUMNS: Final = (
    "id",
    "parent_id",
    "project",
    "name",
    "budget_key",
    "status",
    "requests",
    "cost_nanos",
    "max_cost_nanos",
    "started_at",
    "ended_at",
)
# A run is written once; a second write of its id (a replayed job) changes nothing.
RECORD_RUN: Final = (
    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RUN_COLUMNS))}) ON CONFLICT (id) DO NOTHING"
)
_NEWER: Final = "excluded.last_at > refusals.last_at"
ADD_REFUSALS: Final = f"""
INSERT INTO refusals (project, budget_key, model, reason, minute, count, last_at, message)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (project, budget_key, model, reason, minute) DO UPDATE SET
    count = refusals.count + excluded.count,
    last_at = CASE WHEN {_NEWER} THEN excluded.last_at ELSE refusals.last_at END,
    message = CASE WHEN {_NEWER} THEN excluded.message ELSE refusals.message END
"""
_REFUSAL_COLUMNS: Final = (
    "project, NULLIF(budget_key, '') AS budget_key, NULLIF(model, '') AS model, reason, "
    "minute, count, last_at, message"
)


def runs_query(where: str) -> str:
    return (
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} "
        "ORDER BY started_at DESC, id DESC LIMIT ?"
    )


def refusals_query(where: str) -> str:
    return (
        f"SELECT {_REFUSAL_COLUMNS} FROM refusals {where} "
        "ORDER BY last_at DESC, project, budget_key, model, reason LIMIT ?"
    )


class RunMethods(BaseStore):
    """``record_runs``, ``record_refusals``, ``runs`` and ``refusals`` of a SQL store. A read
    of a database without the tables (not yet written by this version, or llm-toll 0.13's)
    finds nothing and changes nothing; a database of 0.13's tables only (PostgreSQL) keeps
    neither."""

    @abstractmethod
    def _transaction(
        self, action: str, *, write: bool, atomic: bool = True, barrier: bool = True
    ) -> AbstractContextManager[Transaction]: ...

    @abstractmethod
    def _time_param(self, at: datetime) -> object: ...

    @abstractmethod
    def _limit_param(self, limit: int) -> object: ...

    @abstractmethod
    def _on_v013_tables(self) -> bool: ...

    def _keeps_runs(self) -> bool:
        """Whether runs and refusal counts may be written: never to a database of
        llm-toll 0.13's tables only. Only a call's record shares such a database with 0.13;
        a refused call or a run that recorded nothing leaves it as it is."""
        return not self._on_v013_tables()

    def record_runs(self, runs: Sequence[RunRecord]) -> None:
        if not runs or not self._keeps_runs():
            return
        time = self._time_param
        rows = [
            (
                run.id,
                run.parent_id,
                run.project,
                run.name,
                run.budget_key,
                run.status,
                run.requests,
                run.cost_nanos,
                run.max_cost_nanos,
                time(run.started_at),
                time(run.ended_at),
            )
            for run in runs
        ]
        # No write barrier: written from llm_toll's worker, whose backlog it would wait on.
        with self._transaction("record runs", write=True, barrier=False) as tx:
            tx.run_many(RECORD_RUN, rows)

    def record_refusals(self, counts: Sequence[RefusalCount]) -> None:
        if not counts or not self._keeps_runs():
            return
        time = self._time_param
        rows = [
            (
                refused.project,
                scope_key(refused.budget_key),
                refused.model or "",
                refused.reason,
                time(refused.minute),
                refused.count,
                time(refused.last_at),
                refused.message,
            )
            for refused in counts
        ]
        with self._transaction("count refused calls", write=True, barrier=False) as tx:
            tx.run_many(ADD_REFUSALS, rows)

    def runs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Ended runs that started in the range, newest first, at most ``limit`` (negative:
        all): their figures with exact ``cost_nanos`` and ``duration_s``."""
        where, params = Filters(since, until, project).where(self._time_param, "started_at")
        rows = self._read_table("runs", runs_query(where), (*params, self._limit_param(limit)))
        for row in rows:
            row["started_at"] = parse_time(row["started_at"])
            row["ended_at"] = parse_time(row["ended_at"])
            row["duration_s"] = (row["ended_at"] - row["started_at"]).total_seconds()
        return rows

    def refusals(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Refused calls counted per (project, key, model, reason, minute) in the range (by
        their minute), the latest refused first, at most ``limit`` (negative: all)."""
        where, params = Filters(since, until, project).where(self._time_param, "minute")
        sql = refusals_query(where)
        rows = self._read_table("refusals", sql, (*params, self._limit_param(limit)))
        for row in rows:
            row["minute"] = parse_time(row["minute"])
            row["last_at"] = parse_time(row["last_at"])
            row["count"] = int(row["count"])
        return rows

    def _read_table(self, table: str, sql: str, params: Sequence[object]) -> list[dict[str, Any]]:
        if self._on_v013_tables():
            return []
        for hand_over in BEFORE_READS:
            hand_over()
        try:
            with self._transaction(f"read {table}", write=False) as tx:
                names, rows = tx.query(sql, params)
        except StoreError as exc:
            if not missing_table(exc, table):
                warn(exc)
            return []
        return as_dicts(names, rows)
