"""Running totals per (project, budget key, period): what a budget check reads in O(1), and
the hot path's write, which adds each call to them in the transaction that records it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Final, NamedTuple

from llm_toll._budget.limits import every_limit
from llm_toll._budget.periods import LIFETIME, period_key, threshold_mask, thresholds_crossed
from llm_toll._budget.records import BudgetSpec, BudgetState, CallRecord
from llm_toll.store import _ledger
from llm_toll.store._time import as_utc, utc_now
from llm_toll.store._transaction import Transaction

PROJECT_KEY: Final = ""
"""The budget key of a project's own running totals."""

ADD_TO_TOTAL: Final = """
INSERT INTO budget_totals AS t (project, budget_key, period, spent_nanos, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (project, budget_key, period) DO UPDATE SET
    spent_nanos = t.spent_nanos + excluded.spent_nanos, updated_at = excluded.updated_at
RETURNING spent_nanos
"""
"""Add to a total without a limit (a scope's lifetime total); parameters (project, key,
period, cost, now)."""
ADD_TO_BUDGET_CONFLICT: Final = """
ON CONFLICT (project, budget_key, period) DO UPDATE SET
    spent_nanos = t.spent_nanos + excluded.spent_nanos,
    limit_nanos = excluded.limit_nanos,
    updated_at = excluded.updated_at
RETURNING spent_nanos, thresholds_fired
"""
ADD_TO_BUDGET_INSERT: Final = """
INSERT INTO budget_totals AS t (project, budget_key, period, spent_nanos, limit_nanos, updated_at)
"""
ADD_TO_BUDGET: Final = f"{ADD_TO_BUDGET_INSERT} VALUES (?, ?, ?, ?, ?, ?) {ADD_TO_BUDGET_CONFLICT}"
"""Add to a budget's period total and set its limit; parameters (project, key, period,
cost, limit, now)."""
SET_LIFETIME_LIMIT: Final = """
UPDATE budget_totals SET limit_nanos = ?
WHERE project = ? AND budget_key = ? AND period = 'all'
RETURNING spent_nanos, thresholds_fired
"""
"""Set the limit of a lifetime total written earlier in the transaction."""
SET_THRESHOLDS_FIRED: Final = """
UPDATE budget_totals SET thresholds_fired = ?
WHERE project = ? AND budget_key = ? AND period = ?
"""
GET_SPENT: Final = """
SELECT spent_nanos FROM budget_totals WHERE project = ? AND budget_key = ? AND period = ?
"""
GET_RESERVED: Final = """
SELECT reserved_nanos FROM budget_totals WHERE project = ? AND budget_key = ? AND period = ?
"""
# The project's rows in the order every write locks them: the project's own before its
# keys', each scope's lifetime row first.
PROJECT_ROWS: Final = """
SELECT 1 FROM budget_totals WHERE project = ?
ORDER BY budget_key, period <> 'all', period
"""
RESET_PROJECT: Final = """
UPDATE budget_totals SET spent_nanos = 0, thresholds_fired = 0, last_reset_at = ?,
    updated_at = ?
WHERE project = ?
"""


def reset_scope(
    project: str, now: object, *, budget_key: str | None, period: str | None
) -> tuple[str, tuple[object, ...]]:
    """RESET_PROJECT narrowed to one budget key and/or one period (None: all of them), with
    its parameters. Only the project's own lifetime row (key ``''``, period ``all``) is what
    llm-toll 0.13 calls the project's budget, so only its reset reaches a shared 0.13 file."""
    sql = RESET_PROJECT
    params: tuple[object, ...] = (now, now, project)
    if budget_key is not None:
        sql, params = f"{sql} AND budget_key = ?", (*params, budget_key)
    if period is not None:
        sql, params = f"{sql} AND period = ?", (*params, period)
    return sql, params


class ScopeWrite(NamedTuple):
    """A call's cost added to one scope's totals: its lifetime total, and the period total
    of its budget when it has one."""

    project: str
    key: str
    """The budget key, or PROJECT_KEY for the project's own totals."""
    budget: BudgetSpec | None
    """None: only the lifetime total, with no limit. Else the period row of its reset
    carries its limit (and thresholds when the limit is set)."""
    period: str
    limit: int | None
    cost: int
    now: object
    """The time of the write, as the backend stores times."""
    ledger_row: tuple[object, ...] | None = None
    """The call's ledger row, written with the project's scope."""


def lock_order(period: str) -> tuple[bool, str]:
    """Where a scope's row of ``period`` comes in the order every write locks them: the
    lifetime row first, then by period key."""
    return (period != LIFETIME, period)


def scope_key(budget_key: str | None) -> str:
    """The ``budget_key`` column of a scope: '' for the project itself."""
    return budget_key or PROJECT_KEY


