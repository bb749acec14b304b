"""The life of one decorated call: gates, span, usage, price, settlement.

``decorator.py`` decides the shape of a call (sync, async, generator, stream) and drives a
``Call`` through it; everything a shape does not decide lives here, once.
"""

from __future__ import annotations

import asyncio
import time
import weakref
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
from llm_toll.exceptions import (
    AccountingWarning,
    BudgetExceededError,
    LocalRateLimitError,
    UsageWarning,
)
from llm_toll.money import nanos_to_usd
from llm_toll.pricing import default_registry
from llm_toll.pricing_genai import snapshot_loaded
from llm_toll.processor import budget_event_attributes
from llm_toll.rate_limiter import RateLease, RateLimiter
from llm_toll.records import BudgetSpec, CallRecord, Reservation
from llm_toll.store import BaseStore, StoreError
from llm_toll.store.common import fits_limit, usd_to_nanos_checked
from llm_toll.usage import (
    ExtractedUsage,
    StreamAccumulator,
    Usage,
    UsageError,
    estimate_tokens,
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
# Async settlements queued in the worker beyond which callers wait for their own.
MAX_BACKLOG = 256
# How long a strict call's reservation holds when its process dies before settling it; a
# later reservation of the same budget gives it back after that.
RESERVATION_TTL_S = 900.0
# Request arguments that cap a call's output tokens (OpenAI, Anthropic, Gemini), and the
# nested Gemini configurations that may hold them.
OUTPUT_LIMIT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens")
CONFIG_KEYS = ("config", "generation_config", "generationConfig")
# The shortest pause of a ``wait=True`` call between two tries, so a ``retry_after`` of 0
# (the room frees up this instant) cannot spin.
MIN_RATE_WAIT_S = 0.001
# How ``wait=True`` calls pause before trying the rate limits again. Module attributes so
# tests replace them (with sleepers that advance a fake clock) instead of really waiting.
_sleep: Callable[[float], None] = time.sleep
_async_sleep: Callable[[float], Any] = asyncio.sleep
# The clock of ``shared_limits=True`` windows: wall time, the one clock processes and hosts
# share (keep hosts' clocks in sync, NTP). Replaced by tests, as ``_sleep`` is.
_wall_clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class Plan:
    """What a decorator was configured with; shared by all calls of one function."""

    name: str
    project: str
    model: str | None
    budget: BudgetSpec | None
    limiter: RateLimiter | None
    extract_usage: Callable[[Any], Any] | None
    budget_key: Callable[..., Any] | None = None
    """Computes a call's budget key (a tenant) from the call's arguments."""
    key_budget: BudgetSpec | None = None
    """Each budget key's own budget, on top of the project's."""
    key_in_metrics: bool = False
    strict: bool = False
    """Reserve each call's worst-case cost before it runs (see ``strict_gate``)."""
    estimate: Callable[..., Any] | None = None
    """``callable(*args, **kwargs)`` returning a call's worst-case cost in USD."""
    wait: bool = False
    """Wait out a rate limit (``retry_after``, then try again) instead of raising."""
    shared_limits: bool = False
    """Check the rate limits in the store, shared by every process that uses it."""

    @property
    def rate_scope(self) -> str:
        """The store's name of this function's shared rate limits."""
        return f"{self.project}:{self.name}"

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


Scope = tuple[BudgetSpec, str | None]
"""A budget to check before a call: the project's (key None) or one budget key's."""


def budget_key_of(plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The call's budget key from the plan's ``budget_key`` function; None when there is no
    function, it returns None, or it fails (then warned once: the call goes on unkeyed)."""
    key_fn = plan.budget_key
    if key_fn is None:
        return None
    try:
        key = key_fn(*args, **kwargs)
    except Exception as exc:
        warn_once(
            f"budget-key-raised:{plan.name}",
            f"llm_toll: the budget_key function of {plan.name}() in project '{plan.project}' "
            f"raised {exc!r}; such calls are recorded without a budget key.",
            UsageWarning,
        )
        return None
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        warn_once(
            f"budget-key-type:{plan.name}",
            f"llm_toll: the budget_key function of {plan.name}() in project '{plan.project}' "
            f"returned {key!r}, not a non-empty str; such calls are recorded without a budget "
            "key.",
            UsageWarning,
        )
        return None
    return key


def budget_scopes(plan: Plan, key: str | None) -> list[Scope]:
    """The budgets with a limit that a call of ``plan`` with budget key ``key`` must pass."""
    scopes: list[Scope] = []
    if plan.budget is not None and plan.budget.limit_nanos is not None:
        scopes.append((plan.budget, None))
    key_budget = plan.key_budget
    if key is not None and key_budget is not None and key_budget.limit_nanos is not None:
        scopes.append((key_budget, key))
    return scopes


def _get_spent(
    store: BaseStore, plan: Plan, spec: BudgetSpec, key: str | None, now: datetime
) -> int:
    if key is None:  # stores written for llm_toll before budget keys take three arguments
        return store.get_spent(plan.project, spec.reset, now)
    return store.get_spent(plan.project, spec.reset, now, budget_key=key)


def read_spent(
    plan: Plan, now: datetime, spec: BudgetSpec | None = None, key: str | None = None
) -> int | None:
    """The spend of a budget (the plan's, or ``spec`` of budget key ``key``) from the store,
    plus async calls' cost not yet written; None when the store cannot answer."""
    spec = spec or plan.budget
    assert spec is not None
    try:
        spent = _get_spent(runtime.get_store(), plan, spec, key, now)
    except StoreError as exc:
        warn_once(
            f"store-read:{plan.project}",
            f"llm_toll could not read the budget of '{plan.project}' ({exc}); the call is "
            "allowed without a budget check.",
            AccountingWarning,
        )
        return None
    period = period_key(spec.reset, now)
    view = runtime.processor.view
    view.remember(plan.project, period, spent, key or "")
    return spent + view.held(plan.project, period, key or "")


def budget_refusal(
    plan: Plan, spent: int | None, spec: BudgetSpec | None = None, key: str | None = None
) -> BudgetExceededError | None:
    spec = spec or plan.budget
    limit = None if spec is None else spec.limit_nanos
    if limit is None or spent is None or spent < limit:
        return None
    return BudgetExceededError(
        project=plan.project,
        current_cost=nanos_to_usd(spent),
        max_budget=nanos_to_usd(limit),
        budget_key=key,
    )


def record_refusal(
    plan: Plan, error: BudgetExceededError | LocalRateLimitError, key: str | None = None
) -> None:
    """A refused call still shows up: a span with the error and a rejection count."""
    end_refusal(plan, refusal_span(plan, error, key), error)


def refusal_span(
    plan: Plan, error: BudgetExceededError | LocalRateLimitError, key: str | None = None
) -> Span:
    """The refused call's span, started in the caller's context (so it has its parent).

    ``key`` is the call's budget key, if any, whichever budget refused it.
    """
    span = start_span(plan, None)
    error_type = type(error).__name__
    span.set_status(Status(StatusCode.ERROR, error_type))
    span.set_attribute(attr.ERROR_TYPE, error_type)
    if key is not None:
        span.set_attribute(attr.BUDGET_KEY, key)
    if isinstance(error, BudgetExceededError):
        spec = plan.key_budget if error.budget_key is not None else plan.budget
        assert spec is not None and spec.limit_nanos is not None
        spent = round((error.current_cost or 0) * 1e9)
        span.add_event(
            attr.EVENT_BUDGET_EXCEEDED,
            budget_event_attributes(plan.project, spec.limit_nanos, spent, error.budget_key),
        )
    return span


def end_refusal(plan: Plan, span: Span, error: BudgetExceededError | LocalRateLimitError) -> None:
    """Count the refusal and end its span (async callers do this in the worker)."""
    kind = "budget" if isinstance(error, BudgetExceededError) else "ratelimit"
    metrics.record_rejection(plan.project, kind)
    span.end()


def check_budget(plan: Plan, store: BaseStore | None = None, key: str | None = None) -> None:
    """Refuse (span, metric, exception) when the plan's budget (or that of budget key
    ``key``) is spent; sync callers only."""
    now = utcnow()
    for spec, scope_key in budget_scopes(plan, key):
        if store is None:
            spent = read_spent(plan, now, spec, scope_key)
        else:
            spent = _read_spent_from(store, plan, now, spec, scope_key)
        refusal = budget_refusal(plan, spent, spec, scope_key)
        if refusal is not None:
            record_refusal(plan, refusal, key)
            raise refusal


def _read_spent_from(
    store: BaseStore, plan: Plan, now: datetime, spec: BudgetSpec, key: str | None
) -> int | None:
    try:
        return _get_spent(store, plan, spec, key, now)
    except StoreError:
        return None


def acquire_rate(
    plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> RateLease | SharedRateLease | LocalRateLimitError | None:
    """Admit the call under its rate limits, reserving its prompt's estimated tokens when a
    tokens-per-minute limit is set (the reservation is corrected to the real count after).

    A refusal raises ``LocalRateLimitError``; with ``wait=True`` it is returned instead, for
    the caller to wait ``rate_wait(refusal)`` seconds and try again.
    """
    limiter = plan.limiter
    if limiter is None:
        return None
    estimate = estimate_tokens(request_text(args, kwargs)) if limiter.tpm is not None else 0
    try:
        if plan.shared_limits:
            return acquire_shared(plan, limiter, estimate)
        return limiter.acquire(estimate)
    except LocalRateLimitError as refusal:
        if plan.wait:
            return refusal
        raise


def acquire_shared(plan: Plan, limiter: RateLimiter, estimate: int) -> RateLease | SharedRateLease:
    """Admit the call under limits shared through the store (store I/O: off the loop in
    async code); when the store cannot answer, the process's own limiter decides."""
    scope = plan.rate_scope
    try:
        admission = runtime.get_store().acquire_rate(
            scope, limiter.rpm, limiter.tpm, estimate, _wall_clock()
        )
    except (StoreError, NotImplementedError) as exc:
        warn_once(
            f"store-rate:{plan.project}",
            f"llm_toll could not check the shared rate limits of '{plan.project}' ({exc}); "
            "this process's own limits are applied instead.",
            AccountingWarning,
        )
        return limiter.acquire(estimate)
    if not admission.admitted:
        limit_type = admission.limit_type or "rpm"
        limit_value = limiter.rpm if limit_type == "rpm" else limiter.tpm
        raise LocalRateLimitError(
            limit_type=limit_type, limit_value=limit_value, retry_after=admission.retry_after
        )
    assert admission.lease_id is not None
    return SharedRateLease(scope, admission.lease_id, counts_tokens=limiter.tpm is not None)


class SharedRateLease:
    """The admission of one request under shared limits; as :class:`RateLease`, finish it
    once with :meth:`settle` or :meth:`release`. On an event loop the store write goes to
    llm_toll's worker thread."""

    __slots__ = ("_done", "_lease_id", "_scope")

    def __init__(self, scope: str, lease_id: int, *, counts_tokens: bool = True) -> None:
        self._scope = scope
        self._lease_id = lease_id
        # Without a TPM limit there is no estimate to correct: nothing to write.
        self._done = not counts_tokens

    @property
    def done(self) -> bool:
        return self._done

    def settle(self, actual_tokens: int) -> None:
        self._finish(actual_tokens)

    def release(self) -> None:
        self._finish(0)

    def _finish(self, actual_tokens: int) -> None:
        if self._done:
            return
        self._done = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _settle_shared(self._scope, self._lease_id, actual_tokens, _wall_clock())
        else:
            args = (self._scope, self._lease_id, actual_tokens, _wall_clock())
            runtime.worker.submit(_settle_shared, *args)


def _settle_shared(scope: str, lease_id: int, actual_tokens: int, now: float) -> None:
    try:
        runtime.get_store().settle_rate(scope, lease_id, actual_tokens, now)
    except (StoreError, NotImplementedError) as exc:
        warn_once(
            f"store-rate-settle:{type(exc).__name__}",
            f"llm_toll could not settle a shared rate-limit reservation ({exc}); its "
            "estimate counts until it leaves the window.",
            AccountingWarning,
        )


async def acquire_rate_async(
    plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> RateLease | SharedRateLease | LocalRateLimitError | None:
    """``acquire_rate`` of an async call: shared limits are read off the event loop."""
    if plan.shared_limits and plan.limiter is not None:
        return await off_loop(acquire_rate, plan, args, kwargs)
    return acquire_rate(plan, args, kwargs)


def rate_wait(refusal: LocalRateLimitError) -> float:
    """Seconds a ``wait=True`` call pauses after ``refusal`` before trying again."""
    return max(refusal.retry_after or 0.0, MIN_RATE_WAIT_S)


def requested_model(plan: Plan, kwargs: dict[str, Any] | None) -> str | None:
    """The model asked for, when known before the call: ``model=`` or a ``model`` argument."""
    if plan.model is not None:
        return plan.model
    model = None if kwargs is None else kwargs.get("model")
    return model if isinstance(model, str) and model else None


def start_span(plan: Plan, kwargs: dict[str, Any] | None) -> Span:
    tracer = telemetry.tracer()
    if tracer is telemetry.NO_TRACER:  # nothing configured: no span to build
        return trace.INVALID_SPAN
    model = requested_model(plan, kwargs)
    attributes: dict[str, str] = {
        attr.OPERATION: attr.DEFAULT_OPERATION,
        attr.PROJECT: plan.project,
    }
    if model:
        attributes[attr.REQUEST_MODEL] = model
    name = f"{attr.DEFAULT_OPERATION} {model}" if model else attr.DEFAULT_OPERATION
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def max_output_tokens(kwargs: dict[str, Any]) -> int | None:
    """The largest output-token cap among the call's keyword arguments and its nested Gemini
    ``config`` / ``generation_config`` (dicts or objects); None when there is none."""
    sources: list[object] = [kwargs]
    sources.extend(kwargs[name] for name in CONFIG_KEYS if kwargs.get(name) is not None)
    found: list[int] = []
    for source in sources:
        for name in OUTPUT_LIMIT_KEYS:
            value = get(source, name)
            if type(value) is int and value >= 0:
                found.append(value)
    return max(found) if found else None


def worst_case_nanos(
    plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any], at: datetime
) -> int | None:
    """A strict call's worst-case cost: the user's ``estimate=``, else the prompt's estimated
    tokens priced as input plus the output-token cap priced as output, at the requested
    model's price. None (warned once per function and cause) when it cannot be known."""
    if plan.estimate is not None:
        try:
            usd = plan.estimate(*args, **kwargs)
        except Exception as exc:
            _warn_strict(plan, "estimate-raised", f"its estimate= function raised {exc!r}")
            return None
        nanos = usd_to_nanos_checked(usd)
        if nanos is None:
            _warn_strict(plan, "estimate-value", f"its estimate= function returned {usd!r}, "
                         "not a non-negative number of USD")  # fmt: skip
        return nanos
    model = requested_model(plan, kwargs)
    limit = max_output_tokens(kwargs)
    if model is None or limit is None:
        _warn_strict(
            plan,
            "no-worst-case",
            "its worst-case cost is unknown: it needs a model (model= or a model argument) "
            "and an output cap (max_tokens, max_completion_tokens or max_output_tokens), "
            "or an estimate= function",
        )
        return None
    usage = Usage(input_tokens=estimate_tokens(request_text(args, kwargs)), output_tokens=limit)
    price = default_registry.price(model, usage, at=at)
    if not price.known:
        _warn_strict(plan, "no-price", f"model {model!r} has no known price")
        return None
    return price.cost_nanos


def _warn_strict(plan: Plan, cause: str, problem: str) -> None:
    warn_once(
        f"strict-{cause}:{plan.name}",
        f"llm_toll: a strict call of {plan.name}() in project '{plan.project}': {problem}; "
        "such calls get the plain pre-call budget check instead of a reservation.",
        UsageWarning,
    )


def reserve_budget(
    plan: Plan, key: str | None, now: datetime, amount: int
) -> Reservation | BudgetExceededError | None:
    """Reserve ``amount`` in the store for one strict call (blocking: async callers run it
    in the worker). The refusal to raise when it does not fit; None when the store cannot
    reserve (warned once; the caller falls back to the plain check)."""
    scopes = budget_scopes(plan, key)
    spec = plan.budget if plan.budget is not None else BudgetSpec(None, scopes[0][0].reset)
    key_spec = plan.key_budget if key is not None else None
    store = runtime.get_store()
    try:
        reservation = store.reserve(
            plan.project, key, spec, now, amount, RESERVATION_TTL_S, key_spec
        )
    except (StoreError, NotImplementedError) as exc:
        warn_once(
            f"store-reserve:{plan.project}",
            f"llm_toll could not reserve budget for '{plan.project}' ({exc}); strict calls "
            "get the plain pre-call budget check instead.",
            AccountingWarning,
        )
        return None
    if reservation is not None:
        return reservation
    return strict_refusal(store, plan, scopes, now, amount)


def strict_refusal(
    store: BaseStore, plan: Plan, scopes: list[Scope], now: datetime, amount: int
) -> BudgetExceededError:
    """The error of a refused reservation, naming the scope that had no room for it (the
    project's, if a concurrent release made room meanwhile)."""
    found: tuple[BudgetSpec, str | None, int, int] | None = None
    for spec, scope_key in scopes:
        try:
            spent = _get_spent(store, plan, spec, scope_key, now)
            reserved = store.get_reserved(plan.project, spec.reset, now, budget_key=scope_key)
        except StoreError:
            spent = reserved = 0
        if found is None:
            found = (spec, scope_key, spent, reserved)
        if not fits_limit(spent, reserved, amount, spec.limit_nanos):
            found = (spec, scope_key, spent, reserved)
            break
    assert found is not None
    spec, scope_key, spent, reserved = found
    limit = spec.limit_nanos or 0
    scope = f"project '{plan.project}'"
    if scope_key is not None:
        scope += f", budget key '{scope_key}'"
    message = (
        f"Budget exceeded for {scope}: ${nanos_to_usd(spent):.4f} spent + "
        f"${nanos_to_usd(reserved):.4f} reserved + ${nanos_to_usd(amount):.4f} worst case "
        f"> ${nanos_to_usd(limit):.4f}"
    )
    return BudgetExceededError(
        message,
        project=plan.project,
        current_cost=nanos_to_usd(spent),
        max_budget=nanos_to_usd(limit),
        budget_key=scope_key,
    )


def release(reservation: Reservation | None) -> None:
    """Give a reservation back (its call failed or was refused later); never raises."""
    if reservation is None:
        return
    try:
        runtime.get_store().release_reservation(reservation)
    except Exception as exc:
        warn_once(
            f"store-release:{type(exc).__name__}",
            f"llm_toll could not release a budget reservation ({exc}); the store gives it "
            f"back {RESERVATION_TTL_S:g} s after it was made.",
            AccountingWarning,
        )


def plain_check(plan: Plan, key: str | None, now: datetime) -> BudgetExceededError | None:
    """The non-strict pre-call check of a sync call (the budget view, else the store)."""
    for spec, scope_key in budget_scopes(plan, key):
        spent = recent_spent(plan, now, spec, scope_key)
        if spent is None:
            spent = read_spent(plan, now, spec, scope_key)
        refusal = budget_refusal(plan, spent, spec, scope_key)
        if refusal is not None:
            return refusal
    return None


def begin(plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """Gates and span of a sync call."""
    now = utcnow()
    key = budget_key_of(plan, args, kwargs)
    reservation = None
    if plan.strict and budget_scopes(plan, key):
        amount = worst_case_nanos(plan, args, kwargs, now)
        if amount is not None:
            gate = reserve_budget(plan, key, now, amount)
            if isinstance(gate, BudgetExceededError):
                record_refusal(plan, gate, key)
                raise gate
            reservation = gate
    if reservation is None:
        refusal = plain_check(plan, key, now)
        if refusal is not None:
            record_refusal(plan, refusal, key)
            raise refusal
    try:
        lease = acquire_rate(plan, args, kwargs)
        while isinstance(lease, LocalRateLimitError):
            _sleep(rate_wait(lease))
            lease = acquire_rate(plan, args, kwargs)
    except LocalRateLimitError as refusal:
        release(reservation)
        record_refusal(plan, refusal, key)
        raise
    return Call(plan, args, kwargs, now, lease, key, reservation)


async def begin_async(plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """Gates and span of an async call: store reads and refusal spans stay off the loop."""
    now = utcnow()
    key = budget_key_of(plan, args, kwargs)
    reservation = None
    if plan.strict and budget_scopes(plan, key):
        amount = worst_case_nanos(plan, args, kwargs, now)
        if amount is not None:
            gate = await off_loop(reserve_budget, plan, key, now, amount)
            if isinstance(gate, BudgetExceededError):
                runtime.worker.submit(end_refusal, plan, refusal_span(plan, gate, key), gate)
                raise gate
            reservation = gate
    if reservation is None:
        for spec, scope_key in budget_scopes(plan, key):
            spent = recent_spent(plan, now, spec, scope_key)
            if spent is None:
                spent = await shared_read(plan, now, spec, scope_key)
            refusal = budget_refusal(plan, spent, spec, scope_key)
            if refusal is not None:
                runtime.worker.submit(end_refusal, plan, refusal_span(plan, refusal, key), refusal)
                raise refusal
    try:
        lease = await acquire_rate_async(plan, args, kwargs)
        while isinstance(lease, LocalRateLimitError):
            await _async_sleep(rate_wait(lease))
            lease = await acquire_rate_async(plan, args, kwargs)
    except LocalRateLimitError as refusal:
        if reservation is not None:
            runtime.worker.submit(release, reservation)
        runtime.worker.submit(end_refusal, plan, refusal_span(plan, refusal, key), refusal)
        raise
    return Call(plan, args, kwargs, now, lease, key, reservation)


# Budget reads under way, per event loop and budget scope: concurrent callers share one.
_reads: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, str], asyncio.Future[int | None]]
] = weakref.WeakKeyDictionary()


async def shared_read(
    plan: Plan, now: datetime, spec: BudgetSpec | None = None, key: str | None = None
) -> int | None:
    """``read_spent`` in the worker; a burst of calls (``asyncio.gather``) makes one read."""
    spec = spec or plan.budget
    assert spec is not None
    scope = (plan.project, key or "", period_key(spec.reset, now))
    loop = asyncio.get_running_loop()
    pending = _reads.setdefault(loop, {})
    future = pending.get(scope)
    if future is None:
        future = pending[scope] = asyncio.ensure_future(off_loop(read_spent, plan, now, spec, key))
        future.add_done_callback(lambda _: pending.pop(scope, None))
    return await asyncio.shield(future)


def recent_spent(
    plan: Plan, now: datetime, spec: BudgetSpec | None = None, key: str | None = None
) -> int | None:
    """The budget's total as this process last read or wrote it, if that was recent.

    Every store write returns the true total (other processes' spend included), so while a
    process is making calls its view is as fresh as its last call; see BudgetView.
    """
    spec = spec or plan.budget
    assert spec is not None
    return runtime.processor.view.recent(plan.project, period_key(spec.reset, now), key or "")


# -- one call -----------------------------------------------------------------------------


class Call:
    """One started call: its span is open until ``finish``/``finish_stream``/``fail``."""

    __slots__ = (
        "args",
        "budget_key",
        "kwargs",
        "lease",
        "plan",
        "request_model",
        "reservation",
        "span",
        "started_at",
        "t0",
    )

    def __init__(
        self,
        plan: Plan,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started_at: datetime,
        lease: RateLease | SharedRateLease | None,
        budget_key: str | None = None,
        reservation: Reservation | None = None,
    ) -> None:
        self.plan = plan
        self.reservation = reservation
        """The strict call's budget reservation, settled or released exactly once."""
        self.budget_key = budget_key
        self.args = args
        self.kwargs = kwargs
        self.started_at = started_at
        self.lease = lease
        self.span = start_span(plan, kwargs)
        self.request_model = requested_model(plan, kwargs)
        self.t0 = time.perf_counter()

    def attach(self) -> object:
        """Make the span current, so spans started by the wrapped code nest under it."""
        if self.span is trace.INVALID_SPAN:
            return None
        return otel_context.attach(trace.set_span_in_context(self.span))

    @staticmethod
    def detach(token: object) -> None:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    # -- endings --------------------------------------------------------------------------

    def finish(self, response: Any) -> None:
        """A plain (non-stream) result came back: record it and end the span."""
        self._settle(self._usage_of(response))

    async def finish_async(self, response: Any) -> None:
        """The same for an async call, without making the caller wait for the store.

        Usage and price are worked out here (CPU only); the store write and the span's end
        go to the worker thread. Until the write lands, the call's cost is held in the
        budget view, so the next call's check already counts it; and the store's read
        methods wait for such writes, so a caller reads its own writes. When the worker
        falls behind, callers wait for their own write, which bounds the backlog.
        """
        found = self._usage_of(response)
        if snapshot_loaded():
            call = self._record_of(found)
        else:  # the first call loads genai-prices' data, too slow for the event loop
            call = await off_loop(self._record_of, found)
        end_ns = time.time_ns()
        held = None
        gates = budget_scopes(self.plan, self.budget_key)
        if call is not None and gates:
            # Both scopes of a call share one reset, so one period.
            period = period_key(gates[0][0].reset, call.started_at)
            key = self.budget_key if gates[-1][1] is not None else None
            held = runtime.processor.view.hold(call.project, period, call.cost_nanos, key)
        if runtime.worker.backlog < MAX_BACKLOG:
            runtime.worker.submit(self._commit, call, None, end_ns, held)
        else:
            await runtime.worker.run(self._commit, call, None, end_ns, held)

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
        self._release()
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
        self._commit(self._record_of(found), store)

    def _take_reservation(self) -> Reservation | None:
        reservation, self.reservation = self.reservation, None
        return reservation

    def _release(self) -> None:
        release(self._take_reservation())

    def _record_of(self, found: ExtractedUsage | None) -> CallRecord | None:
        """Price what was found and settle the rate-limit lease with the real token count."""
        call = None if found is None else self._price(found)
        if self.lease is not None:
            self.lease.settle(0 if call is None else call.usage.total_tokens)
        return call

    def _commit(
        self,
        call: CallRecord | None,
        store: BaseStore | None = None,
        end_ns: int | None = None,
        held: int | None = None,
    ) -> None:
        """Write the call through the processor, then end its span (at ``end_ns`` if given)."""
        try:
            if call is None:
                self._release()  # nothing to record: the reservation is given back
            else:
                if self.request_model is None and self.span.is_recording():
                    # Unknown when the span started: the model priced is what was asked for.
                    self.span.set_attribute(attr.REQUEST_MODEL, call.model)
                plan = self.plan
                runtime.processor.settle(
                    self.span,
                    call,
                    plan.budget,
                    store,
                    held,
                    plan.key_budget if call.budget_key else None,
                    plan.key_in_metrics,
                    self._take_reservation(),
                )
        finally:
            self.span.end(end_time=end_ns)

    def _price(self, found: ExtractedUsage) -> CallRecord:
        model = self.plan.model or found.model or self.request_model or UNKNOWN_MODEL
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
            budget_key=self.budget_key,
        )

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
