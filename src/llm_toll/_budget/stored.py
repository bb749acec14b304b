"""This process's copy of the limits kept in the store, refreshed at most every
``refresh_s`` seconds (``LLM_TOLL_BUDGET_REFRESH_S``, default 5): a limit set, changed or
removed with ``llm-toll budget`` binds running processes at their first call after that
long, and a call reads the store for limits at most once per interval, not every time.
"""

from __future__ import annotations

import dataclasses
import os
import time
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from llm_toll._budget.limits import combine
from llm_toll._budget.records import BudgetSpec
from llm_toll._options import seconds_option
from llm_toll._warnings import warn_once
from llm_toll.exceptions import AccountingWarning
from llm_toll.store._errors import StoreError

if TYPE_CHECKING:
    from llm_toll._call.plan import Plan
    from llm_toll.store import BaseStore

REFRESH_ENV: Final = "LLM_TOLL_BUDGET_REFRESH_S"
DEFAULT_REFRESH_S: Final = 5.0

Limits = Mapping[tuple[str, str], tuple[BudgetSpec, ...]]
"""(project, budget key or '') -> the limits kept for that scope, one per period."""
NO_LIMITS: Limits = MappingProxyType({})


class LimitCache:
    """The stored limits of each store this process uses, with when they were read.

    Reads and replaces whole snapshots (one dict assignment): no lock.
    """

    def __init__(self, refresh_s: float | None = None) -> None:
        self.refresh_s = refresh_s if refresh_s is not None else _refresh_from_environment()
        self._snapshots: weakref.WeakKeyDictionary[BaseStore, tuple[float, Limits]] = (
            weakref.WeakKeyDictionary()
        )

    def fresh(self, store: BaseStore) -> Limits | None:
        """The limits, if read less than ``refresh_s`` ago; else None (call ``load``)."""
        snapshot = self._snapshots.get(store)
        if snapshot is None or time.monotonic() - snapshot[0] >= self.refresh_s:
            return None
        return snapshot[1]

    def current(self, store: BaseStore) -> Limits:
        """The limits as last read, without I/O (none if never read)."""
        snapshot = self._snapshots.get(store)
        return NO_LIMITS if snapshot is None else snapshot[1]

    def load(self, store: BaseStore) -> Limits:
        """Read the store's limits (blocking I/O: never on the event loop). When the store
        cannot answer, the limits last read stay in force until the next attempt, one
        interval later (a store that is down is warned of by the budget check and the
        write; any other failure here once). No lock: threads that find the
        copy stale at once each read it, and the last read stays."""
        try:
            limits = _by_scope(store)
        except StoreError:  # a store that is down is warned of by the check and the write
            limits = self.current(store)
        except Exception as exc:
            warn_once(
                f"stored-limits:{type(exc).__name__}",
                f"llm_toll could not read the budget limits kept in the store ({exc}); "
                "the limits read before stay in force.",
                AccountingWarning,
            )
            limits = self.current(store)
        self._snapshots[store] = (time.monotonic(), limits)
        return limits

    def forget(self) -> None:
        """Read the limits anew at the next call (after ``llm_toll.budgets`` changed them)."""
        self._snapshots = weakref.WeakKeyDictionary()


def _by_scope(store: BaseStore) -> Limits:
    scopes: dict[tuple[str, str], tuple[BudgetSpec, ...]] = {}
    for limit in store.get_budget_limits():
        scope = (limit.project, limit.budget_key or "")
        scopes[scope] = (*scopes.get(scope, ()), BudgetSpec(limit.limit_nanos, limit.reset))
    return MappingProxyType(scopes)


def _refresh_from_environment() -> float:
    raw = os.environ.get(REFRESH_ENV)
    if not raw:
        return DEFAULT_REFRESH_S
    try:
        return seconds_option(REFRESH_ENV, float(raw), required=True) or DEFAULT_REFRESH_S
    except ValueError:
        warn_once(
            f"refresh-env:{raw}",
            f"llm_toll: {REFRESH_ENV}={raw!r} is not a positive number of seconds; "
            f"stored budget limits are read every {DEFAULT_REFRESH_S:g} s.",
            AccountingWarning,
        )
        return DEFAULT_REFRESH_S


def with_stored_limits(plan: Plan, key: str | None, limits: Limits) -> Plan:
    """``plan`` for one call with budget key ``key``, with the limits kept in the store
    folded into its budgets (``_budget.limits.combine``: the stricter wins); ``plan``
    itself when none is kept for its project or key."""
    if not limits:
        return plan
    project = limits.get((plan.project, ""), ())
    keyed = limits.get((plan.project, key), ()) if key else ()
    if not project and not keyed:
        return plan
    # A scope's first period stays the code's; without one in code, the other scope's:
    # the period a strict reservation is named by, in the project's and the key's rows.
    budget, key_budget = plan.budget, plan.key_budget
    if project:
        budget = combine(budget or _anchor(key_budget), project)
    if keyed:
        key_budget = combine(key_budget or _anchor(budget), keyed)
    return dataclasses.replace(plan, budget=budget, key_budget=key_budget)


def _anchor(other: BudgetSpec | None) -> BudgetSpec | None:
    """No limit over the period of ``other``: where a scope's combined budget starts."""
    return None if other is None else BudgetSpec(None, other.reset)


cache = LimitCache()
"""The process's cache (``llm_toll.budgets.set_refresh_interval`` sets its interval)."""
