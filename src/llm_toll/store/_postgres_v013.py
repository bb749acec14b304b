"""A PostgreSQL database of llm-toll 0.13, used the way 0.13 uses it and changed in nothing.

llm-toll 0.13's PostgresStore keeps ``usage_logs`` (``cost`` DOUBLE PRECISION, in USD) and
``budgets`` (``total_cost`` per project: the lifetime total its budget check reads), and its
budgeted write locks the project's ``budgets`` row before it inserts into the ledger.
Sharing these tables through triggers, as a SQLite file is shared (``_sqlite_v013``), would
have 0.13's writes lock llm_toll's running totals after that row and llm_toll's before it:
processes of the two libraries could deadlock. So on such a database llm_toll speaks 0.13's
protocol on 0.13's tables, and changes no table: a call is one transaction that locks the
project's ``budgets`` row, inserts 0.13's columns of its ledger row and adds its cost to
``budgets``, in 0.13's order. Both libraries keep one ledger and one budget.

What llm_toll keeps only in its own tables is missing meanwhile: the lifetime total is
0.13's float sum; a daily, weekly or monthly budget sums the rows of its period since the
project's last reset (0.13's index on (project, created_at) reads only those); rows keep
0.13's columns; and there are no totals per budget key, no strict reservations and no
shared rate windows (the decorator falls back to its plain budget check and to rate limits
per process, with a warning).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Final

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.periods import Reset, period_key, threshold_mask, thresholds_crossed
from llm_toll._budget.records import (
    BudgetSpec,
    BudgetState,
    CallRecord,
    PendingWrite,
    RateAdmission,
    Reservation,
)
from llm_toll.store._checks import check_call
from llm_toll.store._compat import warn
from llm_toll.store._errors import StoreError
from llm_toll.store._ledger import COLUMNS
from llm_toll.store._reads import POSTGRES_BUCKETS
from llm_toll.store._reports import ReportSQL
from llm_toll.store._sql import SQLStore
from llm_toll.store._time import utc_now
from llm_toll.store._totals import budget_state
from llm_toll.store._transaction import Transaction


def _nanos(cost: str) -> str:
    """SQL: the nano-USD of a 0.13 amount; 0 when it is not a finite, non-negative one."""
    return f"(CASE WHEN {cost} BETWEEN 0 AND 9e9 THEN round({cost} * 1e9)::bigint ELSE 0 END)"


AS_WRITTEN_BY_V013 = {
    "provider": "NULL::text",
    "operation": "'chat'::text",
    "cache_read_input_tokens": "0::bigint",
    "cache_creation_input_tokens": "0::bigint",
    "reasoning_output_tokens": "0::bigint",
    "cost_nanos": _nanos("cost"),
    "price_known": "(cost BETWEEN 0 AND 9e9)",
    "estimated": "FALSE",
    "budget_key": "NULL::text",
    "response_id": "NULL::text",
    "duration_s": "NULL::double precision",
    "usage_units": "NULL::jsonb",
    "price_context": "NULL::jsonb",
    "price_source": "NULL::text",
    "price_version": "NULL::text",
    "unpriced_units": "NULL::jsonb",
    "cost_source": "'local'::text",
    "local_cost_nanos": "NULL::bigint",
    "run_id": "NULL::text",
}
"""Every ledger column that 0.13's ``usage_logs`` lacks, as its rows read (SQL)."""

_LEDGER: Final = (
    "(SELECT id, "
    + ", ".join(AS_WRITTEN_BY_V013.get(name, name) + f" AS {name}" for name in COLUMNS)
    + " FROM usage_logs) AS usage_logs"
)
_TOTALS: Final = f"""(
    SELECT project, ''::text AS budget_key, 'all'::text AS period,
           {_nanos("total_cost")} AS spent_nanos, NULL::bigint AS limit_nanos,
           0 AS thresholds_fired, updated_at, last_reset_at, 0::bigint AS reserved_nanos
    FROM budgets) AS budget_totals"""

