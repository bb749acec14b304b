"""The life of one decorated call: gates, span, usage, price, settlement.

``decorator.py`` decides the shape of a call (sync, async, generator, stream) and drives a
``Call`` through it; everything a shape does not decide lives here, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from llm_toll import attributes as attr
from llm_toll import metrics, runtime, telemetry
from llm_toll.budget import period_key
from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError, UsageWarning
from llm_toll.money import nanos_to_usd
from llm_toll.pricing import default_registry
from llm_toll.processor import budget_event_attributes
from llm_toll.rate_limiter import RateLease, RateLimiter
from llm_toll.records import BudgetSpec, CallRecord
from llm_toll.store import BaseStore, StoreError
from llm_toll.usage import (
    ExtractedUsage,
    StreamAccumulator,
    UsageError,
    estimate_usage,
    extract_usage,
    request_text,
    response_text,
)
from llm_toll.usage._fields import get
from llm_toll.usage.custom import coerce_custom_usage
from llm_toll.warn import warn_once

T = TypeVar("T")
UNKNOWN_MODEL = "unknown"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a decorator was configured with; shared by all calls of one function."""

    name: str
    project: str
    model: str | None
    budget: BudgetSpec | None
    limiter: RateLimiter | None
    extract_usage: Callable[[Any], Any] | None

    @property
    def limit_nanos(self) -> int | None:
        return None if self.budget is None else self.budget.limit_nanos


def reported_model(response: object) -> str | None:
    """The model a response names, to price an estimate by (OpenAI, Anthropic, Gemini)."""
    for name in ("model", "model_version", "modelVersion"):
        value = get(response, name)
        if isinstance(value, str) and value:
            return value
    return None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in llm_toll's worker thread; a cancelled caller does not cancel it."""
    return await runtime.worker.run(fn, *args)


# -- gates ------------------------------------------------------------------------------


def read_spent(plan: Plan, now: datetime) -> int | None:
    """The budget's current spend from the store, or None when the store cannot answer."""
    assert plan.budget is not None
    try:
        spent = runtime.get_store().get_spent(plan.project, plan.budget.reset, now)
    except StoreError as exc:
        warn_once(
            f"store-read:{plan.project}",
            f"llm_toll could not read the budget of '{plan.project}' ({exc}); the call is "
            "allowed without a budget check.",
            UsageWarning,
        )
        return None
    runtime.processor.view.remember(plan.project, period_key(plan.budget.reset, now), spent)
    return spent


def budget_refusal(plan: Plan, spent: int | None) -> BudgetExceededError | None:
    limit = plan.limit_nanos
    if limit is None or spent is None or spent < limit:
        return None
    return BudgetExceededError(
        project=plan.project, current_cost=nanos_to_usd(spent), max_budget=nanos_to_usd(limit)
    )


def record_refusal(plan: Plan, error: BudgetExceededError | LocalRateLimitError) -> None:
    """A refused call still shows up: a span with the error and a rejection count."""
    span = start_span(plan, None)
    error_type = type(error).__name__
    span.set_status(Status(StatusCode.ERROR, error_type))
    span.set_attribute(attr.ERROR_TYPE, error_type)
    if isinstance(error, BudgetExceededError):
        assert plan.budget is not None and plan.budget.limit_nanos is not None
        spent = round((error.current_cost or 0) * 1e9)
        span.add_event(
            attr.EVENT_BUDGET_EXCEEDED,
            budget_event_attributes(plan.project, plan.budget.limit_nanos, spent),
        )
        metrics.record_rejection(plan.project, "budget")
    else:
        metrics.record_rejection(plan.project, "ratelimit")
    span.end()


def check_budget(plan: Plan, store: BaseStore | None = None) -> None:
    """Refuse (span, metric, exception) when the plan's budget is spent; sync callers only."""
    if plan.limit_nanos is None:
        return
    now = utcnow()
    spent = read_spent(plan, now) if store is None else _read_spent_from(store, plan, now)
    refusal = budget_refusal(plan, spent)
    if refusal is not None:
        record_refusal(plan, refusal)
        raise refusal


