"""The one pre-call check: budgets, run caps, strict reservations and rate limits, before a
run starts and before each provider request of a run is sent.

The check is written once, as a generator of *steps* (``steps.py``: read a budget,
reserve, acquire a rate limit, pause, refuse...). Sync calls and framework integrations run
each step in the calling thread (:func:`admit`); async calls run the same steps off the
event loop (:func:`admit_async`): store reads and writes in llm_toll's worker thread, a
burst of concurrent reads of one budget shared, pauses with ``asyncio.sleep``. A refused
call's span, count and alert: ``refusals.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from llm_toll import _runtime
from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import Reservation
from llm_toll._budget.stored import with_stored_limits
from llm_toll._call import admission, steps
from llm_toll._call.admission import Lease
from llm_toll._call.plan import BudgetScope, Plan
from llm_toll._call.refusals import Refusal
from llm_toll._warnings import warn_once
from llm_toll.exceptions import (
    AccountingWarning,
    BudgetExceededError,
    LocalRateLimitError,
    UnpricedModelError,
)
from llm_toll.store import BaseStore, StoreError

if TYPE_CHECKING:
    from llm_toll._call.request_gate import Granted, RequestGate
    from llm_toll._call.run import Run


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
    *,
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
    check = _gates(plan, args, kwargs, now=now, store=store, run=run, generates=generates)
    try:
        step = next(check)
        while True:
            try:
                outcome = step.run()
            except Exception as error:  # a rate refusal: the gates decide what follows
                step = check.throw(error)
            else:
                step = check.send(outcome)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def admit_async(
    plan: Plan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    run: Run | None = None,
    generates: bool = True,
) -> Admission:
    """The same gates for async code: no store I/O on the event loop."""
    now = datetime.now(timezone.utc)
    check = _gates(plan, args, kwargs, now=now, store=None, run=run, generates=generates)
    try:
        step = next(check)
        while True:
            try:
                outcome = await step.run_async()
            except Exception as error:
                step = check.throw(error)
            else:
                step = check.send(outcome)
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
) -> Generator[steps.Step, Any, Admission]:
    """The pre-call check, step by step; returns the admission or raises the refusal."""
    lease: Lease | None = None
    # Named on a refusal's span: a request's own, or what the decorated call asks for.
    model = plan.requested_model(kwargs if run is not None else plan.call_arguments(args, kwargs))
    key = plan.budget_key_of(args, kwargs) if run is None else run.budget_key
    plan = with_stored_limits(plan, key, (yield steps.LoadLimits(store)))
    if plan.on_unpriced == "refuse" and model is not None:
        priced = yield steps.CheckPrice(model)
        if not priced:
            unpriced = UnpricedModelError(project=plan.project, model=model)
            yield steps.Refuse(plan, unpriced, key, model)
            raise unpriced
    if run is not None:  # a request of a run: the caps of the run and those around it
        capped = run.refusal()
        if capped is not None:
            yield steps.Refuse(plan, capped, key, model)
            raise capped
        reserved_by_run = run.start_request()
        if reserved_by_run is not None:  # from here on, each request reserves its own
            yield steps.Release(reserved_by_run)
    scopes = plan.scopes(key)
    reservation: Reservation | None = None
    granted: Granted | None = None
    if plan.strict and run is not None:  # a strict request: its own worst case, or refused
        granted = yield from _strict_request(
            plan, key, now, kwargs, run=run, generates=generates, model=model
        )
        reservation = granted.reservation
    elif plan.strict and scopes:  # a strict run starts: the worst case its arguments show
        from llm_toll._call import strict

        amount = strict.worst_case_nanos(plan, args, kwargs, now, quiet=True)
        if amount is not None:
            try:
                reserved = yield steps.Reserve(plan, key, now, amount)
            except StoreError as down:
                yield from _refuse_if_asked(plan, down, "reserve budget for", key=key, model=model)
                scopes = ()  # allowed unchecked: the store that failed is not read again
                reserved = None
            if isinstance(reserved, BudgetExceededError):
                yield steps.Refuse(plan, reserved, key, model)
                raise reserved
            reservation = reserved  # None: the store cannot reserve; check plainly
    if reservation is not None or granted is not None:
        scopes = ()  # a reservation holds every limit, each over its own period
    for scope in scopes:
        spent = None if store is not None else _recent_spent(plan, now, scope)
        if spent is None:
            try:
                spent = yield steps.ReadSpent(plan, now, scope, store)
            except StoreError as down:
                yield from _refuse_if_asked(plan, down, "read the budget of", key=key, model=model)
                break  # allowed without a budget check
        refusal = _budget_refusal(plan, spent, scope)
        if refusal is not None:
            yield steps.Refuse(plan, refusal, key, model)
            raise refusal
    if run is not None:
        lease = run.take_lease()  # a run's first request was admitted with the run
    while lease is None and plan.limiter is not None:
        try:
            lease = yield steps.AcquireRate(plan, args, kwargs)
            break
        except LocalRateLimitError as refusal:
            if plan.wait:
                yield steps.Pause(admission.rate_wait(refusal))
                continue
            if reservation is not None:
                yield steps.Release(reservation)
            if granted is not None and run is not None:
                run.unhold(granted.run_held)
            yield steps.Refuse(plan, refusal, key, model)
            raise
    return Admission(now, key, reservation, lease, granted, plan)


def _strict_request(
    plan: Plan,
    key: str | None,
    now: datetime,
    body: dict[str, Any],
    *,
    run: Run,
    generates: bool,
    model: str | None,
) -> Generator[steps.Step, Any, Granted]:
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
        gate = request_gate.RequestGate(plan, key, now, bound, run=run)
        refusal = gate.refusal()
    while refusal is None and gate is not None:
        outcome = yield steps.ReserveRequest(gate)
        if isinstance(outcome, float):
            if outcome > 0:
                yield steps.Pause(outcome)
            continue
        if isinstance(outcome, BudgetExceededError):
            refusal = outcome
            break
        granted: Granted = outcome
        return granted
    assert refusal is not None
    yield steps.Refuse(plan, refusal, key, model)
    raise refusal


# -- budget reads -----------------------------------------------------------------------


def _recent_spent(plan: Plan, now: datetime, scope: BudgetScope) -> int | None:
    """The budget's total as this process last read or wrote it, if that was recent.

    Every store write returns the true total (other processes' spend included), so while a
    process is making calls its view is as fresh as its last call; see BudgetView.
    """
    period = period_key(scope.spec.reset, now)
    return _runtime.writer().view.recent(plan.project, period, scope.key or "")


def _refuse_if_asked(
    plan: Plan, down: StoreError, action: str, *, key: str | None, model: str | None
) -> Generator[steps.Step, Any, None]:
    """The store failed before the call: refuse it (its refusal span, then the error) when
    ``on_store_error`` says so; else return, and the call goes ahead unchecked."""
    refused = store_unavailable(plan, down, action)
    if refused is not None:
        yield steps.Refuse(plan, refused, key, model)
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
