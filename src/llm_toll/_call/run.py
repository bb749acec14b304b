"""Runs: the scope of a budget. A call of a ``@track_costs`` function is a run, and so is a
``with llm_toll.run(...)`` block. Every provider request made inside one (at any depth,
across awaits, in tasks and copied contexts) belongs to it: the current run is a context
variable, which asyncio copies into tasks and ``asyncio.to_thread`` into its thread.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import Reservation
from llm_toll._call.admission import Lease
from llm_toll._call.call import Call
from llm_toll._call.gates import Admission
from llm_toll._call.plan import Plan
from llm_toll._call.run_log import ended, new_run_id
from llm_toll.exceptions import BudgetExceededError
from llm_toll.telemetry import _names as attr
from llm_toll.telemetry._spans import end_span, mark_error, start_run_span

_current: ContextVar[Run | None] = ContextVar("llm_toll_run", default=None)
# Guards what strict requests hold under run caps: a check of the room and the hold that
# takes it are one step, across every run of the chain.
_holds = threading.Lock()
_process_run: Run | None = None
"""The run of requests made outside any other (``instrument(project=...)``)."""


def current_run() -> Run | None:
    """The run a request made here belongs to; None when there is none (one context
    variable read: the whole cost of a request made outside any run)."""
    return _current.get() or _process_run


def set_process_run(run: Run | None) -> None:
    global _process_run
    _process_run = run


class CapsLeft(NamedTuple):
    """What the tightest cap around a run leaves, in nano-USD."""

    left: int
    """The cap less what the run's requests have cost."""
    free: int
    """``left`` less what strict requests in flight hold."""


