"""What a refused call leaves behind: its span (with the budget event), its count in the
metrics, and for a budget refusal the alert; in the caller's thread, or the end of it in
the worker for async callers (``steps.Refuse``)."""

from __future__ import annotations

from opentelemetry.trace import Span

from llm_toll import _runtime
from llm_toll._budget.money import usd_to_nanos
from llm_toll._call.plan import Plan
from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError
from llm_toll.telemetry import _names as attr
from llm_toll.telemetry._spans import budget_event_attributes, mark_error, start_call_span

Refusal = BudgetExceededError | LocalRateLimitError


def refusal_span(plan: Plan, error: Refusal, key: str | None, model: str | None = None) -> Span:
    """The refused call's span, started in the caller's context (so it has its parent).

    ``key`` is the call's budget key, if any, whichever budget refused it; ``model`` the
    model it asked for.
    """
    span = start_call_span(plan.project, model or plan.requested_model(None))
    mark_error(span, error)
    if key is not None:
        span.set_attribute(attr.BUDGET_KEY, key)
    if isinstance(error, BudgetExceededError) and error.scope not in ("store", "unpriced"):
        limit = usd_to_nanos(error.max_budget or 0)
        spent = usd_to_nanos(error.current_cost or 0)
        event = budget_event_attributes(plan.project, limit, spent, error.budget_key)
        if error.scope == "run":
            event[attr.BUDGET_SCOPE] = "run"
        span.add_event(attr.EVENT_BUDGET_EXCEEDED, event)
    return span


def end_refusal(plan: Plan, span: Span, error: Refusal) -> None:
    """Count the refusal and end its span (async callers do this in the worker)."""
    from llm_toll.telemetry import (
        _metrics as metrics,  # refusals only: not imported by every program
    )

    metrics.record_rejection(
        plan.project, "budget" if isinstance(error, BudgetExceededError) else "ratelimit"
    )
    span.end()
    if isinstance(error, BudgetExceededError):
        from llm_toll.alerts._fire import after_refusal  # refusals only

        after_refusal(plan, error, _runtime.get_store())
