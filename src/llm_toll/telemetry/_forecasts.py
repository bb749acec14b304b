"""The ``llm_toll.budget.time_remaining`` gauge: each budget's forecast, made when metrics
are collected (never on a call's path).

A call only notes its budget here (a dict update). Each collection then reads, per budget
noted, the running total and the ledger's last hour from the store the call was recorded
in: two indexed reads, whose cost is bounded by the window, not by the history. At most
``MAX_WATCHED`` budgets are forecast, those of the most recent calls.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from opentelemetry.metrics import CallbackOptions, Observation

from llm_toll._budget.forecast import forecast_budget
from llm_toll._budget.periods import Reset
from llm_toll._warnings import warn_once
from llm_toll.exceptions import TelemetryWarning
from llm_toll.store._time import utc_now
from llm_toll.telemetry import _names as attr

if TYPE_CHECKING:
    from llm_toll.store import BaseStore

MAX_WATCHED: Final = 1_000
"""Budgets forecast at each collection (budget keys in metrics can be many)."""

Scope = tuple[str, str, str | None]
"""(project, period label, budget key or None)."""


class _Watched:
    __slots__ = ("limit_nanos", "reset", "store")

    def __init__(self, store: BaseStore, reset: Reset | None, limit_nanos: int) -> None:
        self.store = weakref.ref(store)  # a closed-and-dropped store is forgotten
        self.reset = reset
        self.limit_nanos = limit_nanos


_lock = threading.Lock()
_watched: OrderedDict[Scope, _Watched] = OrderedDict()


def watch(
    store: BaseStore,
    project: str,
    *,
    reset: Reset | None,
    limit_nanos: int,
    key: str | None = None,
) -> None:
    """Forecast this budget at the next collections (the latest call's store and limit)."""
    scope = (project, attr.period_label(reset), key or None)
    entry = _Watched(store, reset, limit_nanos)
    with _lock:
        _watched[scope] = entry
        _watched.move_to_end(scope)
        if len(_watched) > MAX_WATCHED:
            _watched.popitem(last=False)


def unwatch(scope: Scope) -> None:
    """Forecast this budget no more (its limit stopped binding)."""
    with _lock:
        _watched.pop(scope, None)


def forget_all() -> None:
    with _lock:
        _watched.clear()


def observe_time_remaining(options: CallbackOptions) -> Iterable[Observation]:
    """Seconds left of each budget that runs out, at its burn rate, before its period ends
    (0 when spent); none for a budget with no spend in the window or that outlasts its
    period."""
    with _lock:
        watched = list(_watched.items())
    now = utc_now()
    for (project, period, key), entry in watched:
        store = entry.store()
        if store is None:
            continue
        try:
            found = forecast_budget(
                store,
                project,
                limit_nanos=entry.limit_nanos,
                reset=entry.reset,
                now=now,
                budget_key=key,
            )
        except NotImplementedError:  # a store written for llm-toll 0.13
            continue
        except Exception as exc:  # a store failure; never an error of the collection
            warn_once("forecast", f"llm_toll could not forecast a budget: {exc}",
                      TelemetryWarning)  # fmt: skip
            continue
        if found.runs_out and found.seconds_left is not None:
            labels = {attr.PROJECT: project, attr.BUDGET_PERIOD: period}
            if key is not None:
                labels[attr.BUDGET_KEY] = key
            yield Observation(found.seconds_left, labels)
