"""The one pre-call check: budgets, run caps, strict reservations and rate limits, before a
run starts and before each provider request of a run is sent.

The check is written once, as a generator of *steps* (read a budget, reserve, acquire a
rate limit, pause, refuse...). Sync calls and framework integrations run each step in the
calling thread (:func:`admit`); async calls run the same steps off the event loop
(:func:`admit_async`): store reads and writes in llm_toll's worker thread, a burst of
concurrent reads of one budget shared, pauses with ``asyncio.sleep``.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from opentelemetry.trace import Span

from llm_toll import _runtime
from llm_toll._budget.money import nanos_to_usd, usd_to_nanos
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import Reservation
from llm_toll._budget.stored import Limits, with_stored_limits
from llm_toll._budget.stored import cache as stored_limits
from llm_toll._call import admission
from llm_toll._call.admission import Lease
from llm_toll._call.plan import BudgetScope, Plan
from llm_toll._warnings import warn_once
from llm_toll._worker import worker
from llm_toll.exceptions import (
    AccountingWarning,
    BudgetExceededError,
    LocalRateLimitError,
    UnpricedModelError,
)
from llm_toll.pricing import default_registry
from llm_toll.pricing._routes import prices_loaded
from llm_toll.store import BaseStore, StoreError
from llm_toll.telemetry import names as attr
from llm_toll.telemetry.spans import budget_event_attributes, mark_error, start_call_span

if TYPE_CHECKING:  # async callers have imported it; sync code never needs it
    import asyncio

    from llm_toll._call.request_gate import Granted, RequestGate
    from llm_toll._call.run import Run

T = TypeVar("T")
Refusal = BudgetExceededError | LocalRateLimitError


class Admission(NamedTuple):
    """A call let through the gates, with what it holds until it finishes."""

    started_at: datetime
    budget_key: str | None
    reservation: Reservation | None
    """A strict call's budget reservation, settled or released exactly once."""
    lease: Lease | None
    """Its admission under the rate limits, settled or released exactly once."""
    granted: Granted | None = None
    """A strict provider request's grant: its output cap and what it holds."""
    plan: Plan | None = None
    """The plan the call was admitted under, with the limits kept in the store folded in
    (``_budget.stored``); None: the plan it was given."""


