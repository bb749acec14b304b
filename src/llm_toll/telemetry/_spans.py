"""The spans of calls: started with the GenAI attributes known before the call, annotated
with usage, cost and budget state at its end, and the span of a refused call.

Starting, marking and ending a span never raise into the app's call: an app's span
processor or exporter that raises is a ``TelemetryWarning`` (once per cause), and a span
that cannot be started is the invalid span, which records nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import BudgetSpec, BudgetState, CallRecord
from llm_toll._warnings import Guard
from llm_toll.exceptions import TelemetryWarning
from llm_toll.telemetry import _names as attr
from llm_toll.telemetry import _semconv as semconv
from llm_toll.telemetry._providers import NO_TRACER, tracer

if TYPE_CHECKING:
    from llm_toll._call.run import Run

_STARTING = Guard("span-start", "start a span", TelemetryWarning)
_MARKING = Guard("span-mark", "mark a span failed", TelemetryWarning)
_ENDING = Guard("span-end", "end a span", TelemetryWarning)


def start_call_span(
    project: str,
    request_model: str | None,
    *,
    provider: str | None = None,
    parent: Span | None = None,
    start_ns: int | None = None,
) -> Span:
    """The CLIENT span of one request, started in the current context (so it has its
    parent) unless ``parent`` is given; ``INVALID_SPAN`` when nothing is configured to
    receive spans."""
    chosen = tracer()
    if chosen is NO_TRACER:  # nothing configured: no span to build
        return trace.INVALID_SPAN
    attributes: dict[str, str] = {attr.OPERATION: attr.DEFAULT_OPERATION, attr.PROJECT: project}
    if request_model:
        attributes[attr.REQUEST_MODEL] = request_model
    if provider:
        attributes[attr.PROVIDER] = provider
    name = f"{attr.DEFAULT_OPERATION} {request_model}" if request_model else attr.DEFAULT_OPERATION
    context = None if parent is None else trace.set_span_in_context(parent)
    with _STARTING:
        return chosen.start_span(
            name, context, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns
        )
    return trace.INVALID_SPAN


def start_run_span(run: Run) -> Span:
    """The INTERNAL span of a run, child of the current span; the run's totals are set on it
    when it ends, under llm_toll's own names."""
    chosen = tracer()
    if chosen is NO_TRACER:
        return trace.INVALID_SPAN
    attributes: dict[str, str | float] = {attr.PROJECT: run.plan.project}
    if run.max_cost_nanos is not None:
        attributes[attr.RUN_MAX_COST] = nanos_to_usd(run.max_cost_nanos)
    if run.budget_key is not None:
        attributes[attr.BUDGET_KEY] = run.budget_key
    with _STARTING:
        return chosen.start_span(
            run.name, kind=SpanKind.INTERNAL, attributes=attributes, start_time=run.started_ns
        )
    return trace.INVALID_SPAN


def mark_error(span: Span, error: BaseException) -> None:
    """Status ERROR and ``error.type``: the exception's type only, never its message."""
    error_type = type(error).__name__
    with _MARKING:
        span.set_status(Status(StatusCode.ERROR, error_type))
        span.set_attribute(attr.ERROR_TYPE, error_type)


def end_span(span: Span, end_ns: int | None = None) -> None:
    """End ``span`` (at ``end_ns``, if given); the span processors run now."""
    if span is trace.INVALID_SPAN:  # no tracing configured: nothing to end
        return
    with _ENDING:
        span.end(end_time=end_ns)


def annotate_call(
    span: Span,
    call: CallRecord,
    *,
    budget: BudgetSpec | None,
    state: BudgetState | None,
    key_budget: BudgetSpec | None = None,
) -> None:
    """Set the usage, cost and budget attributes and events of a finished call on its span."""
    usage = call.usage
    span.update_name(f"{call.operation} {call.model}")
    attributes: dict[str, str | int | float | bool | list[str]] = {
        attr.OPERATION: call.operation,
        attr.RESPONSE_MODEL: call.model,
        attr.INPUT_TOKENS: usage.input_tokens,
        attr.OUTPUT_TOKENS: usage.output_tokens,
        attr.COST_AMOUNT: nanos_to_usd(call.cost_nanos),
        attr.COST_CURRENCY: attr.CURRENCY,
        attr.COST_SOURCE: call.cost_source,
        attr.PRICE_KNOWN: call.price_known,
        attr.USAGE_ESTIMATED: call.estimated,
    }
    if call.price_source:
        attributes[attr.PRICE_SOURCE] = call.price_source
    if call.price_version:
        attributes[attr.PRICE_VERSION] = call.price_version
    if call.unpriced_units:
        attributes[attr.PRICE_PARTIAL] = True
        attributes[attr.PRICE_UNPRICED_UNITS] = list(call.unpriced_units)
    if call.local_cost_nanos is not None:
        attributes[attr.COST_LOCAL] = nanos_to_usd(call.local_cost_nanos)
    if call.provider:
        attributes[attr.PROVIDER] = call.provider
    if call.response_id:
        attributes[attr.RESPONSE_ID] = call.response_id
    if usage.cache_read_input_tokens:
        attributes[attr.CACHE_READ_TOKENS] = usage.cache_read_input_tokens
    latest = semconv.latest()
    if usage.cache_creation_input_tokens:
        written = attr.CACHE_WRITE_TOKENS if latest else attr.CACHE_CREATION_TOKENS
        attributes[written] = usage.cache_creation_input_tokens
    if latest and usage.units:
        for unit, count in usage.units.items():
            modality = attr.MODALITY_UNITS.get(unit)
            if modality is not None:
                attributes[modality[0]] = count
    if usage.reasoning_output_tokens:
        attributes[attr.REASONING_TOKENS] = usage.reasoning_output_tokens
    if call.budget_key:
        attributes[attr.BUDGET_KEY] = call.budget_key
    if budget is not None and state is not None:
        attributes[attr.BUDGET_SPENT] = nanos_to_usd(state.spent_nanos)
        attributes[attr.BUDGET_PERIOD] = attr.period_label(budget.reset)
        if state.limit_nanos is not None:
            attributes[attr.BUDGET_LIMIT] = nanos_to_usd(state.limit_nanos)
            add_budget_events(span, call.project, state, None)
    key_state = None if state is None else state.key_state
    if key_budget is not None and key_state is not None and call.budget_key:
        add_budget_events(span, call.project, key_state, call.budget_key)
    span.set_attributes(attributes)


def add_budget_events(span: Span, project: str, state: BudgetState, key: str | None) -> None:
    """The threshold and exceeded events of one scope's state (the project's or a key's)."""
    if state.limit_nanos is None:
        return
    event = budget_event_attributes(project, state.limit_nanos, state.spent_nanos, key)
    for pct in state.crossed_thresholds:
        span.add_event(attr.EVENT_BUDGET_THRESHOLD, {**event, attr.BUDGET_THRESHOLD: pct / 100})
    if state.exceeded_now:
        span.add_event(attr.EVENT_BUDGET_EXCEEDED, event)


def budget_event_attributes(
    project: str, limit_nanos: int, spent_nanos: int, key: str | None = None
) -> dict[str, str | float]:
    attributes: dict[str, str | float] = {
        attr.PROJECT: project,
        attr.BUDGET_LIMIT: nanos_to_usd(limit_nanos),
        attr.BUDGET_SPENT: nanos_to_usd(spent_nanos),
    }
    if key:
        attributes[attr.BUDGET_KEY] = key
    return attributes
