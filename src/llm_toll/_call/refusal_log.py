"""Refused calls, counted per (project, key, model, reason, minute) in memory and added to
the store's counts by llm_toll's worker thread: a refusal costs the caller a dict update,
and a retry loop refused a thousand times adds to one row in a few writes."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone

from llm_toll import _runtime
from llm_toll._budget.records import RefusalCount
from llm_toll._warnings import warn_once
from llm_toll._worker import worker
from llm_toll.exceptions import AccountingWarning, BudgetExceededError, LocalRateLimitError
from llm_toll.store import StoreError

_Key = tuple[str, str | None, str | None, str, datetime]
MAX_KEPT = 10_000
"""Counts kept in memory while the store refuses them, before new ones are dropped."""

_lock = threading.Lock()
_pending: dict[_Key, RefusalCount] = {}
_flush_queued = False


def refused(
    project: str,
    key: str | None,
    model: str | None,
    error: BudgetExceededError | LocalRateLimitError,
) -> None:
    """Count one refused call; its count reaches the store off the call path."""
    global _flush_queued
    now = datetime.now(timezone.utc)
    reason = error.scope if isinstance(error, BudgetExceededError) else error.limit_type or "rate"
    one = RefusalCount(
        project, key, model, reason, now.replace(second=0, microsecond=0), 1, now, str(error)
    )
    with _lock:
        _add(one)
        if _flush_queued:
            return  # the queued flush takes this one too
        _flush_queued = True
    worker.submit(_flush)


def _add(counted: RefusalCount) -> None:
    key = (counted.project, counted.budget_key, counted.model, counted.reason, counted.minute)
    known = _pending.get(key)
    if known is None:
        if len(_pending) < MAX_KEPT:
            _pending[key] = counted
        return
    newer = counted if counted.last_at >= known.last_at else known
    _pending[key] = RefusalCount(*key, known.count + counted.count, newer.last_at, newer.message)


def _flush() -> None:
    global _flush_queued
    with _lock:
        counts = list(_pending.values())
        _pending.clear()
        _flush_queued = False
    try:
        _runtime.get_store().record_refusals(counts)
    except StoreError as exc:
        # Kept, and added to the store with the next refusal's flush.
        with _lock:
            for counted in counts:
                _add(counted)
        warn_once(
            "refusal-counts",
            f"llm_toll could not count refused calls in the store ({exc}); the counts are "
            "kept in memory and written with the next refusal.",
            AccountingWarning,
        )


def _forget_after_fork() -> None:
    global _lock, _flush_queued
    _lock = threading.Lock()
    _pending.clear()
    _flush_queued = False


os.register_at_fork(after_in_child=_forget_after_fork)
