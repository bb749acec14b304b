"""A store over SQL: the hot path, reservations, shared rate limits and llm-toll 0.13's API,
written once. A backend (``sqlite``, ``postgres``) supplies its transactions, how it stores
a time, and how it writes a scope's running totals fastest."""

from __future__ import annotations

import os
import weakref
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from llm_toll._budget.periods import Reset, period_key
from llm_toll._budget.records import (
    BudgetSpec,
    BudgetState,
    CallRecord,
    PendingWrite,
    RateAdmission,
    Reservation,
)
from llm_toll.store import _totals
from llm_toll.store._alert_marks import CLAIM_REFUSAL_ALERT
from llm_toll.store._checks import check_call, check_rate, check_reserve, check_settlement
from llm_toll.store._compat import CompatMethods, warn
from llm_toll.store._errors import StoreError
from llm_toll.store._ledger import as_dicts
from llm_toll.store._limits import LimitMethods
from llm_toll.store._rate_windows import acquire_rate_in, settle_rate_in
from llm_toll.store._reports import ReportMethods
from llm_toll.store._reservations import lock_project_rows, release_in, reserve_in
from llm_toll.store._runs import RunMethods
from llm_toll.store._spill_replays import replay_in
from llm_toll.store._time import utc_now
from llm_toll.store._totals import record_in, scope_key
from llm_toll.store._transaction import Transaction


