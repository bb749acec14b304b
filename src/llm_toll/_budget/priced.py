"""From the usage a response reported to the priced record of its call: written once for
the decorated calls and for recorded batch results."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from llm_toll._budget.money import MAX_CALL_COST_NANOS
from llm_toll._budget.records import CallRecord
from llm_toll._budget.response_ids import provider_response_id
from llm_toll.pricing import default_registry
from llm_toll.telemetry import _names as attr
from llm_toll.usage._base import ExtractedUsage


class Priced(NamedTuple):
    call: CallRecord
    clamped: bool
    """The price was above what one call's record may hold: recorded at that amount and
    flagged unknown; the caller says so in its own words."""


def priced_call(
    found: ExtractedUsage,
    *,
    project: str,
    model: str,
    started_at: datetime,
    duration_s: float = 0.0,
    provider: str | None = None,
    budget_key: str | None = None,
    context: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> Priced:
    """Price ``found`` (in ``context``, default the one the response reported) at the time
    the call was requested; a cost the response reports itself is the recorded one, with
    llm_toll's own price beside it when it has one."""
    provider = provider or found.provider
    context = found.price_context if context is None else context
    cost, known, source, version, unpriced = default_registry.price_parts(
        model, found.usage, provider, at=started_at, context=context
    )
    local_cost: int | None = None
    provider_cost = found.provider_cost_nanos
    if provider_cost is not None:  # the bill's own figure wins
        local_cost = cost if known else None
        cost, known = provider_cost, True
    clamped = cost > MAX_CALL_COST_NANOS
    if clamped:
        cost, known = MAX_CALL_COST_NANOS, False
    call = CallRecord(
        project=project,
        model=model,
        usage=found.usage,
        cost_nanos=cost,
        started_at=started_at,
        duration_s=duration_s,
        provider=provider,
        operation=found.operation or attr.DEFAULT_OPERATION,
        price_known=known,
        estimated=found.estimated,
        response_id=provider_response_id(found.response_id),
        budget_key=budget_key,
        price_source=source,
        price_version=version,
        unpriced_units=unpriced,
        price_context=context,
        cost_source="local" if provider_cost is None else "provider",
        local_cost_nanos=local_cost,
        run_id=run_id,
    )
    return Priced(call, clamped)