def admit(
    plan: Plan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    store: BaseStore | None = None,
    run: Run | None = None,
    generates: bool = True,
) -> Admission:
    """Run the gates in the calling thread; raises the refusal when the call may not run.

    ``store`` overrides the process-wide store (integrations configured with their own).
    ``run``: the gates of a provider request of that run (``kwargs`` is the request's
    body), not of the start of a run; ``generates``: False for a request without output
    tokens (embeddings).
    """
    now = datetime.now(timezone.utc)
    steps = _gates(plan, args, kwargs, now=now, store=store, run=run, generates=generates)
    try:
        step = next(steps)
        while True:
            try:
                outcome = step.run()
            except Exception as error:  # a rate refusal: the gates decide what follows
                step = steps.throw(error)
            else:
                step = steps.send(outcome)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def admit_async(
    plan: Plan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run: Run | None = None,
    generates: bool = True,
) -> Admission:
    """The same gates for async code: no store I/O on the event loop."""
    now = datetime.now(timezone.utc)
    steps = _gates(plan, args, kwargs, now=now, store=None, run=run, generates=generates)
    try:
        step = next(steps)
        while True:
            try:
                outcome = await step.run_async()
            except Exception as error:
                step = steps.throw(error)
            else:
                step = steps.send(outcome)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _gates(
    plan: Plan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    now: datetime,
    store: BaseStore | None,
    run: Run | None,
    generates: bool = True,
) -> Generator[_Step, Any, Admission]:
    """The pre-call check, step by step; returns the admission or raises the refusal."""
    lease: Lease | None = None
    model = plan.requested_model(kwargs)  # named on a refusal's span
    key = plan.budget_key_of(args, kwargs) if run is None else run.budget_key
    plan = with_stored_limits(plan, key, (yield _LoadLimits(store)))
    if plan.on_unpriced == "refuse" and model is not None:
        priced = yield _CheckPrice(model)
        if not priced:
            unpriced = UnpricedModelError(project=plan.project, model=model)
            yield _Refuse(plan, unpriced, key, model)
            raise unpriced
    if run is not None:  # a request of a run: the caps of the run and those around it
        capped = run.refusal()
        if capped is not None:
            yield _Refuse(plan, capped, key, model)
            raise capped
        reserved_by_run = run.start_request()
        if reserved_by_run is not None:  # from here on, each request reserves its own
            yield _Release(reserved_by_run)
    scopes = plan.scopes(key)
    reservation: Reservation | None = None
    granted: Granted | None = None
    if plan.strict and run is not None:  # a strict request: its own worst case, or refused
        granted = yield from _strict_request(plan, key, now, kwargs, run, generates, model)
        reservation = granted.reservation
    elif plan.strict and scopes:  # a strict run starts: the worst case its arguments show
        from llm_toll._call import strict

        amount = strict.worst_case_nanos(plan, args, kwargs, now, quiet=True)
        if amount is not None:
            try:
                reserved = yield _Reserve(plan, key, now, amount)
            except StoreError as down:
                yield from _refuse_if_asked(plan, down, "reserve budget for", key, model)
                scopes = ()  # allowed unchecked: the store that failed is not read again
                reserved = None
            if isinstance(reserved, BudgetExceededError):
                yield _Refuse(plan, reserved, key, model)
                raise reserved
            reservation = reserved  # None: the store cannot reserve; check plainly
    if scopes and (reservation is not None or granted is not None):
        # A reservation holds one period: limits kept in the store over other periods get
        # the plain check.
        held = plan.reserved_budget(key).reset
        scopes = tuple(scope for scope in scopes if scope.spec.reset != held)
    for scope in scopes:
        spent = None if store is not None else _recent_spent(plan, now, scope)
        if spent is None:
            try:
                spent = yield _ReadSpent(plan, now, scope, store)
            except StoreError as down:
                yield from _refuse_if_asked(plan, down, "read the budget of", key, model)
                break  # allowed without a budget check
        refusal = _budget_refusal(plan, spent, scope)
        if refusal is not None:
            yield _Refuse(plan, refusal, key, model)
            raise refusal
    if run is not None:
        lease = run.take_lease()  # a run's first request was admitted with the run
    while lease is None and plan.limiter is not None:
        try:
            lease = yield _AcquireRate(plan, args, kwargs)
            break
        except LocalRateLimitError as refusal:
            if plan.wait:
                yield _Pause(admission.rate_wait(refusal))
                continue
            if reservation is not None:
                yield _Release(reservation)
            if granted is not None and run is not None:
                run.unhold(granted.run_held)
            yield _Refuse(plan, refusal, key, model)
            raise
    return Admission(now, key, reservation, lease, granted, plan)


def _strict_request(
    plan: Plan,
    key: str | None,
    now: datetime,
    body: dict[str, Any],
    run: Run,
    generates: bool,
    model: str | None,
) -> Generator[_Step, Any, Granted]:
    """A strict request's reservation of its worst case: attempted until granted, waiting
    while requests in flight hold the room it needs; raises the refusal."""
    from llm_toll._call import request_gate
    from llm_toll._call.request_bound import request_bound

    bound = request_bound(plan, body, generates=generates)
    gate: RequestGate | None = None
    refusal: BudgetExceededError | None
    if isinstance(bound, str):
        refusal = request_gate.unbounded(plan, bound)
    else:
        gate = request_gate.RequestGate(plan, key, now, bound, run)
        refusal = gate.refusal()
    while refusal is None and gate is not None:
        outcome = yield _ReserveRequest(gate)
        if isinstance(outcome, float):
            if outcome > 0:
                yield _Pause(outcome)
            continue
        if isinstance(outcome, BudgetExceededError):
            refusal = outcome
            break
        granted: Granted = outcome
        return granted
    assert refusal is not None
    yield _Refuse(plan, refusal, key, model)
    raise refusal


# -- budget reads -----------------------------------------------------------------------


