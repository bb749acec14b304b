"""What the gates ask for, one step at a time: a budget read, a reservation, a rate
admission, a pause, a refusal... Each step runs in the calling thread (``run``: sync calls
and framework callbacks) or without blocking the event loop (``run_async``: store I/O in
llm_toll's worker thread, a burst of concurrent reads of one budget shared, pauses with
``asyncio.sleep``)."""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any

from llm_toll import _runtime
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import Reservation
from llm_toll._budget.stored import Limits
from llm_toll._budget.stored import cache as stored_limits
from llm_toll._call import admission
from llm_toll._call.admission import Lease
from llm_toll._call.plan import BudgetScope, Plan
from llm_toll._call.refusals import Refusal, end_refusal, refusal_span
from llm_toll._warnings import Guard
from llm_toll._worker import worker
from llm_toll.exceptions import AccountingWarning, BudgetExceededError
from llm_toll.pricing import default_registry
from llm_toll.pricing._routes import prices_loaded
from llm_toll.store import BaseStore

if TYPE_CHECKING:  # async callers have imported it; sync code never needs it
    import asyncio

    from llm_toll._call.request_gate import Granted, RequestGate

_COUNTING = Guard("refusal-count", "count a refused call", AccountingWarning)


def read_spent(
    plan: Plan, now: datetime, scope: BudgetScope, store: BaseStore | None = None
) -> int:
    """The spend of a budget from the store, plus async calls' cost not yet written;
    ``StoreError`` when the store cannot answer (see ``gates.store_unavailable``)."""
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


class Step:
    """One thing the gates need done; ``run`` in the caller's thread, ``run_async`` without
    blocking the event loop."""

    __slots__ = ()

    def run(self) -> Any:
        raise NotImplementedError

    async def run_async(self) -> Any:
        return await worker.run(self.run)


class ReadSpent(Step):
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


class LoadLimits(Step):
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


class Reserve(Step):
    __slots__ = ("amount", "key", "now", "plan")

    def __init__(self, plan: Plan, key: str | None, now: datetime, amount: int) -> None:
        self.plan = plan
        self.key = key
        self.now = now
        self.amount = amount

    def run(self) -> Reservation | BudgetExceededError | None:
        from llm_toll._call import strict

        return strict.reserve(self.plan, self.key, self.now, self.amount)


class ReserveRequest(Step):
    __slots__ = ("gate",)

    def __init__(self, gate: RequestGate) -> None:
        self.gate = gate

    def run(self) -> Granted | BudgetExceededError | float:
        return self.gate.attempt()


class AcquireRate(Step):
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


class CheckPrice(Step):
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


class Pause(Step):
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self) -> None:
        admission._sleep(self.seconds)

    async def run_async(self) -> None:
        await admission._async_sleep(self.seconds)


class Release(Step):
    __slots__ = ("reservation",)

    def __init__(self, reservation: Reservation) -> None:
        self.reservation = reservation

    def run(self) -> None:
        from llm_toll._call import strict

        strict.release(self.reservation)

    async def run_async(self) -> None:
        from llm_toll._call import strict

        worker.submit(strict.release, self.reservation)


class Refuse(Step):
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

        with _COUNTING:  # a count that fails is a warning: the refusal itself stands
            model = self.model or self.plan.requested_model(None)
            refusal_log.refused(self.plan.project, self.key, model, self.error)