REPORTS: Final = ReportSQL.for_backend(
    "(created_at AT TIME ZONE 'UTC')::date",
    buckets=POSTGRES_BUCKETS,
    ledger=_LEDGER,
    totals=_TOTALS,
)
"""The read queries of the llm-toll 0.13 API, over 0.13's tables."""

# -- 0.13's writes, in its order --------------------------------------------------------------

_LOCK_BUDGET = "SELECT 1 FROM budgets WHERE project = ? FOR UPDATE"
_INSERT_ROW = """
INSERT INTO usage_logs (project, model, input_tokens, output_tokens, cost, created_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
_ADD_TO_BUDGET = f"""
INSERT INTO budgets AS b (project, total_cost, updated_at) VALUES (?, ?, ?)
ON CONFLICT (project) DO UPDATE SET
    total_cost = b.total_cost + excluded.total_cost, updated_at = excluded.updated_at
RETURNING {_nanos("b.total_cost")}
"""
RESET: Final = """
UPDATE budgets SET total_cost = 0.0, last_reset_at = ?, updated_at = ? WHERE project = ?
"""
"""0.13's ``reset_budget``; parameters (now, now, project)."""

_LIFETIME_SPENT = f"SELECT {_nanos('total_cost')} FROM budgets WHERE project = ?"
_PERIOD_SPENT = f"""
WITH period AS (SELECT date_trunc(?, (?::timestamptz) AT TIME ZONE 'UTC') AS start)
SELECT COALESCE(SUM({_nanos("cost")}), 0)::bigint FROM usage_logs, period
WHERE project = ?
  AND created_at >= period.start AT TIME ZONE 'UTC'
  AND created_at < (period.start + ('1 ' || ?)::interval) AT TIME ZONE 'UTC'
  AND created_at > COALESCE(
      (SELECT last_reset_at FROM budgets WHERE project = ?), '-infinity'::timestamptz)
"""
_UNITS: Final[dict[Reset, str]] = {"daily": "day", "weekly": "week", "monthly": "month"}


def record_in(
    tx: Transaction,
    call: CallRecord,
    *,
    budget: BudgetSpec | None,
    time_param: Callable[[datetime], object],
) -> BudgetState:
    """``record_call`` on 0.13's tables, in an open transaction: the state of the project's
    budget after the call (its thresholds are those the call crossed; nothing more is kept)."""
    cost = nanos_to_usd(call.cost_nanos)
    usage = call.usage
    tx.run(_LOCK_BUDGET, (call.project,))
    row = (call.project, call.model, usage.input_tokens, usage.output_tokens, cost)
    tx.run(_INSERT_ROW, (*row, time_param(call.started_at)))
    [(lifetime,)] = tx.run(_ADD_TO_BUDGET, (call.project, cost, time_param(utc_now())))
    reset = None if budget is None else budget.reset
    spent = lifetime if reset is None else spent_in(tx, call.project, reset, call.started_at)
    limit = None if budget is None else budget.limit_nanos
    cost_nanos = call.cost_nanos
    # No thresholds are kept: those reached before this call count as fired.
    fired = 0 if limit is None else threshold_mask(thresholds_crossed(spent - cost_nanos, limit, 0))
    period = period_key(reset, call.started_at)
    state, _ = budget_state(spent=spent, fired=fired, cost=cost_nanos, limit=limit, period=period)
    return state


def spent_in(tx: Transaction, project: str, reset: Reset | None, at: datetime) -> int:
    """What ``project`` spent in the period of ``reset`` that holds ``at``, since its last
    reset: 0.13's lifetime total, or the sum of the period's rows."""
    if reset is None:
        rows = tx.run(_LIFETIME_SPENT, (project,))
    else:
        unit = _UNITS[reset]
        rows = tx.run(_PERIOD_SPENT, (unit, at, project, unit, project))
    return int(rows[0][0]) if rows else 0


