"""CostSpanProcessor: the one writer of decorated calls into the budget store.

Each finished call is settled once, right before its span ends: one store transaction
records it and updates the running total of its budget period; the resulting budget state
and any threshold or budget-exceeded events are stamped on the still-open span (the SDK
freezes a span's attributes before ``on_end``, so this is the last moment exporters can be
shown them); then metrics are recorded. The decorator ends spans off the event loop, so
this write never runs on it.

Accounting does not depend on tracing: a call whose span was dropped by the app's sampler
(or made with no SDK at all) is settled the same way with ``span=None``.

If the store cannot be written (locked past its timeout, disk full...), the record is kept
in memory and written with the next call or on ``force_flush``/exit: nothing is lost, and
the app is told once per cause.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import Span

from llm_toll import attributes as attr
from llm_toll import metrics
from llm_toll.exceptions import AccountingWarning, TelemetryWarning
from llm_toll.money import nanos_to_usd
from llm_toll.records import BudgetSpec, BudgetState, CallRecord, Reservation
from llm_toll.reporter import CostReporter
from llm_toll.store import BaseStore, StoreError
from llm_toll.warn import warn_once

# A budget total this process read or wrote less than this long ago may answer an async
# pre-call check without another trip to the store (see BudgetView).
VIEW_MAX_AGE_S = 1.0
# Totals kept in the view beyond which those too old to be used are dropped (budget keys
# can be many: one per tenant).
VIEW_MAX_ENTRIES = 10_000
# Records kept in memory while the store is failing, before the oldest are dropped.
MAX_SPOOLED = 1_000_000


class BudgetView:
    """This process's latest knowledge of budget totals, for the pre-call check.

    Every store write returns the store's new total, which includes what other threads and
    processes spent, so a total learned at the end of the previous call is as good as a
    read at the start of this one, up to concurrent spend that a read could race with
    anyway. Totals older than VIEW_MAX_AGE_S are not used.

    Async calls hand their store write to the worker thread and return at once; until the
    write lands, their cost is *held* here, so the next call's check already counts it.

    No lock: the event loop and the worker thread touch it on every call, and a lock they
    both take makes one wait out the other's GIL time slice. Each change is a single dict
    store or pop, which CPython performs atomically.
    """

    def __init__(self) -> None:
        # (project, budget key or '' for the project itself, period) -> (total, when)
        self._totals: dict[tuple[str, str, str], tuple[int, float]] = {}
        self._held: dict[int, tuple[tuple[tuple[str, str, str], ...], int]] = {}
        self._tickets = itertools.count()
        self._prune_at = VIEW_MAX_ENTRIES

    def remember(self, project: str, period: str, spent_nanos: int, key: str = "") -> None:
        """A total just read from or written to the store."""
        now = time.monotonic()
        self._totals[(project, key, period)] = (spent_nanos, now)
        if len(self._totals) > self._prune_at:  # many budget keys: forget stale totals
            for scope, (_, seen) in list(self._totals.items()):
                if now - seen > VIEW_MAX_AGE_S:
                    self._totals.pop(scope, None)
            # Amortised: the next sweep waits until the view has doubled again.
            self._prune_at = max(VIEW_MAX_ENTRIES, 2 * len(self._totals))

    def hold(self, project: str, period: str, nanos: int, key: str | None = None) -> int:
        """Count ``nanos`` as spent by the project (and by its budget ``key``, if given)
        until ``release(ticket)``; returns the ticket."""
        scopes: tuple[tuple[str, str, str], ...] = ((project, "", period),)
        if key:
            scopes += ((project, key, period),)
        ticket = next(self._tickets)
        self._held[ticket] = (scopes, nanos)
        return ticket

    def release(self, ticket: int) -> None:
        self._held.pop(ticket, None)

    def held(self, project: str, period: str, key: str = "") -> int:
        scope = (project, key, period)
        return sum(nanos for scopes, nanos in list(self._held.values()) if scope in scopes)

    def recent(self, project: str, period: str, key: str = "") -> int | None:
        """Total plus held cost, if the total is recent; else None (read the store)."""
        entry = self._totals.get((project, key, period))
        if entry is None or time.monotonic() - entry[1] > VIEW_MAX_AGE_S:
            return None
        return entry[0] + (self.held(project, period, key) if self._held else 0)

    def clear(self) -> None:
        self._totals.clear()
        self._held.clear()


class CostSpanProcessor(SpanProcessor):
    def __init__(
        self, store: Callable[[], BaseStore], reporter: Callable[[], CostReporter]
    ) -> None:
        self._store = store
        self._reporter = reporter
        self._spool: deque[_Spooled] = deque()
        self._spool_lock = threading.Lock()
        self.view = BudgetView()

    # -- the write ------------------------------------------------------------------------

    def settle(
        self,
        span: Span | None,
        call: CallRecord,
        budget: BudgetSpec | None,
        store: BaseStore | None = None,
        held: int | None = None,
        key_budget: BudgetSpec | None = None,
        key_in_metrics: bool = False,
        reservation: Reservation | None = None,
    ) -> BudgetState | None:
        """Record ``call`` exactly once, then stamp the span and record metrics.

        ``store`` overrides the process-wide store (integrations configured with their own).
        ``held`` is the ticket of the call's cost held in the view (see BudgetView.hold),
        released once the write has landed. ``key_budget`` is the budget of the call's
        ``budget_key``; ``key_in_metrics`` puts that key on the cost and budget metrics.
        ``reservation`` is a strict call's budget reservation: the call is then recorded
        with ``settle_reservation``, which releases it in the same transaction.
        Never raises: store, span and metric failures are warned about, not propagated.
        """
        state = self._write(store or self._store(), (call, budget, key_budget, reservation), held)
        if span is not None and span.is_recording():
            try:
                stamp_call(span, call, budget, state, key_budget)
            except Exception as exc:  # a broken span must not break the app
                warn_once("span-attributes", f"llm_toll could not annotate a span: {exc!r}",
                          TelemetryWarning)  # fmt: skip
        try:
            metrics.record_call(call, with_key=key_in_metrics)
            if budget is not None and state is not None:
                metrics.record_budget(call.project, budget, state)
            key_state = None if state is None else state.key_state
            if key_in_metrics and key_budget is not None and key_state is not None:
                metrics.record_budget(call.project, key_budget, key_state, call.budget_key)
        except Exception as exc:
            warn_once("metrics", f"llm_toll could not record metrics: {exc!r}", TelemetryWarning)
        reporter = self._reporter()
        if reporter.enabled:
            reporter.report_call(
                call.model,
                call.usage.input_tokens,
                call.usage.output_tokens,
                nanos_to_usd(call.cost_nanos),
            )
        return state

    def _write(self, store: BaseStore, write: _Write, held: int | None) -> BudgetState | None:
        call = write[0]
        state = None
        try:
            if self._spool and not self._drain():
                self._keep(store, write)
                return None
            state = _record(store, *write)
        except ValueError as exc:  # a record no store can hold; callers validate first
            warn_once("store-invalid", f"llm_toll could not record a call: {exc}",
                      AccountingWarning)  # fmt: skip
            reservation = write[3]
            if reservation is not None:  # else the store gives it back after its TTL
                with contextlib.suppress(Exception):
                    store.release_reservation(reservation)
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
                self._remember(call, state)
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

    def _keep(self, store: BaseStore, write: _Write) -> None:
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
                    state = _record(store, *write)
                except StoreError:
                    return False
                self._spool.popleft()
                self._remember(write[0], state)
        return True

    @property
    def pending(self) -> int:
        """Records waiting in memory for the store to become writable."""
        return len(self._spool)

    # -- SpanProcessor --------------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do: calls are settled before their span ends (see module docstring)."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write records the store refused earlier; True when none is left waiting."""
        return not self._spool or self._drain()

    def shutdown(self) -> None:
        self.force_flush()


