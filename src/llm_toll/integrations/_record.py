"""What the framework callbacks share: a Plan per callback and one way to record a call."""

from __future__ import annotations

from datetime import datetime, timezone

from llm_toll.calls import Call, Plan, check_budget
from llm_toll.money import usd_to_nanos
from llm_toll.records import BudgetSpec
from llm_toll.store import BaseStore
from llm_toll.usage import ExtractedUsage


def callback_plan(name: str, project: str, max_budget: float | None) -> Plan:
    budget = None if max_budget is None else BudgetSpec(usd_to_nanos(max_budget))
    return Plan(name=name, project=project, model=None, budget=budget, limiter=None,
                extract_usage=None)  # fmt: skip


def refuse_if_spent(plan: Plan, store: BaseStore | None) -> None:
    check_budget(plan, store)


def record(
    plan: Plan,
    found: ExtractedUsage,
    store: BaseStore | None,
    started_at: datetime | None = None,
) -> None:
    """Record a call the framework already made, through the same processor as decorators."""
    start = started_at.astimezone(timezone.utc) if started_at else datetime.now(timezone.utc)
    Call(plan, (), {}, start, None).finish_with(found, store)