def _read_spent_from(store: BaseStore, plan: Plan, now: datetime) -> int | None:
    assert plan.budget is not None
    try:
        return store.get_spent(plan.project, plan.budget.reset, now)
    except StoreError:
        return None


def acquire_rate(plan: Plan) -> RateLease | None:
    if plan.limiter is None:
        return None
    return plan.limiter.acquire()


def start_span(plan: Plan, kwargs: dict[str, Any] | None) -> Span:
    model = plan.model
    if model is None and kwargs is not None and isinstance(kwargs.get("model"), str):
        model = kwargs["model"]
    attributes: dict[str, str] = {
        attr.OPERATION: attr.DEFAULT_OPERATION,
        attr.PROJECT: plan.project,
    }
    if model:
        attributes[attr.REQUEST_MODEL] = model
    name = f"{attr.DEFAULT_OPERATION} {model}" if model else attr.DEFAULT_OPERATION
    return telemetry.tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def begin(plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """Gates and span of a sync call."""
    now = utcnow()
    if plan.limit_nanos is not None:
        refusal = budget_refusal(plan, recent_spent(plan, now) or read_spent(plan, now))
        if refusal is not None:
            record_refusal(plan, refusal)
            raise refusal
    try:
        lease = acquire_rate(plan)
    except LocalRateLimitError as refusal:
        record_refusal(plan, refusal)
        raise
    return Call(plan, args, kwargs, now, lease)


async def begin_async(plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """Gates and span of an async call: store reads and refusal spans stay off the loop."""
    now = utcnow()
    if plan.limit_nanos is not None:
        spent = recent_spent(plan, now)
        if spent is None:
            spent = await off_loop(read_spent, plan, now)
        refusal = budget_refusal(plan, spent)
        if refusal is not None:
            await off_loop(record_refusal, plan, refusal)
            raise refusal
    try:
        lease = acquire_rate(plan)
    except LocalRateLimitError as refusal:
        await off_loop(record_refusal, plan, refusal)
        raise
    return Call(plan, args, kwargs, now, lease)


def recent_spent(plan: Plan, now: datetime) -> int | None:
    """The budget's total as this process last read or wrote it, if that was recent.

    Every store write returns the true total (other processes' spend included), so while a
    process is making calls its view is as fresh as its last call; see BudgetView.
    """
    assert plan.budget is not None
    return runtime.processor.view.recent(plan.project, period_key(plan.budget.reset, now))


# -- one call -----------------------------------------------------------------------------


class Call:
    """One started call: its span is open until ``finish``/``finish_stream``/``fail``."""

    __slots__ = ("args", "kwargs", "lease", "plan", "span", "started_at", "t0")

    def __init__(
        self,
        plan: Plan,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started_at: datetime,
        lease: RateLease | None,
    ) -> None:
        self.plan = plan
        self.args = args
        self.kwargs = kwargs
        self.started_at = started_at
        self.lease = lease
        self.span = start_span(plan, kwargs)
        self.t0 = time.perf_counter()

    def attach(self) -> object:
        """Make the span current, so spans started by the wrapped code nest under it."""
        return otel_context.attach(trace.set_span_in_context(self.span))

    @staticmethod
    def detach(token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    # -- endings --------------------------------------------------------------------------

    def finish(self, response: Any) -> None:
        """A plain (non-stream) result came back: record it and end the span."""
        self._settle(self._usage_of(response))

    def finish_with(self, found: ExtractedUsage, store: BaseStore | None = None) -> None:
        """Usage already known (integrations' callbacks): record it and end the span."""
        self._settle(found, store)

    def finish_stream(
        self, stream: StreamAccumulator, error: BaseException | None, request_hint: str = ""
    ) -> None:
        """A stream ended (exhausted, closed, broken or collected): record what is known.

        ``request_hint`` is the prompt text when the wrapped function's arguments do not
        show it (read from the SDK stream's own HTTP request).
        """
        try:
            found = stream.result()
        except UsageError as exc:
            self._warn_usage("stream-usage", f"its stream reported unusable usage ({exc})")
            found = None
        if found is None:
            if stream.chunks or error is None:
                self._warn_usage(
                    "stream-no-usage",
                    "its stream did not report usage (for OpenAI pass "
                    "stream_options={'include_usage': True}); usage is estimated from the text",
                )
            found = self._estimate(stream.text, stream.model, request_hint)
        if error is not None:
            self._mark_error(error)
        self._settle(found)

    def fail(self, error: BaseException) -> None:
        """The wrapped function raised: nothing was priced; record the failure and end."""
        if self.lease is not None:
            self.lease.release()
        self._mark_error(error)
        model = self.plan.model or UNKNOWN_MODEL
        try:
            metrics.record_failure(
                attr.DEFAULT_OPERATION, model, time.perf_counter() - self.t0, type(error).__name__
            )
        finally:
            self.span.end()

    # -- internals -------------------------------------------------------------------------

    def _mark_error(self, error: BaseException) -> None:
        error_type = type(error).__name__
        self.span.set_status(Status(StatusCode.ERROR, error_type))
        self.span.set_attribute(attr.ERROR_TYPE, error_type)

    def _settle(self, found: ExtractedUsage | None, store: BaseStore | None = None) -> None:
        try:
            if found is None:
                if self.lease is not None:
                    self.lease.settle(0)
                return
            call = self._price(found)
            if self.lease is not None:
                self.lease.settle(call.usage.total_tokens)
            runtime.processor.settle(self.span, call, self.plan.budget, store)
        finally:
            self.span.end()

    def _price(self, found: ExtractedUsage) -> CallRecord:
        model = self.plan.model or found.model or self._request_model() or UNKNOWN_MODEL
        price = default_registry.price(
            model, found.usage, provider=found.provider, at=self.started_at
        )
        return CallRecord(
            project=self.plan.project,
            model=model,
            usage=found.usage,
            cost_nanos=price.cost_nanos,
            started_at=self.started_at,
            duration_s=time.perf_counter() - self.t0,
            provider=found.provider,
            operation=found.operation or attr.DEFAULT_OPERATION,
            price_known=price.known,
            estimated=found.estimated,
            response_id=found.response_id,
        )

    def _request_model(self) -> str | None:
        model = self.kwargs.get("model")
        return model if isinstance(model, str) and model else None

    def _usage_of(self, response: Any) -> ExtractedUsage | None:
        """The usage of a plain result: the user's extractor, then auto-detection, then an
        estimate from the text; None (with a warning) when there is nothing to go on."""
        if self.plan.extract_usage is not None:
            try:
                custom = coerce_custom_usage(self.plan.extract_usage(response))
            except Exception as exc:
                self._warn_usage("extract_usage", f"its extract_usage failed ({exc!r})")
            else:
                if custom is not None:
                    return custom
        try:
            found = extract_usage(response)
        except UsageError as exc:
            self._warn_usage("bad-usage", f"its response carried unusable usage ({exc})")
            return self._estimate(response_text(response), reported_model(response))
        if found is not None:
            return found
        if isinstance(response, str):
            self._warn_usage("text-result", "it returned text without usage; usage is estimated")
            return self._estimate(response, None)
        self._warn_usage(
            "no-usage",
            f"no token usage was found in its {type(response).__name__} result, so the call "
            "is not recorded; pass extract_usage= to tell llm_toll where usage is",
        )
        return None

    def _estimate(
        self, completion: str, model: str | None, request_hint: str = ""
    ) -> ExtractedUsage:
        prompt = request_text(self.args, self.kwargs) or request_hint
        return estimate_usage(prompt, completion, model)

    def _warn_usage(self, cause: str, problem: str) -> None:
        warn_once(
            f"{cause}:{self.plan.name}",
            f"llm_toll: a call of {self.plan.name}() in project '{self.plan.project}': {problem}.",
            UsageWarning,
        )
