"""Refused calls, counted per (project, key, model, reason, minute) in memory and added to
the store's counts by llm_toll's worker thread: a refusal costs the caller a dict update,
and a retry loop refused a thousand times adds to one row in a few writes."""

from __future__ import annotations

from datetime import datetime, timezone

from llm_toll import _runtime
from llm_toll._budget.records import RefusalCount
from llm_toll._call.batch import Batch
from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError

_Key = tuple[str, str | None, str | None, str, datetime]


def _write(counts: list[RefusalCount]) -> None:
    _runtime.get_store().record_refusals(counts)


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
    reason = error.scope if isinstance(error, BudgetExceededError) else error.limit_type or "rate"
    minute = now.replace(second=0, microsecond=0)
    one = RefusalCount(project, key, model, reason, minute, 1, now, str(error))
    _counts.add((project, key, model, reason, minute), one)
