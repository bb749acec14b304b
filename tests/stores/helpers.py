"""What the store tests share: a call to record, the read API's keys, a controlled clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from llm_toll._budget.records import BudgetSpec, CallRecord, RefusalCount, RunRecord, ns_of
from llm_toll.store import BaseStore
from llm_toll.usage._base import Usage

MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)

LOG_KEYS = [
    *("id", "project", "model", "input_tokens", "output_tokens", "cost", "created_at"),
    *("provider", "operation", "cache_read_input_tokens", "cache_creation_input_tokens"),
    *("reasoning_output_tokens", "price_known", "estimated", "budget_key", "response_id"),
    *("duration_s", "usage_units", "price_context", "price_source", "price_version"),
    *("unpriced_units", "cost_source", "local_cost", "run_id", "cost_nanos"),
    "local_cost_nanos",
]
TOTALS_KEYS = ["total_cost", "total_input_tokens", "total_output_tokens", "call_count"]
PROJECT_SUMMARY_KEYS = ["project", *TOTALS_KEYS, "last_used", "total_cost_nanos"]
MODEL_SUMMARY_KEYS = ["model", *TOTALS_KEYS, "total_cost_nanos"]
PROJECT_FOR_MODEL_KEYS = ["project", *TOTALS_KEYS, "total_cost_nanos"]
DAILY_KEYS = [
    *("date", "daily_cost", "daily_input_tokens", "daily_output_tokens", "call_count"),
    "daily_cost_nanos",
]
BUDGET_KEYS = [
    *("project", "period", "total_cost", "limit", "thresholds_fired", "last_reset_at"),
    *("updated_at", "total_cost_nanos", "limit_nanos", "utilization", "budget_key"),
]

DAILY = BudgetSpec(1_000, "daily")
TTL_S = 60.0
T0 = 1_800_000_000.0  # seconds since the epoch: the tests' controlled clock


def make_call(
    cost_nanos: int = 1_000,
    *,
    project: str = "proj",
    model: str = "gpt-4o",
    at: datetime = MONDAY,
    usage: Usage | None = None,
    **fields: Any,
) -> CallRecord:
    return CallRecord(
        project=project,
        model=model,
        usage=usage or Usage(input_tokens=10, output_tokens=5),
        cost_nanos=cost_nanos,
        started_at=at,
        **fields,
    )


def all_logs(store: BaseStore, project: str = "proj") -> list[dict[str, Any]]:
    return store.get_usage_logs_filtered(project=project, limit=0)


def keyed(cost_nanos: int, key: str | None, **fields: Any) -> CallRecord:
    return make_call(cost_nanos, budget_key=key, **fields)


def a_run(
    run_id: str, *, project: str = "proj", at: datetime = MONDAY, minutes: int = 0, **fields: Any
) -> RunRecord:
    """A run of ``project`` that started ``minutes`` after ``at`` and lasted 1.5 s."""
    started = at + timedelta(minutes=minutes)
    values: dict[str, Any] = {
        "id": run_id,
        "parent_id": None,
        "project": project,
        "name": "agent",
        "budget_key": None,
        "status": "ok",
        "requests": 2,
        "cost_nanos": 5_000_000_001,
        "max_cost_nanos": None,
        "started_ns": ns_of(started),
        "ended_ns": ns_of(started + timedelta(seconds=1.5)),
    }
    values.update(fields)
    return RunRecord(**values)


def one_refusal(
    second: int, message: str = "refused", *, at: datetime = MONDAY, **fields: Any
) -> RefusalCount:
    """One refusal in the minute that starts at ``at``, ``second`` seconds into it."""
    values: dict[str, Any] = {
        "project": "proj",
        "budget_key": None,
        "model": "gpt-4o",
        "reason": "project",
        "minute": at,
        "count": 1,
        "last_at": at + timedelta(seconds=second),
        "message": message,
    }
    values.update(fields)
    return RefusalCount(**values)