class OnV013Tables(SQLStore):
    """A SQL store that, on a database of llm-toll 0.13, uses 0.13's tables as above.

    The store sets ``_v013_tables`` when it first reaches its database; until then each
    method here reaches it first to know.
    """

    _v013_tables: bool | None
    _display: str

    @abstractmethod
    def _error(self, action: str, cause: object) -> StoreError:
        """The StoreError of ``action``, naming the database."""

    def record_call(
        self,
        call: CallRecord,
        budget: BudgetSpec | None = None,
        key_budget: BudgetSpec | None = None,
    ) -> BudgetState:
        if not self._on_v013_tables():
            return super().record_call(call, budget, key_budget)
        check_call(call, budget, key_budget)  # the key's budget: no totals kept for it
        with self._transaction("record a call", write=True, barrier=False) as tx:
            return record_in(tx, call, budget=budget, time_param=self._time_param)

    def replay_spilled(self, write: PendingWrite, record_id: str) -> BudgetState | None:
        if not self._on_v013_tables():
            return super().replay_spilled(write, record_id)
        # 0.13's tables have no place for a record's id, and are never changed: the record
        # is written as a call is (a replay cut short and run again may write it twice).
        return self.record_call(write.call, write.budget)

    def get_spent(
        self, project: str, reset: Reset | None, at: datetime, budget_key: str | None = None
    ) -> int:
        if not self._on_v013_tables():
            return super().get_spent(project, reset, at, budget_key)
        if budget_key is not None:
            raise self._error(
                "read the budget", "llm-toll 0.13's tables keep no totals per budget key"
            )
        with self._transaction("read the budget", write=False) as tx:
            return spent_in(tx, project, reset, at)

    def get_reserved(
        self, project: str, reset: Reset | None, at: datetime, budget_key: str | None = None
    ) -> int:
        if self._on_v013_tables():
            return 0  # nothing can be reserved there
        return super().get_reserved(project, reset, at, budget_key)

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
        self._refuse_on_v013_tables("strict reservations")
        return super().reserve(
            project,
            budget_key=budget_key,
            spec=spec,
            at=at,
            amount_nanos=amount_nanos,
            ttl_s=ttl_s,
            key_spec=key_spec,
        )

    def acquire_rate(
        self,
        scope: str,
        *,
        rpm: int | None,
        tpm: int | None,
        estimated_tokens: int,
        now: float,
    ) -> RateAdmission:
        self._refuse_on_v013_tables("shared rate limits")
        return super().acquire_rate(
            scope, rpm=rpm, tpm=tpm, estimated_tokens=estimated_tokens, now=now
        )

    def reset_budget(
        self, project: str, *, budget_key: str | None = None, period: str | None = None
    ) -> None:
        try:
            if self._on_v013_tables():
                if budget_key is not None or period is not None:
                    raise self._error(
                        "reset one budget key or period",
                        "llm-toll 0.13's tables keep one total per project",
                    )
                now = self._time_param(utc_now())
                with self._transaction("reset the budget", write=True) as tx:
                    tx.run(RESET, (now, now, project))
                return
        except StoreError as exc:
            warn(exc)
            return
        super().reset_budget(project, budget_key=budget_key, period=period)

    def upgrade_schema(self) -> str | None:
        if self._on_v013_tables():
            raise self._error(
                "upgrade the schema",
                "it holds llm-toll 0.13's tables, which llm_toll uses the way 0.13 does "
                "and never changes",
            )
        return None

    def _queries(self) -> ReportSQL:
        try:
            on_v013 = self._on_v013_tables()
        except StoreError:
            return self._sql  # the query reports the failure, as every read does
        return REPORTS if on_v013 else self._sql

    def _on_v013_tables(self) -> bool:
        """Whether the database is llm-toll 0.13's; the first call reaches it to know."""
        if self._v013_tables is None:
            with self._transaction("open the database", write=False, barrier=False):
                pass
        return bool(self._v013_tables)

    def _refuse_on_v013_tables(self, feature: str) -> None:
        if self._on_v013_tables():
            raise NotImplementedError(
                f"{feature} need llm_toll's own tables; {self._display} holds llm-toll 0.13's"
            )
