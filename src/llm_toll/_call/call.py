"""One admitted call: its span, then its usage, price and record, exactly once.

``shapes`` decides the shape of a call (sync, async, generator, stream) and drives a
``Call`` through it; ``gates`` admitted it; everything a shape does not decide lives here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace

from llm_toll import _runtime
from llm_toll._budget.money import MAX_CALL_COST_NANOS, nanos_to_usd
from llm_toll._budget.once import Path, claims
from llm_toll._budget.periods import period_key
from llm_toll._budget.priced import priced_call
from llm_toll._budget.records import CallRecord, PendingWrite, Reservation
from llm_toll._call.gates import Admission
from llm_toll._call.plan import Plan
from llm_toll._call.results import CallResults
from llm_toll._warnings import Guard, warn_once
from llm_toll._worker import worker
from llm_toll.exceptions import AccountingWarning, BudgetExceededError, TelemetryWarning
from llm_toll.pricing._routes import prices_loaded
from llm_toll.store import BaseStore
from llm_toll.telemetry import _names as attr
from llm_toll.telemetry._spans import end_span, mark_error, start_call_span
from llm_toll.usage import ExtractedUsage, StreamAccumulator

if TYPE_CHECKING:
    from llm_toll._call.run import Run

UNKNOWN_MODEL = "unknown"
# The one guard of recording a call; a failed call's metrics have theirs.
_RECORDING = Guard("record", "record a call", AccountingWarning)
_FAILURE_METRICS = Guard("metrics", "record metrics", TelemetryWarning)


def _ns_since(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1e9)


class Timed(NamedTuple):
    """When a call a framework already made started and ended (``time.time_ns``)."""

    start_ns: int
    end_ns: int


class Call:
    """One started call: its span is open until one of the ``finish*`` methods or ``fail``."""

    __slots__ = (
        "budget_key",
        "by",
        "ends_run",
        "granted",
        "lease",
        "plan",
        "request_model",
        "reservation",
        "results",
        "run",
        "span",
        "started_at",
        "t0",
        "timed",
    )

    def __init__(
        self,
        plan: Plan,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        admission: Admission,
        *,
        run: Run | None = None,
        provider: str | None = None,
        t0: float | None = None,
        ends_run: bool = False,
        by: Path = "hooks",
        timed: Timed | None = None,
    ) -> None:
        """``run``: the run the call's cost counts in. ``t0``: when the call started
        (``time.perf_counter``), when that was before this object was made: a run's
        return value is read after the run, but its call began with the run. ``by``: the
        path that records it (a framework's callback, or llm_toll's own hooks and
        decorators), so that a response both see is recorded once. ``timed``: the start
        and end of a call a framework already made, which its span and record then span
        instead of the time they are made."""
        self.by = by
        self.timed = timed
        self.plan = admission.plan or plan  # with the limits kept in the store
        self.run = run
        self.ends_run = ends_run
        if run is not None and not ends_run:
            run.track()  # a hooked request: its run's span waits for its record
        self.started_at = admission.started_at
        self.budget_key = admission.budget_key
        self.lease = admission.lease
        self.reservation = admission.reservation
        """A strict call's budget reservation, settled or released exactly once."""
        self.granted = admission.granted
        self.results = CallResults(plan, args, kwargs, answered=provider is not None)
        # A request's body names its model; a decorated call may leave it to a default.
        seen = kwargs if provider is not None else plan.call_arguments(args, kwargs)
        self.request_model = plan.requested_model(seen)
        if t0 is None or run is None:
            # A call that began before this object (a framework reports it at its end):
            # its span starts when the call did, at the framework's time if it gave one.
            if timed is not None:
                start_ns: int | None = timed.start_ns
            else:
                start_ns = None if t0 is None else time.time_ns() - _ns_since(t0)
            self.span = start_call_span(
                plan.project, self.request_model, provider=provider, start_ns=start_ns
            )
            self.t0 = time.perf_counter() if t0 is None else t0
        else:
            self.span = start_call_span(
                plan.project, self.request_model, parent=run.span, start_ns=run.started_ns
            )
            self.t0 = t0
        if provider is not None and self.span.is_recording():
            self._describe_request(kwargs)

    def _describe_request(self, body: dict[str, Any]) -> None:
        """The request's output cap on its span; for a strict request, the one it is sent
        with, whether llm_toll lowered it, and the worst case it reserved."""
        from llm_toll._call.request_bound import max_output_tokens

        requested = max_output_tokens(body)
        granted = self.granted
        if granted is None:
            if requested is not None:
                self.span.set_attribute(attr.REQUEST_MAX_TOKENS, requested)
            return
        if granted.output_cap is not None:
            self.span.set_attribute(attr.REQUEST_MAX_TOKENS, granted.output_cap)
        self.span.set_attributes(
            {
                attr.STRICT_RESERVED: nanos_to_usd(granted.amount_nanos),
                attr.STRICT_CAP_LOWERED: granted.lowered,
            }
        )
        if granted.lowered and requested is not None:
            self.span.set_attribute(attr.STRICT_REQUESTED_MAX_TOKENS, requested)

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
        self._write(self._record_of(self.results.of_response(response)))

    async def finish_async(self, response: Any) -> None:
        """The same for an async call, with the store's work off the event loop.

        Usage and price are worked out here (CPU only); the store write and the span's end
        run in the worker thread, and the caller gets its result once the record is durable
        (in the store, or in its spill journal): a process killed right after an
        ``asyncio.gather`` returned has lost none of its calls. While writes wait in the
        worker, their cost is held in the budget view, so concurrent calls' checks count it.
        """
        found = self.results.of_response(response)
        store = None
        with _RECORDING:
            # The store in use now, though the write runs later: a set_store() in between
            # does not move this call's record to another store.
            store = _runtime.get_store()
        if not prices_loaded():
            # The first call loads genai-prices' data, too slow for the event loop. Priced
            # and written in one job, which runs even if the caller is cancelled meanwhile.
            await worker.run(self.finish_with, found, store)
            return
        call = self._record_of(found)
        end_ns = time.time_ns()
        held = None
        with _RECORDING:
            held = self._hold(call)
        await worker.run(self._write, call, store, end_ns, held)

    def _hold(self, call: CallRecord | None) -> int | None:
        """Hold an async call's cost in the budget view until its write lands; the ticket."""
        scopes = self.plan.scopes(self.budget_key)
        if call is None or not scopes:
            return None
        # The scopes of a call share one reset, so one period.
        period = period_key(scopes[0].spec.reset, call.started_at)
        key = scopes[-1].key
        return _runtime.writer().view.hold(call.project, period, call.cost_nanos, key)

    def finish_with(self, found: ExtractedUsage, store: BaseStore | None = None) -> None:
        """Usage already known (integrations' callbacks): record it and end the span."""
        self._write(self._record_of(found), store)

    def finish_stream(
        self,
        stream: StreamAccumulator,
        error: BaseException | None,
        request_hint: Callable[[], str] = lambda: "",
    ) -> None:
        """A stream ended (exhausted, closed, broken or collected): record what is known.
        ``request_hint`` reads the prompt text from elsewhere when usage must be estimated."""
        cut = isinstance(error, BudgetExceededError)  # closed at its reservation
        found = self.results.of_stream(stream, request_hint, cut=cut)
        if error is not None:
            mark_error(self.span, error)
        self._write(self._record_of(found))

    def fail(self, error: BaseException) -> None:
        """The wrapped function raised: nothing was priced; record the failure and end."""
        from llm_toll.telemetry import (
            _metrics as metrics,  # failures only: not imported by every program
        )

        try:
            if self.lease is not None:
                self.lease.release()
            self._release_reservation()
            mark_error(self.span, error)
            model = self.plan.model or UNKNOWN_MODEL
            with _FAILURE_METRICS:
                metrics.record_failure(
                    attr.DEFAULT_OPERATION,
                    model,
                    time.perf_counter() - self.t0,
                    type(error).__name__,
                )
        finally:
            end_span(self.span)
            self._done(error)

    # -- internals -------------------------------------------------------------------------

    def _take_reservation(self) -> Reservation | None:
        """The reservation, handed out once: whoever takes it settles or releases it."""
        reservation, self.reservation = self.reservation, None
        return reservation

    def _release_reservation(self) -> None:
        reservation = self._take_reservation()
        if reservation is not None:
            from llm_toll._call import strict  # strict budgets only

            strict.release(reservation)

    def _record_of(self, found: ExtractedUsage | None) -> CallRecord | None:
        """Price what was found, and settle the rate-limit lease with the real token count."""
        call = None if found is None else self._price(found)
        if call is not None and self.run is not None:
            self.run.add(call.cost_nanos)
        if self.lease is not None:
            self.lease.settle(0 if call is None else call.usage.total_tokens)
        return call

    def _write(
        self,
        call: CallRecord | None,
        store: BaseStore | None = None,
        end_ns: int | None = None,
        held: int | None = None,
    ) -> None:
        """Record the call through the writer, then end its span (at ``end_ns`` if given).

        Never raises: the one guard of recording a call. The writer keeps a record the store
        refuses; any other failure here is an ``AccountingWarning``."""
        try:
            with _RECORDING:
                self._record(call, store, held)
        finally:
            end_span(self.span, self.timed.end_ns if end_ns is None and self.timed else end_ns)
            self._done(None)

    def _record(self, call: CallRecord | None, store: BaseStore | None, held: int | None) -> None:
        if call is None or not claims.claim(call.response_id, self.by):
            # Nothing recorded (or a framework's callback recorded this response first):
            # give the reservation back.
            self._release_reservation()
            return
        if self.request_model is None and self.span.is_recording():
            # Unknown when the span started: the model priced is what was asked for.
            self.span.set_attribute(attr.REQUEST_MODEL, call.model)
        plan = self.plan
        write = PendingWrite(
            call,
            plan.budget,
            plan.key_budget if call.budget_key else None,
            self._take_reservation(),
        )
        _runtime.writer().record(
            self.span,
            write,
            store=store,
            held=held,
            key_in_metrics=plan.key_in_metrics,
            alerts=plan.alerts,
        )

    def _done(self, error: BaseException | None) -> None:
        """Tell the run: its request is recorded (or failed); its return value's call ends
        the run."""
        run = self.run
        if run is None:
            return
        if self.granted is not None:
            run.unhold(self.granted.run_held)
        if self.ends_run:
            run.end(error)
        else:
            run.untrack()

    def _duration_s(self) -> float:
        if self.timed is not None:
            return max(0, self.timed.end_ns - self.timed.start_ns) / 1e9
        return time.perf_counter() - self.t0

    def _price(self, found: ExtractedUsage) -> CallRecord:
        plan = self.plan
        model = plan.model or found.model or self.request_model or UNKNOWN_MODEL
        call, clamped = priced_call(
            found,
            project=plan.project,
            model=model,
            started_at=self.started_at,
            duration_s=self._duration_s(),
            budget_key=self.budget_key,
            run_id=None if self.run is None else self.run.id,
        )
        if clamped:
            warn_once(
                f"cost-clamped:{plan.name}",
                f"llm_toll: a call of {plan.name}() in project '{plan.project}' to model "
                f"{model!r} was priced above ${nanos_to_usd(MAX_CALL_COST_NANOS):,.0f}, more "
                "than one call's record may hold; it is recorded at that amount and flagged "
                "llm_toll.price.known=false.",
                AccountingWarning,
            )
        return call
