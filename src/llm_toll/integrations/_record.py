"""What the framework callbacks share: a budget plan and one way to record a call."""

from __future__ import annotations

from datetime import datetime, timezone

from llm_toll.calls import Call, Plan, check_budget
from llm_toll.money import usd_to_nanos
from llm_toll.records import BudgetSpec
from llm_toll.reporter import CostReporter
from llm_toll.runtime import set_reporter
from llm_toll.store import BaseStore
from llm_toll.usage import ExtractedUsage


class BudgetedCallback:
    """A framework callback with a project, an optional budget and an optional store."""

    def __init__(
        self,
        *,
        project: str = "default",
        max_budget: float | None = None,
        store: BaseStore | None = None,
        reporter: CostReporter | None = None,
    ) -> None:
        budget = None if max_budget is None else BudgetSpec(usd_to_nanos(max_budget))
        self._plan = Plan(name=type(self).__name__, project=project, model=None,
                          budget=budget, limiter=None, extract_usage=None)  # fmt: skip
        self._store = store
        if reporter is not None:
            set_reporter(reporter)

    def _refuse_if_spent(self) -> None:
        """Raise BudgetExceededError (and record the refusal) when the budget is spent."""
        check_budget(self._plan, self._store)

    def _record(self, found: ExtractedUsage, started_at: datetime | None = None) -> None:
        """Record a call the framework already made, through the decorators' processor."""
        start = started_at.astimezone(timezone.utc) if started_at else datetime.now(timezone.utc)
        Call(self._plan, (), {}, start, None).finish_with(found, self._store)
