"""Budgets as data: the limits kept in the ``budget_limits`` table (schema step 7), written
once for both backends over their transactions."""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Final

from llm_toll._budget.limits import LIFETIME_RESET, StoredLimit, reset_of_label
from llm_toll._budget.periods import Reset
from llm_toll.store._base import BaseStore
from llm_toll.store._checks import MAX_INTEGER
from llm_toll.store._errors import StoreError
from llm_toll.store._time import parse_time, utc_now
from llm_toll.store._totals import scope_key
from llm_toll.store._transaction import Transaction, missing_table

SET_LIMIT: Final = """
INSERT INTO budget_limits (project, budget_key, reset, limit_nanos, set_by, set_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (project, budget_key, reset) DO UPDATE SET
    limit_nanos = excluded.limit_nanos, set_by = excluded.set_by, set_at = excluded.set_at
"""
LIST_LIMITS: Final = """
SELECT project, budget_key, reset, limit_nanos, set_by, set_at FROM budget_limits
ORDER BY project, budget_key, reset
"""
_REMOVE: Final = "DELETE FROM budget_limits WHERE project = ? AND budget_key = ?"
REMOVE_LIMITS: Final = f"{_REMOVE} RETURNING 1"
REMOVE_LIMIT: Final = f"{_REMOVE} AND reset = ? RETURNING 1"


class LimitMethods(BaseStore):
    """``set_budget_limit``, ``get_budget_limits`` and ``remove_budget_limits`` of a SQL
    store. A write brings the schema up to date first, as every write does; a read of a
    database without the table (not yet written by this version, or llm-toll 0.13's)
    finds no limits and changes nothing."""

    @abstractmethod
    def _transaction(
        self, action: str, *, write: bool, atomic: bool = True, barrier: bool = True
    ) -> AbstractContextManager[Transaction]: ...

    @abstractmethod
    def _time_param(self, at: datetime) -> object: ...

    @abstractmethod
    def _on_v013_tables(self) -> bool: ...

    def set_budget_limit(
        self,
        project: str,
        limit_nanos: int,
        *,
        reset: Reset | None = None,
        budget_key: str | None = None,
        set_by: str | None = None,
    ) -> StoredLimit:
        if type(limit_nanos) is not int or not 0 <= limit_nanos <= MAX_INTEGER:
            raise ValueError(f"limit_nanos must be a non-negative int, got {limit_nanos!r}")
        at = utc_now()
        label = reset or LIFETIME_RESET
        with self._transaction("set a budget limit", write=True) as tx:
            self._refuse_on_v013("set a budget limit")
            tx.run(
                SET_LIMIT,
                (project, scope_key(budget_key), label, limit_nanos, set_by, self._time_param(at)),
            )
        return StoredLimit(project, budget_key or None, limit_nanos, reset, set_by, at)

    def get_budget_limits(self) -> list[StoredLimit]:
        if self._on_v013_tables():
            return []
        try:
            # No write barrier: the limits are not written by this process's calls, and
            # the gates read them from llm_toll's worker thread too.
            with self._transaction("read the budget limits", write=False, barrier=False) as tx:
                _, rows = tx.query(LIST_LIMITS)
        except StoreError as exc:
            if missing_table(exc, "budget_limits"):
                return []
            raise
        return [
            StoredLimit(
                project=str(project),
                budget_key=str(key) or None,
                limit_nanos=int(limit),
                reset=reset_of_label(str(reset)),
                set_by=None if set_by is None else str(set_by),
                set_at=parse_time(set_at),
            )
            for project, key, reset, limit, set_by, set_at in rows
        ]

    def remove_budget_limits(
        self, project: str, *, budget_key: str | None = None, period: str | None = None
    ) -> int:
        key = scope_key(budget_key)
        if period is not None:
            reset_of_label(period)  # a ValueError for a period that is none
        with self._transaction("remove a budget limit", write=True) as tx:
            self._refuse_on_v013("remove a budget limit")
            if period is None:
                rows = tx.run(REMOVE_LIMITS, (project, key))
            else:
                rows = tx.run(REMOVE_LIMIT, (project, key, period))
        return len(rows)

    def _refuse_on_v013(self, action: str) -> None:
        if self._on_v013_tables():
            raise StoreError(
                f"cannot {action}: the database holds llm-toll 0.13's tables only, which "
                "have no place for stored limits"
            )
