"""Budgets as data: limits kept in the store, and how they combine with ``max_budget=``.

The rule (the stricter wins): a scope (the project, or one budget key of it) may have a
limit in code (``max_budget=`` / ``key_budget=``, with ``reset=``) and limits in the store
(``llm-toll budget set``), at most one per reset period. Each limit is enforced over its own
period; two with the same period are one limit, the smaller. A call is refused when any of
them is exhausted. Pure logic, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from llm_toll._budget.money import nanos_to_decimal
from llm_toll._budget.periods import LIFETIME_SHOWN, Reset, period_key, validate_reset
from llm_toll._budget.records import BudgetSpec, BudgetState, PendingWrite

LIFETIME_RESET = LIFETIME_SHOWN  # the one word for a period that never resets
"""How the store and the CLI name the reset period of a limit that never resets."""


@dataclass(frozen=True, slots=True)
class StoredLimit:
    """One limit kept in the store."""

    project: str
    budget_key: str | None
    """None: the project's own limit; else the limit of that budget key only."""
    limit_nanos: int
    reset: Reset | None
    set_by: str | None
    set_at: datetime

    @property
    def reset_label(self) -> str:
        """``daily``, ``weekly``, ``monthly`` or ``lifetime``."""
        return self.reset or LIFETIME_RESET

    @property
    def limit(self) -> Decimal:
        """The limit in USD, exactly."""
        return nanos_to_decimal(self.limit_nanos)


def reset_of_label(label: str) -> Reset | None:
    """The reset of a period's name (``daily``, ``weekly``, ``monthly``, ``lifetime``)."""
    if label == LIFETIME_RESET:
        return None
    if label in ("daily", "weekly", "monthly"):
        return validate_reset(label)
    raise ValueError(
        f"a budget's reset is one of daily, weekly, monthly or {LIFETIME_RESET}; got {label!r}"
    )


def combine(code: BudgetSpec | None, stored: Iterable[BudgetSpec]) -> BudgetSpec | None:
    """One scope's budget: the code's spec (kept first: its period names a strict
    reservation, which holds every period) with the stored limits folded in; each other
    period goes in ``also``. None when there is neither."""
    by_reset: dict[Reset | None, int | None] = {}
    order: list[Reset | None] = []
    for spec in ((code,) if code is not None else ()) + tuple(stored):
        if spec.reset not in by_reset:
            order.append(spec.reset)
            by_reset[spec.reset] = spec.limit_nanos
        else:
            by_reset[spec.reset] = _stricter(by_reset[spec.reset], spec.limit_nanos)
    if not order:
        return None
    first, *others = order
    return BudgetSpec(
        by_reset[first], first, also=tuple(BudgetSpec(by_reset[r], r) for r in others)
    )


def every_limit(spec: BudgetSpec) -> tuple[BudgetSpec, ...]:
    """A combined spec's limits, one per period: itself (without ``also``), then the others."""
    if not spec.also:
        return (spec,)
    return (replace(spec, also=()), *spec.also)


def binding(spec: BudgetSpec, state: BudgetState, at: datetime) -> BudgetSpec:
    """The limit of ``spec`` whose period total ``state`` reports (see ``_totals``): a
    period key names its reset period, so it is found by the key of ``at``."""
    for limit in every_limit(spec):
        if period_key(limit.reset, at) == state.period:
            return limit
    return spec


def reported(write: PendingWrite, state: BudgetState | None) -> PendingWrite:
    """``write`` with the budgets its spans and metrics report: of combined budgets, the
    binding limit, whose state the store returned."""
    if state is None:
        return write
    at = write.call.started_at
    budget, key_budget = write.budget, write.key_budget
    if budget is not None and budget.also:
        budget = binding(budget, state, at)
    if key_budget is not None and key_budget.also and state.key_state is not None:
        key_budget = binding(key_budget, state.key_state, at)
    if budget is write.budget and key_budget is write.key_budget:
        return write
    return write._replace(budget=budget, key_budget=key_budget)


def _stricter(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