def tracked_key(call: CallRecord, key_budget: BudgetSpec | None) -> str | None:
    """The budget key whose totals ``record_call`` updates: set on the call and budgeted."""
    if key_budget is None or not call.budget_key:
        return None
    return call.budget_key


def record_in(
    tx: Transaction,
    call: CallRecord,
    *,
    budget: BudgetSpec | None,
    key_budget: BudgetSpec | None,
    time_param: Callable[[datetime], object],
) -> BudgetState:
    """The writes of ``record_call`` in an open transaction: the ledger row, the project's
    totals, then the key's (the lock order of every write).

    A call stamped after the time of its write (a wrong timestamp, a clock that stepped
    back meanwhile) is recorded at the time of its write: its cost counts in the period
    that is current, never in one still to come.
    """
    written_at = utc_now()
    if as_utc(call.started_at) > written_at:
        call = replace(call, started_at=written_at)
    now = time_param(written_at)
    ledger = _ledger.row(call, time_param)
    state = _add_budget(tx, call, key=PROJECT_KEY, budget=budget, now=now, ledger_row=ledger)
    key = tracked_key(call, key_budget)
    if key is not None:
        state = replace(
            state,
            key_state=_add_budget(tx, call, key=key, budget=key_budget, now=now, ledger_row=None),
        )
    return state


def _add_budget(
    tx: Transaction,
    call: CallRecord,
    *,
    key: str,
    budget: BudgetSpec | None,
    now: object,
    ledger_row: tuple[object, ...] | None,
) -> BudgetState:
    """A scope's totals: the lifetime total and the period total of each of its limits
    (``BudgetSpec.also``: limits kept in the store). Rows are written lifetime first, then
    by period key, whatever the spec's order, so writers never lock them in another order.
    The state reported is the binding limit's: the one with the least money left."""
    if budget is None or not budget.also:
        return _add(tx, _scope_write(call, key=key, budget=budget, now=now, ledger_row=ledger_row))
    writes = sorted(
        (
            _scope_write(call, key=key, budget=spec, now=now, ledger_row=None)
            for spec in every_limit(budget)
        ),
        key=lambda write: lock_order(write.period),
    )
    first, *others = writes
    states = [_add(tx, first._replace(ledger_row=ledger_row))]
    states += [_add_period(tx, write) for write in others]
    limited = [state for state in states if state.limit_nanos is not None]
    binding = (
        min(limited, key=lambda state: (state.limit_nanos or 0) - state.spent_nanos)
        if limited
        else states[0]
    )
    return replace(binding, others=tuple(state for state in states if state is not binding))


def _add_period(tx: Transaction, write: ScopeWrite) -> BudgetState:
    """One more period total of a scope whose lifetime total is already written."""
    if write.period == LIFETIME:  # the call's cost is in it already: only set its limit
        [(spent, fired)] = tx.run(SET_LIFETIME_LIMIT, (write.limit, write.project, write.key))
    else:
        [(spent, fired)] = tx.run(
            ADD_TO_BUDGET,
            (write.project, write.key, write.period, write.cost, write.limit, write.now),
        )
    return _marked(tx, write, spent, fired)


def _scope_write(
    call: CallRecord,
    *,
    key: str,
    budget: BudgetSpec | None,
    now: object,
    ledger_row: tuple[object, ...] | None,
) -> ScopeWrite:
    if budget is None:
        return ScopeWrite(call.project, key, None, LIFETIME, None, call.cost_nanos, now, ledger_row)
    period = period_key(budget.reset, call.started_at)
    return ScopeWrite(
        call.project, key, budget, period, budget.limit_nanos, call.cost_nanos, now, ledger_row
    )


def _add(tx: Transaction, write: ScopeWrite) -> BudgetState:
    spent, fired = tx.add_to_scope(write)
    return _marked(tx, write, spent, fired)


def _marked(tx: Transaction, write: ScopeWrite, spent: int, fired: int) -> BudgetState:
    state, mask = budget_state(
        spent=spent, fired=fired, cost=write.cost, limit=write.limit, period=write.period
    )
    if mask != fired:  # at most three times per period: the usual call writes nothing more
        tx.run(SET_THRESHOLDS_FIRED, (mask, write.project, write.key, write.period))
    return state


def budget_state(
    *, spent: int, fired: int, cost: int, limit: int | None, period: str
) -> tuple[BudgetState, int]:
    """The state reported after adding ``cost`` to a period total, and its new threshold mask.

    ``spent`` is the total after the call and ``fired`` the mask of thresholds fired earlier
    in the period. The returned mask differs from ``fired`` only when this call crossed a
    threshold; the store then writes it in the same transaction.
    """
    if limit is None:
        return BudgetState(spent, None, period), fired
    crossed = thresholds_crossed(spent, limit, fired)
    state = BudgetState(spent, limit, period, crossed, spent - cost < limit <= spent)
    return state, (fired | threshold_mask(crossed)) if crossed else fired
