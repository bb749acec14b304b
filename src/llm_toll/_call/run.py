"""Runs: the scope of a budget. A call of a ``@track_costs`` function is a run, and so is a
``with llm_toll.run(...)`` block. Every provider request made inside one (at any depth,
across awaits, in tasks and copied contexts) belongs to it: the current run is a context
variable, which asyncio copies into tasks and ``asyncio.to_thread`` into its thread.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import Reservation
from llm_toll._call.admission import Lease
from llm_toll._call.call import Call
from llm_toll._call.gates import Admission
from llm_toll._call.plan import Plan
from llm_toll.exceptions import BudgetExceededError
from llm_toll.telemetry import names as attr
from llm_toll.telemetry.spans import mark_error, start_run_span

_current: ContextVar[Run | None] = ContextVar("llm_toll_run", default=None)
_process_run: Run | None = None
"""The run of requests made outside any other (``instrument(project=...)``)."""


def current_run() -> Run | None:
    """The run a request made here belongs to; None when there is none (one context
    variable read: the whole cost of a request made outside any run)."""
    return _current.get() or _process_run


def set_process_run(run: Run | None) -> None:
    global _process_run
    _process_run = run


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
        self.cost_nanos = 0
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

    def refusal(self) -> BudgetExceededError | None:
        """The refusal of a request because this run or an enclosing one has reached its
        cap; None when every cap has room."""
        run: Run | None = self
        while run is not None:
            cap = run.max_cost_nanos
            if cap is not None and run.cost_nanos >= cap:
                return BudgetExceededError(
                    f"Run cap reached for run '{run.name}' of project '{run.plan.project}': "
                    f"${nanos_to_usd(run.cost_nanos):.6f} >= ${nanos_to_usd(cap):.6f}",
                    project=run.plan.project,
                    current_cost=nanos_to_usd(run.cost_nanos),
                    max_budget=nanos_to_usd(cap),
                    scope="run",
                )
            run = run.parent
        return None

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
            self._end_span()

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
        span.end()
