"""CostSpanProcessor: the one writer of finished calls into the budget store.

Each finished call is recorded once, right before its span ends: one store transaction
appends it to the ledger and updates the running totals of its budget period; the resulting
budget state and any threshold or budget-exceeded events are stamped on the still-open span
(the SDK freezes a span's attributes before ``on_end``, so this is the last moment exporters
can be shown them); then metrics are recorded. Async calls end their spans off the event
loop, so this write never runs on it.

Accounting does not depend on tracing: a call whose span was dropped by the app's sampler
(or made with no SDK at all) is recorded the same way.

If the store cannot be written (locked past its timeout, read-only, disk full, down...), the
record goes to the store's spill journal (``journal.py``; ``spill.py``: where a record
waits), on disk before the call returns, and is written to the store, exactly once, by the
first write that finds the store working again: in this process, or in the next one that
uses the store. A store without a journal
(one written for llm-toll 0.13), or a journal that cannot be written, keeps the record in
memory until then or exit. The app is told once per cause, and at exit where records wait.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import Span

from llm_toll._budget import foreign
from llm_toll._budget.journal import Entry, ReplayStopped, SpillJournal
from llm_toll._budget.limits import reported
from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import BudgetState, CallRecord, PendingWrite
from llm_toll._budget.spill import Spill, SpilledAlerts, webhook_of
from llm_toll._budget.view import BudgetView
from llm_toll._warnings import Guard, warn_once
from llm_toll.alerts._fire import after_write, crossed
from llm_toll.alerts._options import AlertOptions
from llm_toll.exceptions import AccountingWarning, TelemetryWarning
from llm_toll.reporter import CostReporter
from llm_toll.store import BaseStore, StoreError
from llm_toll.telemetry import _metrics as metrics
from llm_toll.telemetry._providers import metrics_wanted
from llm_toll.telemetry._spans import annotate_call, end_span

if TYPE_CHECKING:
    from llm_toll.store._sql import SQLStore

_REPORTING = Guard("reporter", "print a call's cost", TelemetryWarning)


class AlreadyRecorded(Exception):
    """A write with a ``record_id`` the store had written before: nothing was written."""


def _apply(store: BaseStore, write: PendingWrite) -> BudgetState:
    """The one store transaction of a call; AlreadyRecorded for a record id seen before."""
    if write.record_id is not None:
        replay = getattr(store, "replay_spilled", None)  # a store that keeps record ids
        if replay is not None:
            state: BudgetState | None = replay(write, write.record_id)
            if state is None:
                raise AlreadyRecorded(write.record_id)
            return state
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
        self._spills: weakref.WeakKeyDictionary[BaseStore, Spill] = weakref.WeakKeyDictionary()
        self._exit_registered = False
        self.view = BudgetView()
        self._spilled_alerts = SpilledAlerts()

    # -- the write ------------------------------------------------------------------------

    def record(
        self,
        span: Span | None,
        write: PendingWrite,
        *,
        store: BaseStore | None = None,
        held: int | None = None,
        key_in_metrics: bool = False,
        cost_metrics_only: bool = False,
        alerts: AlertOptions | None = None,
    ) -> BudgetState | None:
        """Record ``write.call`` exactly once, then annotate the span and record metrics,
        and queue the alerts of the thresholds its write crossed (to ``alerts``, and to
        ``LLM_TOLL_ALERT_WEBHOOK``).

        ``store`` overrides the process-wide store (integrations configured with their own).
        ``held`` is the ticket of the call's cost held in the view (see BudgetView.hold),
        released once the write has landed. ``key_in_metrics`` puts the call's budget key on
        the cost and budget metrics; ``cost_metrics_only`` leaves out its token and duration
        metrics (another instrumentation's span: it records its own). Never raises: store,
        span and metric failures are warned about, not propagated.
        """
        target = store or self._store()
        state = self._write(target, write, held, alerts)
        self._publish(
            target,
            span,
            write,
            state,
            key_in_metrics=key_in_metrics,
            cost_metrics_only=cost_metrics_only,
        )
        if state is not None and crossed(state):
            after_write(alerts, write.call, state)
        return state

    def record_once(self, write: PendingWrite, start_span: Callable[[], Span]) -> bool:
        """Record ``write``, which has a ``record_id``, unless a write with that id was
        recorded before: then False, and nothing else happens. Else its span is started
        by ``start_span``, annotated and ended, and its metrics recorded, as ``record``
        does. A store that keeps no record ids (one written for llm-toll 0.13) records it
        every time. Never raises for store, span or metric failures."""
        store = self._store()
        try:
            state = self._write(store, write, None)
        except AlreadyRecorded:
            return False
        span = start_span()
        try:
            self._publish(store, span, write, state, key_in_metrics=False)
        finally:
            end_span(span)
        return True

    def _publish(
        self,
        store: BaseStore,
        span: Span | None,
        write: PendingWrite,
        state: BudgetState | None,
        *,
        key_in_metrics: bool,
        cost_metrics_only: bool = False,
    ) -> None:
        """A recorded call on its span, in the metrics (its budgets' forecasts read
        ``store``) and the reporter's line."""
        combined = write
        write = reported(write, state)  # of limits kept in the store too, the binding one
        call = write.call
        if span is not None and span.is_recording():
            try:
                annotate_call(
                    span, call, budget=write.budget, state=state, key_budget=write.key_budget
                )
            except Exception as exc:  # a broken span must not break the app
                warn_once("span-attributes", f"llm_toll could not annotate a span: {exc!r}",
                          TelemetryWarning)  # fmt: skip
        try:
            if metrics_wanted():  # asked once here, not by each instrument
                self._measure(
                    store,
                    write,
                    combined,
                    state,
                    key_in_metrics=key_in_metrics,
                    cost_metrics_only=cost_metrics_only,
                )
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

    @staticmethod
    def _measure(
        store: BaseStore,
        write: PendingWrite,
        combined: PendingWrite,
        state: BudgetState | None,
        *,
        key_in_metrics: bool,
        cost_metrics_only: bool,
    ) -> None:
        """A recorded call's metrics, and its budgets' gauges and forecasts (read from
        ``store``); ``combined``: the write before the binding limit was chosen."""
        call = write.call
        if cost_metrics_only:
            metrics.record_cost(call, with_key=key_in_metrics)
        else:
            metrics.record_call(call, with_key=key_in_metrics)
        if write.budget is not None and state is not None:
            metrics.record_budget(
                call.project, write.budget, state, store=store, combined=combined.budget
            )
        key_state = None if state is None else state.key_state
        if key_in_metrics and write.key_budget is not None and key_state is not None:
            metrics.record_budget(
                call.project,
                write.key_budget,
                key_state,
                key=call.budget_key,
                store=store,
                combined=combined.key_budget,
            )

    def _write(
        self,
        store: BaseStore,
        write: PendingWrite,
        held: int | None,
        alerts: AlertOptions | None = None,
    ) -> BudgetState | None:
        state = None
        spill = self._spills.get(store) or self._first_sight(store)
        try:
            if spill.waiting and not self._catch_up(store, spill):
                self._spill(store, spill, write, None, alerts=alerts)  # the store still refuses
                return None
            state = _apply(store, write)
        except ValueError as exc:  # a record no store can hold; callers validate first
            warn_once("store-invalid", f"llm_toll could not record a call: {exc}",
                      AccountingWarning)  # fmt: skip
            if write.reservation is not None:  # else the store gives it back after its TTL
                with contextlib.suppress(Exception):
                    store.release_reservation(write.reservation)
        except StoreError as exc:
            spill.refused()
            self._spill(store, spill, write, exc, alerts=alerts)
        finally:
            if state is not None:  # the new total first, so the cost is never missed
                self._remember(write.call, state)
            if held is not None:
                self.view.release(held)
        return state

    def _remember(self, call: CallRecord, state: BudgetState) -> None:
        for known in (state, *state.others):  # others: limits kept in the store
            self.view.remember(call.project, known.period, known.spent_nanos)
        key_state = state.key_state
        if key_state is not None and call.budget_key:
            for known in (key_state, *key_state.others):
                self.view.remember(call.project, known.period, known.spent_nanos, call.budget_key)

    # -- records the store refused --------------------------------------------------------

    def _first_sight(self, store: BaseStore) -> Spill:
        """The first write to ``store`` in this process: records an earlier process left
        in its journal are written before this one."""
        from llm_toll.store._sql import SQLStore

        journal = SpillJournal(store.location) if isinstance(store, SQLStore) else None
        spill = Spill(journal, pending=journal is not None and journal.has_records())
        return self._spills.setdefault(store, spill)  # one per store, whoever came first

    def _spill(
        self,
        store: BaseStore,
        spill: Spill,
        write: PendingWrite,
        error: StoreError | None,
        *,
        alerts: AlertOptions | None,
    ) -> None:
        self._at_exit_once()
        record_id = spill.keep(store, write, error, alerts=alerts)
        if record_id is not None:
            self._spilled_alerts.keep(record_id, alerts)

    def _catch_up(self, store: BaseStore, spill: Spill, *, now: bool = False) -> bool:
        """Write what earlier writes could not, oldest first; False while the store still
        refuses. One thread at a time: the others go on with their own write. ``now``:
        even while backing off from the store's last refusal."""
        if not now and time.monotonic() < spill.retry_at:  # refused a moment ago
            return False
        if not spill.lock.acquire(blocking=False):
            return True
        try:
            if spill.memory and not self._drain(store, spill):
                return spill.refused()
            journal = spill.journal
            if spill.pending and journal is not None:
                try:
                    replayed = journal.replay(cast("SQLStore", store), self._replayed)
                except ReplayStopped:
                    return spill.refused()
                if not replayed.busy:
                    spill.pending = False
                spill.refusals = 0
                if replayed.damaged:
                    warn_once(
                        f"journal-damaged:{journal.path}",
                        f"llm_toll skipped {replayed.damaged} damaged record(s) of the spill "
                        f"journal {journal.path}: lines cut short by a crash while they were "
                        "written, before their calls returned.",
                        AccountingWarning,
                    )
            return True
        finally:
            spill.lock.release()

    def _drain(self, store: BaseStore, spill: Spill) -> bool:
        """Write the store's records kept in memory, in order; False if it still fails."""
        memory = spill.memory
        while memory:
            write, alerts = memory[0]
            try:
                state = _apply(store, write)
            except StoreError:
                return False
            except AlreadyRecorded:  # recorded again while this one waited
                memory.popleft()
                continue
            memory.popleft()
            self._remember(write.call, state)
            if crossed(state):
                after_write(alerts, write.call, state)
        spill.owner = None
        return True

    def _replayed(self, entry: Entry, state: BudgetState) -> None:
        """A record of a spill journal is in the store: raise the alerts its write crossed
        (the store's marks decide, as for any write), to the callbacks of the call if this
        process made it, and to its webhook."""
        alerts = self._spilled_alerts.pop(entry.record_id)
        if not crossed(state):
            return
        if alerts is None and entry.webhook is not None:  # spilled by another process
            alerts = AlertOptions(webhook=entry.webhook)
        after_write(alerts, entry.write.call, state)

    @property
    def pending(self) -> int:
        """Records not in their store yet: kept in memory or in a spill journal."""
        in_journals = sum(
            spill.journal.count() for spill in list(self._spills.values()) if spill.journal
        )
        in_memory = sum(len(spill.memory) for spill in list(self._spills.values()))
        return in_memory + in_journals

    def _at_exit_once(self) -> None:
        if not self._exit_registered:
            self._exit_registered = True
            # Registered at the first refusal: later than the worker's own exit drain, so it
            # runs first (atexit is LIFO) and drains the worker itself.
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """Write what can be written; say where the rest waits."""
        from llm_toll._worker import EXIT_DRAIN_TIMEOUT_S, worker

        worker.drain(EXIT_DRAIN_TIMEOUT_S)
        self.force_flush()
        lost = 0
        for spill in list(self._spills.values()):
            journal = spill.journal
            if journal is not None and spill.memory:  # it may take what memory holds now
                with contextlib.suppress(OSError):
                    kept = list(spill.memory)
                    journal.append([write for write, _ in kept],
                                   [webhook_of(alerts) for _, alerts in kept])  # fmt: skip
                    spill.memory.clear()
                    spill.pending = True
            lost += len(spill.memory)
            left = journal.count() if journal is not None and spill.pending else 0
            if left and journal is not None:
                print(
                    f"llm_toll: {left} record(s) for {journal.location} wait in the spill "
                    f"journal {journal.path}; the next process that writes to that store "
                    "records them.",
                    file=sys.stderr,
                )
        if lost:
            print(f"llm_toll: {lost} record(s) could not be written anywhere and are lost.",
                  file=sys.stderr)  # fmt: skip

    # -- SpanProcessor --------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Notes another instrumentation's span made inside llm_toll's own request span."""
        if foreign.enabled():
            foreign.started(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """llm_toll's own calls are recorded before their span ends (see module docstring);
        with ``price_foreign_spans``, other GenAI instrumentations' spans are priced here."""
        if foreign.enabled():
            foreign.ended(span, self)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write records the store refused earlier; True when none is left waiting."""
        done = True
        for store, spill in list(self._spills.items()):
            if spill.waiting:
                self._catch_up(store, spill, now=True)
                done = done and not spill.waiting
        return done

    def shutdown(self) -> None:
        self.force_flush()
