"""Refused calls, counted per (project, key, model, reason, minute) in memory and added to
the store's counts by llm_toll's worker thread: a refusal costs the caller a dict update,
and a retry loop refused a thousand times adds to one row in a few writes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from llm_toll._budget.records import RefusalCount
from llm_toll._call.batch import Batch
from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError

if TYPE_CHECKING:
    from llm_toll.store import BaseStore

_Key = tuple[str, str | None, str | None, str, datetime]


def _write(store: BaseStore, counts: list[RefusalCount]) -> None:
    store.record_refusals(counts)


def _merge(known: RefusalCount, new: RefusalCount) -> RefusalCount:
    latest = new if new.last_at >= known.last_at else known
    return RefusalCount(
        known.project,
        known.budget_key,
        known.model,
        known.reason,
        known.minute,
        known.count + new.count,
        latest.last_at,
        latest.message,
    )


_counts: Batch[_Key, RefusalCount] = Batch(_write, _merge, "count refused calls")


def refused(
    project: str,
    key: str | None,
    model: str | None,
    error: BudgetExceededError | LocalRateLimitError,
) -> None:
    """Count one refused call; its count reaches the store off the call path."""
    now = datetime.now(timezone.utc)
    reason = _reason(error)
    minute = now.replace(second=0, microsecond=0)
    one = RefusalCount(project, key, model, reason, minute, 1, now, str(error))
    _counts.add((project, key, model, reason, minute), one)


def _reason(error: BudgetExceededError | LocalRateLimitError) -> str:
    """The budget's scope or the rate limit's kind. Read by attribute, not by class: a
    program that reloaded ``llm_toll.exceptions`` raises instances of another class object."""
    scope = getattr(error, "scope", None)
    if isinstance(scope, str):
        return scope
    kind = getattr(error, "limit_type", None)
    return kind if isinstance(kind, str) else "rate"