def _recent_spent(plan: Plan, now: datetime, scope: BudgetScope) -> int | None:
    """The budget's total as this process last read or wrote it, if that was recent.

    Every store write returns the true total (other processes' spend included), so while a
    process is making calls its view is as fresh as its last call; see BudgetView.
    """
    period = period_key(scope.spec.reset, now)
    return _runtime.writer().view.recent(plan.project, period, scope.key or "")


def read_spent(
    plan: Plan, now: datetime, scope: BudgetScope, store: BaseStore | None = None
) -> int:
    """The spend of a budget from the store, plus async calls' cost not yet written;
    ``StoreError`` when the store cannot answer (see :func:`store_unavailable`)."""
    reset = scope.spec.reset
    spent = (store or _runtime.get_store()).get_spent(
        plan.project, reset, now, budget_key=scope.key
    )
    if store is not None:  # not the process's store: its totals are not in the view
        return spent
    period = period_key(reset, now)
    view = _runtime.writer().view
    view.remember(plan.project, period, spent, scope.key or "")
    return spent + view.held(plan.project, period, scope.key or "")


def _refuse_if_asked(
    plan: Plan, down: StoreError, action: str, key: str | None, model: str | None
) -> Generator[_Step, Any, None]:
    """The store failed before the call: refuse it (its refusal span, then the error) when
    ``on_store_error`` says so; else return, and the call goes ahead unchecked."""
    refused = store_unavailable(plan, down, action)
    if refused is not None:
        yield _Refuse(plan, refused, key, model)
        raise refused from None


def store_unavailable(
    plan: Plan, error: StoreError, action: str = "read the budget of"
) -> BudgetExceededError | None:
    """What a call does when the budget store cannot be used before it, as
    ``on_store_error`` says: the refusal to raise (``"refuse"``), or None: it goes ahead
    without the check, warned once per project and ``action`` (``"allow"``)."""
    if plan.on_store_error == "refuse":
        return BudgetExceededError(
            f"llm_toll refused a call of project '{plan.project}' before it was sent: the "
            f"budget store cannot be used ({error}), and on_store_error='refuse'",
            project=plan.project,
            scope="store",
        )
    warn_once(
        f"store-{action}:{plan.project}",
        f"llm_toll could not {action} '{plan.project}' ({error}); the call is allowed "
        "without a budget check.",
        AccountingWarning,
    )
    return None


# Budget reads under way, per event loop and budget scope: concurrent callers share one.
_reads: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, str], asyncio.Future[int]]
] = weakref.WeakKeyDictionary()


async def _shared_read(plan: Plan, now: datetime, scope: BudgetScope) -> int:
    """``read_spent`` in the worker; a burst of calls (``asyncio.gather``) makes one read."""
    import asyncio

    key = (plan.project, scope.key or "", period_key(scope.spec.reset, now))
    loop = asyncio.get_running_loop()
    pending = _reads.setdefault(loop, {})
    future = pending.get(key)
    if future is None:
        future = pending[key] = asyncio.ensure_future(worker.run(read_spent, plan, now, scope))
        future.add_done_callback(lambda _: pending.pop(key, None))
    return await asyncio.shield(future)


def _budget_refusal(plan: Plan, spent: int | None, scope: BudgetScope) -> Refusal | None:
    limit = scope.spec.limit_nanos
    if limit is None or spent is None or spent < limit:
        return None
    return BudgetExceededError(
        project=plan.project,
        current_cost=nanos_to_usd(spent),
        max_budget=nanos_to_usd(limit),
        budget_key=scope.key,
    )


# -- refusals -------------------------------------------------------------------------------


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
    from llm_toll.telemetry import metrics  # refusals only: not imported by every program

    metrics.record_rejection(
        plan.project, "budget" if isinstance(error, BudgetExceededError) else "ratelimit"
    )
    span.end()
    if isinstance(error, BudgetExceededError):
        from llm_toll.alerts._fire import after_refusal  # refusals only

        after_refusal(plan, error, _runtime.get_store())


# -- steps: what the gates ask for, done in the calling thread or off the event loop ------


class _Step:
    """One thing the gates need done; ``run`` in the caller's thread, ``run_async`` without
    blocking the event loop."""

    __slots__ = ()

    def run(self) -> Any:
        raise NotImplementedError

    async def run_async(self) -> Any:
        return await worker.run(self.run)