class SQLStore(ReportMethods, CompatMethods, LimitMethods, RunMethods):
    """The store API over a backend's :class:`Transaction`.

    Writes of the hot path (``record_call``, reservations, rate limits) skip the write
    barrier (see ``BaseStore.set_write_barrier``): they are the writes others wait for.
    """

    def __init__(self) -> None:
        _STORES.add(self)

    # -- what a backend supplies ----------------------------------------------------------

    @abstractmethod
    def _transaction(
        self, action: str, *, write: bool, atomic: bool = True, barrier: bool = True
    ) -> AbstractContextManager[Transaction]:
        """One use of a connection, for ``action`` (named in errors, which are StoreError).

        ``write``: a write transaction, committed at the end, rolled back on an exception.
        ``atomic=False`` tells a backend that can run the writes as one statement that it
        may skip the explicit transaction. ``barrier``: first wait for writes in flight.
        """

    @property
    @abstractmethod
    def location(self) -> str:
        """The database as messages name it (a file's absolute path, or a URL without its
        password); records it could not take are journalled under this name."""

    @abstractmethod
    def _time_param(self, at: datetime) -> object:
        """``at`` as the backend stores and compares times."""

    @abstractmethod
    def _forget_connections_after_fork(self) -> None:
        """In a forked child: never use nor close the parent's connections; open anew."""

    # -- hot path ------------------------------------------------------------------------

    def record_call(
        self,
        call: CallRecord,
        budget: BudgetSpec | None = None,
        key_budget: BudgetSpec | None = None,
    ) -> BudgetState:
        check_call(call, budget, key_budget)
        # More than one statement on a backend that writes a scope in one: thresholds to
        # mark, or a budget key's totals too.
        atomic = (budget is not None and (budget.limit_nanos is not None or bool(budget.also))) or (
            key_budget is not None and bool(call.budget_key)
        )
        with self._transaction("record a call", write=True, atomic=atomic, barrier=False) as tx:
            return record_in(
                tx, call, budget=budget, key_budget=key_budget, time_param=self._time_param
            )

    def get_spent(
        self, project: str, reset: Reset | None, at: datetime, budget_key: str | None = None
    ) -> int:
        return self._read_total(
            _totals.GET_SPENT, project, reset=reset, at=at, budget_key=budget_key
        )

    def get_spent_since(self, project: str, since: datetime, budget_key: str | None = None) -> int:
        # The ledger's index on (project, created_at) bounds the read to the rows since then.
        sql = (
            f"SELECT COALESCE(SUM(cost_nanos), 0) FROM {self._queries().ledger} "
            "WHERE project = ? AND created_at >= ?"
        )
        params: list[object] = [project, self._time_param(since)]
        if budget_key is not None:
            sql += " AND budget_key = ?"
            params.append(budget_key)
        with self._transaction("read recent spend", write=False) as tx:
            rows = tx.run(sql, params)
        return int(rows[0][0]) if rows else 0

    # -- strict budgets ------------------------------------------------------------------

    def reserve(
        self,
        project: str,
        *,
        budget_key: str | None,
        spec: BudgetSpec,
        at: datetime,
        amount_nanos: int,
        ttl_s: float,
        key_spec: BudgetSpec | None = None,
    ) -> Reservation | None:
        key = check_reserve(
            budget_key=budget_key,
            spec=spec,
            amount_nanos=amount_nanos,
            ttl_s=ttl_s,
            key_spec=key_spec,
        )
        with self._transaction("reserve budget", write=True, barrier=False) as tx:
            return reserve_in(
                tx,
                project=project,
                key=key,
                spec=spec,
                key_spec=key_spec,
                at=at,
                amount=amount_nanos,
                ttl_s=ttl_s,
                time_param=self._time_param,
            )

    def settle_reservation(self, reservation: Reservation, call: CallRecord) -> BudgetState:
        check_settlement(reservation, call)
        check_call(call, reservation.spec, reservation.key_spec)
        with self._transaction("record a call", write=True, barrier=False) as tx:
            # record_call's rows first (lifetime, then period): the lock order of every write.
            state = record_in(
                tx,
                call,
                budget=reservation.spec,
                key_budget=reservation.key_spec,
                time_param=self._time_param,
            )
            release_in(tx, reservation)
            return state

    def replay_spilled(self, write: PendingWrite, record_id: str) -> BudgetState | None:
        """Write a record kept in a spill journal, exactly once: None when ``record_id`` was
        written before (a replay cut short after its commit, then run again)."""
        reservation = write.reservation
        if reservation is not None:
            check_settlement(reservation, write.call)
            check_call(write.call, reservation.spec, reservation.key_spec)
        else:
            check_call(write.call, write.budget, write.key_budget)
        with self._transaction("replay a spilled record", write=True, barrier=False) as tx:
            return replay_in(tx, write, record_id, self._time_param)

    def release_reservation(self, reservation: Reservation) -> None:
        with self._transaction("release a reservation", write=True, barrier=False) as tx:
            lock_project_rows(tx, reservation)  # first, as reserve() takes them
            release_in(tx, reservation)

    def get_reserved(
        self, project: str, reset: Reset | None, at: datetime, budget_key: str | None = None
    ) -> int:
        return self._read_total(
            _totals.GET_RESERVED, project, reset=reset, at=at, budget_key=budget_key
        )

    # -- alerts --------------------------------------------------------------------------

    def claim_refusal_alert(
        self, project: str, budget_key: str | None, period: str, limit_nanos: int
    ) -> bool | None:
        """Set the mark that a refusal of this budget's period was alerted: True for the
        one caller that set it, False once set; None where the store keeps no marks (a
        PostgreSQL database of llm-toll 0.13)."""
        if self._on_v013_tables():
            return None
        now = self._time_param(utc_now())
        with self._transaction("mark an alert", write=True, barrier=False) as tx:
            rows = tx.run(
                CLAIM_REFUSAL_ALERT, (project, scope_key(budget_key), period, limit_nanos, now)
            )
        return bool(rows)

    # -- shared rate limits --------------------------------------------------------------

    def acquire_rate(
        self,
        scope: str,
        *,
        rpm: int | None,
        tpm: int | None,
        estimated_tokens: int,
        now: float,
    ) -> RateAdmission:
        check_rate(
            scope, rpm=rpm, tpm=tpm, tokens=estimated_tokens, now=now, name="estimated_tokens"
        )
        with self._transaction("check a shared rate limit", write=True, barrier=False) as tx:
            return acquire_rate_in(
                tx, scope, rpm=rpm, tpm=tpm, estimated_tokens=estimated_tokens, now=now
            )

    def settle_rate(self, scope: str, lease_id: int, actual_tokens: int, now: float) -> None:
        check_rate(scope, rpm=None, tpm=None, tokens=actual_tokens, now=now, name="actual_tokens")
        with self._transaction("settle a shared rate limit", write=True, barrier=False) as tx:
            settle_rate_in(tx, scope, lease_id=lease_id, actual_tokens=actual_tokens, now=now)

    # -- the schema ------------------------------------------------------------------------

    def upgrade_schema(self) -> str | None:
        """Bring the database's schema up to date now, as its first write would; returns
        the path of a backup made for it, if any."""
        with self._transaction("upgrade the schema", write=True):
            return None

    # -- llm-toll 0.13 API (the rest comes from CompatMethods and ReportMethods) -----------

    def reset_budget(
        self, project: str, *, budget_key: str | None = None, period: str | None = None
    ) -> None:
        """``BaseStore.reset_budget``, optionally narrowed: ``budget_key`` resets one key's
        totals only (``""``: the project's own), ``period`` one period key only (``all``,
        ``2026-11-30``, ``2026-11``...)."""
        now = self._time_param(utc_now())
        sql, params = _totals.reset_scope(project, now, budget_key=budget_key, period=period)
        try:
            with self._transaction("reset the budget", write=True) as tx:
                tx.lock(_totals.PROJECT_ROWS, (project,))
                tx.run(sql, params)
        except StoreError as exc:
            warn(exc)

    def _report(self, action: str, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        try:
            with self._transaction(action, write=False) as tx:
                names, rows = tx.query(sql, params)
        except StoreError as exc:
            warn(exc)
            return []
        return as_dicts(names, rows)

    # -- internals -------------------------------------------------------------------------

    def _on_v013_tables(self) -> bool:
        """Whether the database is llm-toll 0.13's, used through 0.13's own tables and never
        changed (a PostgreSQL store says so)."""
        return False

    def _ledger_keeps_v013_cost(self) -> bool:
        """Whether the ledger is llm-toll 0.13's ``usage_logs``, shared with 0.13: a change of
        a row's cost then changes 0.13's ``cost`` and ``budgets`` too. Known inside a
        transaction."""
        return False

    def _read_total(
        self, sql: str, project: str, *, reset: Reset | None, at: datetime, budget_key: str | None
    ) -> int:
        period = period_key(reset, at)
        with self._transaction("read the budget", write=False) as tx:
            rows = tx.run(sql, (project, scope_key(budget_key), period))
        return int(rows[0][0]) if rows else 0


_STORES: weakref.WeakSet[SQLStore] = weakref.WeakSet()
_INHERITED: list[object] = []


def keep_inherited(resource: object) -> None:
    """In a forked child, keep a parent's connection (or pool) referenced, never used nor
    closed: closing it could disturb the parent (a SQLite checkpoint, a shared socket)."""
    _INHERITED.append(resource)


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_connections_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
