"""CostSpanProcessor: the one writer of finished calls into the budget store.

Each finished call is recorded once, right before its span ends: one store transaction
appends it to the ledger and updates the running totals of its budget period; the resulting
budget state and any threshold or budget-exceeded events are stamped on the still-open span
(the SDK freezes a span's attributes before ``on_end``, so this is the last moment exporters
can be shown them); then metrics are recorded. Async calls end their spans off the event
loop, so this write never runs on it.

Accounting does not depend on tracing: a call whose span was dropped by the app's sampler
(or made with no SDK at all) is recorded the same way.

If the store cannot be written (locked past its timeout, disk full...), the record is kept
in memory and written with the next call or on ``force_flush``/exit: nothing is lost, and
the app is told once per cause.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import Span

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import BudgetState, CallRecord, PendingWrite
from llm_toll._budget.view import BudgetView
from llm_toll._warnings import Guard, warn_once
from llm_toll.exceptions import AccountingWarning, TelemetryWarning
from llm_toll.reporter import CostReporter
from llm_toll.store import BaseStore, StoreError
from llm_toll.telemetry import metrics
from llm_toll.telemetry.spans import annotate_call

# Records kept in memory while the store is failing, before the oldest are dropped.
MAX_SPOOLED = 1_000_000
_REPORTING = Guard("reporter", "print a call's cost", TelemetryWarning)


def _apply(store: BaseStore, write: PendingWrite) -> BudgetState:
    """The one store transaction of a call."""
    if write.reservation is not None:
        return store.settle_reservation(write.reservation, write.call)
    return store.record_call(write.call, write.budget, write.key_budget)


class CostSpanProcessor(SpanProcessor):
    """Records finished calls in the budget store and keeps this process's budget view.

    Attached once to every SDK TracerProvider that llm_toll's spans go through; the records
    themselves are written by :meth:`record`, right before each call's span ends.
    """

    def __init__(
        self, store: Callable[[], BaseStore], reporter: Callable[[], CostReporter]
    ) -> None:
        self._store = store
        self._reporter = reporter
        self._spool: deque[tuple[BaseStore, PendingWrite]] = deque()
        self._spool_lock = threading.Lock()
        self.view = BudgetView()

    # -- the write ------------------------------------------------------------------------

    def record(
        self,
        span: Span | None,
        write: PendingWrite,
        *,
        store: BaseStore | None = None,
        held: int | None = None,
        key_in_metrics: bool = False,
    ) -> BudgetState | None:
        """Record ``write.call`` exactly once, then annotate the span and record metrics.

        ``store`` overrides the process-wide store (integrations configured with their own).
        ``held`` is the ticket of the call's cost held in the view (see BudgetView.hold),
        released once the write has landed. ``key_in_metrics`` puts the call's budget key on
        the cost and budget metrics. Never raises: store, span and metric failures are
        warned about, not propagated.
        """
        call = write.call
        state = self._write(store or self._store(), write, held)
        if span is not None and span.is_recording():
            try:
                annotate_call(
                    span, call, budget=write.budget, state=state, key_budget=write.key_budget
                )
            except Exception as exc:  # a broken span must not break the app
                warn_once("span-attributes", f"llm_toll could not annotate a span: {exc!r}",
                          TelemetryWarning)  # fmt: skip
        try:
            metrics.record_call(call, with_key=key_in_metrics)
            if write.budget is not None and state is not None:
                metrics.record_budget(call.project, write.budget, state)
            key_state = None if state is None else state.key_state
            if key_in_metrics and write.key_budget is not None and key_state is not None:
                metrics.record_budget(call.project, write.key_budget, key_state, call.budget_key)
        except Exception as exc:
            warn_once("metrics", f"llm_toll could not record metrics: {exc!r}", TelemetryWarning)
        reporter = self._reporter()
        if reporter.enabled:
            with _REPORTING:
                reporter.report_call(
                    call.model,
                    call.usage.input_tokens,
                    call.usage.output_tokens,
                    nanos_to_usd(call.cost_nanos),
                )
        return state

    def _write(self, store: BaseStore, write: PendingWrite, held: int | None) -> BudgetState | None:
        state = None
        try:
            if self._spool and not self._drain():
                self._keep(store, write)
                return None
            state = _apply(store, write)
        except ValueError as exc:  # a record no store can hold; callers validate first
            warn_once("store-invalid", f"llm_toll could not record a call: {exc}",
                      AccountingWarning)  # fmt: skip
            if write.reservation is not None:  # else the store gives it back after its TTL
                with contextlib.suppress(Exception):
                    store.release_reservation(write.reservation)
        except StoreError as exc:
            self._keep(store, write)
            warn_once(
                f"store-write:{type(exc.__cause__).__name__}",
                f"llm_toll could not record a call ({exc}); it is kept in memory and will "
                "be written when the store is writable again.",
                AccountingWarning,
            )
        finally:
            if state is not None:  # the new total first, so the cost is never missed
                self._remember(write.call, state)
            if held is not None:
                self.view.release(held)
        return state

    def _remember(self, call: CallRecord, state: BudgetState) -> None:
        self.view.remember(call.project, state.period, state.spent_nanos)
        key_state = state.key_state
        if key_state is not None and call.budget_key:
            self.view.remember(
                call.project, key_state.period, key_state.spent_nanos, call.budget_key
            )

    def _keep(self, store: BaseStore, write: PendingWrite) -> None:
        with self._spool_lock:
            if len(self._spool) >= MAX_SPOOLED:
                self._spool.popleft()
                warn_once("spool-full", "llm_toll's in-memory spool is full: the oldest "
                          "unwritten record was dropped.", AccountingWarning)  # fmt: skip
            self._spool.append((store, write))

    def _drain(self) -> bool:
        """Write spooled records in order; False if the store still fails."""
        with self._spool_lock:
            while self._spool:
                store, write = self._spool[0]
                try:
                    state = _apply(store, write)
                except StoreError:
                    return False
                self._spool.popleft()
                self._remember(write.call, state)
        return True

    @property
    def pending(self) -> int:
        """Records waiting in memory for the store to become writable."""
        return len(self._spool)

    # -- SpanProcessor --------------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do: calls are recorded before their span ends (see module docstring)."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write records the store refused earlier; True when none is left waiting."""
        return not self._spool or self._drain()

    def shutdown(self) -> None:
        self.force_flush()