class _ReadSpent(_Step):
    __slots__ = ("now", "plan", "scope", "store")

    def __init__(
        self, plan: Plan, now: datetime, scope: BudgetScope, store: BaseStore | None
    ) -> None:
        self.plan = plan
        self.now = now
        self.scope = scope
        self.store = store

    def run(self) -> int:
        return read_spent(self.plan, self.now, self.scope, self.store)

    async def run_async(self) -> int:
        return await _shared_read(self.plan, self.now, self.scope)


class _LoadLimits(_Step):
    """The limits kept in the store (``_budget.stored``): from this process's copy while
    it is fresh; else read, in the worker for async callers."""

    __slots__ = ("store",)

    def __init__(self, store: BaseStore | None) -> None:
        self.store = store

    def run(self) -> Limits:
        store = self.store or _runtime.get_store()
        limits = stored_limits.fresh(store)
        return limits if limits is not None else stored_limits.load(store)

    async def run_async(self) -> Limits:
        store = self.store or _runtime._store  # a store is never opened on the event loop
        limits = None if store is None else stored_limits.fresh(store)
        return limits if limits is not None else await worker.run(self.run)


class _Reserve(_Step):
    __slots__ = ("amount", "key", "now", "plan")

    def __init__(self, plan: Plan, key: str | None, now: datetime, amount: int) -> None:
        self.plan = plan
        self.key = key
        self.now = now
        self.amount = amount

    def run(self) -> Reservation | BudgetExceededError | None:
        from llm_toll._call import strict

        return strict.reserve(self.plan, self.key, self.now, self.amount)


class _ReserveRequest(_Step):
    __slots__ = ("gate",)

    def __init__(self, gate: RequestGate) -> None:
        self.gate = gate

    def run(self) -> Granted | BudgetExceededError | float:
        return self.gate.attempt()


class _AcquireRate(_Step):
    __slots__ = ("args", "kwargs", "plan")

    def __init__(self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.plan = plan
        self.args = args
        self.kwargs = kwargs

    def run(self) -> Lease | None:
        return admission.acquire(self.plan, self.args, self.kwargs)

    async def run_async(self) -> Lease | None:
        if self.plan.shared_limits and self.plan.limiter is not None:
            return await worker.run(self.run)  # store I/O
        return self.run()


class _CheckPrice(_Step):
    """Whether the model asked for has a price (``on_unpriced="refuse"``)."""

    __slots__ = ("model",)

    def __init__(self, model: str) -> None:
        self.model = model

    def run(self) -> bool:
        return default_registry.is_priced(self.model)

    async def run_async(self) -> bool:
        if prices_loaded():
            return self.run()
        return await worker.run(self.run)  # the first look loads genai-prices' data


class _Pause(_Step):
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self) -> None:
        admission._sleep(self.seconds)

    async def run_async(self) -> None:
        await admission._async_sleep(self.seconds)


class _Release(_Step):
    __slots__ = ("reservation",)

    def __init__(self, reservation: Reservation) -> None:
        self.reservation = reservation

    def run(self) -> None:
        from llm_toll._call import strict

        strict.release(self.reservation)

    async def run_async(self) -> None:
        from llm_toll._call import strict

        worker.submit(strict.release, self.reservation)


class _Refuse(_Step):
    __slots__ = ("error", "key", "model", "plan")

    def __init__(self, plan: Plan, error: Refusal, key: str | None, model: str | None) -> None:
        self.plan = plan
        self.error = error
        self.key = key
        self.model = model

    def run(self) -> None:
        span = refusal_span(self.plan, self.error, self.key, self.model)
        self._count()
        end_refusal(self.plan, span, self.error)

    async def run_async(self) -> None:
        # The span starts here, in the caller's context; its end goes to the worker.
        span = refusal_span(self.plan, self.error, self.key, self.model)
        self._count()
        worker.submit(end_refusal, self.plan, span, self.error)

    def _count(self) -> None:
        """Counted in the store's refusals, off the call path."""
        from llm_toll._call import refusal_log  # refusals only

        model = self.model or self.plan.requested_model(None)
        refusal_log.refused(self.plan.project, self.key, model, self.error)