_Write = tuple[CallRecord, BudgetSpec | None, BudgetSpec | None, Reservation | None]
"""One record to write: the call, its budgets and its reservation (strict calls)."""
_Spooled = tuple[BaseStore, _Write]


def _record(
    store: BaseStore,
    call: CallRecord,
    budget: BudgetSpec | None,
    key_budget: BudgetSpec | None,
    reservation: Reservation | None = None,
) -> BudgetState:
    if reservation is not None:
        return store.settle_reservation(reservation, call)
    if key_budget is None or not call.budget_key:
        # Stores written for llm_toll before budget keys take two arguments.
        return store.record_call(call, budget)
    return store.record_call(call, budget, key_budget)


def stamp_call(
    span: Span,
    call: CallRecord,
    budget: BudgetSpec | None,
    state: BudgetState | None,
    key_budget: BudgetSpec | None = None,
) -> None:
    """Set the usage, cost and budget attributes and events of a finished call on its span."""
    usage = call.usage
    span.update_name(f"{call.operation} {call.model}")
    attributes: dict[str, str | int | float | bool] = {
        attr.OPERATION: call.operation,
        attr.RESPONSE_MODEL: call.model,
        attr.INPUT_TOKENS: usage.input_tokens,
        attr.OUTPUT_TOKENS: usage.output_tokens,
        attr.COST_AMOUNT: nanos_to_usd(call.cost_nanos),
        attr.COST_CURRENCY: attr.CURRENCY,
        attr.COST_SOURCE: "local",
        attr.PRICE_KNOWN: call.price_known,
        attr.USAGE_ESTIMATED: call.estimated,
    }
    if call.provider:
        attributes[attr.PROVIDER] = call.provider
    if call.response_id:
        attributes[attr.RESPONSE_ID] = call.response_id
    if usage.cache_read_input_tokens:
        attributes[attr.CACHE_READ_TOKENS] = usage.cache_read_input_tokens
    if usage.cache_creation_input_tokens:
        attributes[attr.CACHE_CREATION_TOKENS] = usage.cache_creation_input_tokens
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