class Run:
    """One run: its plan, its span, its cap, and the totals of the requests made in it."""

    __slots__ = (
        "_ended",
        "_error",
        "_lock",
        "_open",
        "_returned",
        "admission",
        "args",
        "cost_nanos",
        "held_nanos",
        "id",
        "kwargs",
        "max_cost_nanos",
        "name",
        "parent",
        "plan",
        "recorded",
        "requests",
        "span",
        "started_ns",
        "t0",
    )

    def __init__(
        self,
        plan: Plan,
        admission: Admission,
        *,
        name: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        max_cost_nanos: int | None = None,
        span: bool = True,
    ) -> None:
        self.plan = plan
        self.admission = admission
        """The run's own admission: its budget key, and the rate lease and reservation it
        holds until its first request takes them over (or its end gives them back)."""
        self.name = name
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        self.max_cost_nanos = max_cost_nanos
        self.parent = _current.get()
        self.id = new_run_id() if span else None
        """Named by its requests' ledger rows and by its row in ``runs``; the process's run
        (``instrument(project=...)``, no span, never ends) has none."""
        self.cost_nanos = 0
        self.held_nanos = 0
        """The worst cases of this run's strict requests in flight (and its inner runs')."""
        self.requests = 0
        """Hooked requests made in this run (refused ones included)."""
        self.recorded = 0
        """Requests recorded in this run and the runs inside it."""
        self._lock = threading.Lock()
        self._open = 0  # requests sent and not yet recorded (a stream still being read)
        self._returned = False
        self._ended = False
        self._error: BaseException | None = None
        self.started_ns = time.time_ns()
        self.t0 = time.perf_counter()
        self.span = start_run_span(self) if span else trace.INVALID_SPAN

    @property
    def budget_key(self) -> str | None:
        return self.admission.budget_key

    @property
    def cost(self) -> float:
        """USD recorded so far by the requests of this run and of the runs inside it."""
        return nanos_to_usd(self.cost_nanos)

    # -- the context of the code that runs inside -------------------------------------------

    def enter(self) -> tuple[Token[Run | None], object]:
        """Make this run current (and its span), for the code of the run."""
        token = _current.set(self)
        span_token = None
        if self.span is not trace.INVALID_SPAN:
            span_token = otel_context.attach(trace.set_span_in_context(self.span))
        return token, span_token

    @staticmethod
    def exit(tokens: tuple[Token[Run | None], object]) -> None:
        token, span_token = tokens
        if span_token is not None:
            otel_context.detach(span_token)  # type: ignore[arg-type]
        _current.reset(token)

    # -- requests -----------------------------------------------------------------------------

    def refusal(self, *, strict: bool = False) -> BudgetExceededError | None:
        """The refusal of a request because this run or an enclosing one has reached its
        cap; None when every cap has room. ``strict``: the run with the least room left
        for a strict request's worst case (what its requests in flight hold counts)."""
        if strict:
            with _holds:
                tightest = min(self._capped(), key=Run._room, default=None)
            return None if tightest is None else tightest._cap_refusal()
        for run in self._capped():
            if run.max_cost_nanos is not None and run.cost_nanos >= run.max_cost_nanos:
                return run._cap_refusal()
        return None

    def _capped(self) -> list[Run]:
        """This run and the runs around it that have a cap."""
        found: list[Run] = []
        run: Run | None = self
        while run is not None:
            if run.max_cost_nanos is not None:
                found.append(run)
            run = run.parent
        return found

    def _room(self) -> int:
        assert self.max_cost_nanos is not None
        return self.max_cost_nanos - self.cost_nanos - self.held_nanos

    def _cap_refusal(self) -> BudgetExceededError:
        cap = self.max_cost_nanos or 0
        held = ""
        if self.held_nanos:
            held = f" + ${nanos_to_usd(self.held_nanos):.6f} held by requests in flight"
        return BudgetExceededError(
            f"Run cap reached for run '{self.name}' of project '{self.plan.project}': "
            f"${nanos_to_usd(self.cost_nanos):.6f} spent{held}, cap ${nanos_to_usd(cap):.6f}",
            project=self.plan.project,
            current_cost=nanos_to_usd(self.cost_nanos),
            max_budget=nanos_to_usd(cap),
            scope="run",
        )

    def caps_left(self) -> CapsLeft | None:
        """What the tightest cap around this run leaves; None without caps."""
        with _holds:
            capped = self._capped()
            if not capped:
                return None
            left = min(run.max_cost_nanos - run.cost_nanos for run in capped)  # type: ignore[operator]
            return CapsLeft(left, min(run._room() for run in capped))

    def hold(self, amount: int) -> bool:
        """Hold ``amount`` for a strict request under every cap around this run, if each has
        that much room left; False (nothing held) when one has not."""
        with _holds:
            capped = self._capped()
            if any(run._room() < amount for run in capped):
                return False
            run: Run | None = self
            while run is not None:
                run.held_nanos += amount
                run = run.parent
            return True

    def unhold(self, amount: int) -> None:
        """A strict request's hold ends (it is recorded, failed or refused)."""
        if not amount:
            return
        with _holds:
            run: Run | None = self
            while run is not None:
                run.held_nanos -= amount
                run = run.parent

    def start_request(self) -> Reservation | None:
        """Count a request made in this run; the first hands back the run's strict
        reservation (made for the whole call before it ran), which the caller releases:
        each request reserves its own worst case."""
        with self._lock:
            self.requests += 1
            reservation = self.admission.reservation
            if reservation is not None:
                self.admission = self.admission._replace(reservation=None)
        return reservation

    def take_lease(self) -> Lease | None:
        """The run's rate admission, for its first request: a function that makes one
        request counts once against ``rate_limit``, as in llm-toll 0.13."""
        with self._lock:
            lease = self.admission.lease
            if lease is not None:
                self.admission = self.admission._replace(lease=None)
        return lease

    def add(self, cost_nanos: int) -> None:
        """A request of this run was recorded: its cost counts here and in every enclosing
        run."""
        run: Run | None = self
        while run is not None:
            with run._lock:
                run.cost_nanos += cost_nanos
                run.recorded += 1
            run = run.parent

    def fallback_call(self) -> Call:
        """The run's return value as its one request, when it made no hooked request: a
        call admitted with the run, begun when the run began, whose end ends the run."""
        plan = self.plan
        if plan.strict and self.admission.reservation is None and plan.scopes(self.budget_key):
            from llm_toll._call import strict  # say why it had no reservation

            strict.worst_case_nanos(plan, self.args, self.kwargs, self.admission.started_at)
        return Call(
            self.plan, self.args, self.kwargs, self.admission, run=self, t0=self.t0, ends_run=True
        )

    # -- the end ------------------------------------------------------------------------------

    def release_unused(self) -> None:
        """Give back what the run was admitted with and no request took (its requests were
        refused before they needed it)."""
        lease = self.take_lease()
        if lease is not None:
            lease.release()

    def track(self) -> None:
        """A request of this run was sent; the run's span waits for its record."""
        with self._lock:
            self._open += 1

    def untrack(self) -> None:
        """A request of this run was recorded (or failed)."""
        with self._lock:
            self._open -= 1
            done = self._returned and self._open == 0 and not self._ended
            self._ended = self._ended or done
        if done:
            self._finish()

    def end(self, error: BaseException | None = None) -> None:
        """The run's code is done (returned, or raised ``error``). Its span ends with the
        run's totals once the requests it sent are recorded too: a stream it returned may
        still be read."""
        with self._lock:
            self._returned = True
            self._error = error
            done = self._open == 0 and not self._ended
            self._ended = self._ended or done
        if done:
            self._finish()

    def _finish(self) -> None:
        if self.id is not None:
            ended(self, self._error)  # its row, written off the call path
        self._end_span()

    def _end_span(self) -> None:
        span = self.span
        if span is trace.INVALID_SPAN:
            return
        if self._error is not None:
            mark_error(span, self._error)
        span.set_attributes(
            {
                attr.RUN_COST: nanos_to_usd(self.cost_nanos),
                attr.RUN_REQUESTS: self.recorded,
            }
        )
        end_span(span)
