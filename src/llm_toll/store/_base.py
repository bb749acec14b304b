"""The store interface: an exact ledger of calls plus running totals per (scope, period)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from llm_toll._budget.limits import StoredLimit
from llm_toll._budget.money import nanos_to_usd, usd_to_nanos
from llm_toll._budget.periods import LIFETIME, Reset, threshold_mask, thresholds_crossed
from llm_toll._budget.records import (
    BudgetSpec,
    BudgetState,
    CallRecord,
    RateAdmission,
    RefusalCount,
    Reservation,
    RunRecord,
)
from llm_toll.store._errors import StoreError


class BaseStore(ABC):
    """A budget store.

    ``record_call`` is the one write of the hot path: in one atomic transaction it appends the
    call to the ledger and adds its cost to the running total of the scope's current period,
    then reports the new state. ``get_spent`` is the O(1) budget check.

    The remaining methods are the read API of llm-toll 0.13, kept for drop-in compatibility;
    they return plain dicts with USD floats.
    """

    _write_barrier: Callable[[], object] | None = None

    def set_write_barrier(self, barrier: Callable[[], object] | None) -> None:
        """Have reads first call ``barrier``, which waits for writes still in flight.

        The decorator hands async calls' writes to a worker thread; with this, a caller that
        awaited a call and then reads the store sees that call.
        """
        self._write_barrier = barrier

    def wait_for_writes(self) -> None:
        barrier = self._write_barrier
        if barrier is not None:
            barrier()

    # -- hot path ------------------------------------------------------------------------
    # Every store of this package implements both. They are not abstract so that a store
    # written for llm-toll 0.13, which has only the 0.13 methods below, still loads and
    # works: it is then used as 0.13 used it, with lifetime totals only.

    def record_call(
        self,
        call: CallRecord,
        budget: BudgetSpec | None = None,
        key_budget: BudgetSpec | None = None,
    ) -> BudgetState:
        """Append ``call`` to the ledger and update running totals, atomically.

        Always records (the money is already spent). ``budget`` names the limit and period
        whose state is reported and whose thresholds are tracked; without it the lifetime
        total of the project is reported with no limit.

        ``key_budget`` is the per-key budget (a tenant's): when it is given and
        ``call.budget_key`` is set, the same transaction also adds the cost to the lifetime
        and period totals of (project, key), tracks their thresholds, and reports them as
        the returned state's ``key_state``.

        The default, for a store written for llm-toll 0.13: ``log_usage``, then the
        project's lifetime total from ``get_total_cost`` (no periods, no keys).
        """
        usage = call.usage
        try:
            self.log_usage(
                call.project,
                call.model,
                usage.input_tokens,
                usage.output_tokens,
                nanos_to_usd(call.cost_nanos),
            )
        except Exception as exc:  # nothing was logged: the caller keeps the record
            raise StoreError(f"{type(self).__name__}.log_usage failed: {exc!r}") from exc
        try:
            spent = usd_to_nanos(self.get_total_cost(call.project))
        except Exception:  # logged; only the total after it is unknown (no budget events)
            return BudgetState(call.cost_nanos, None, LIFETIME)
        limit = None if budget is None else budget.limit_nanos
        if limit is None:
            return BudgetState(spent, None, LIFETIME)
        before = spent - call.cost_nanos
        crossed = thresholds_crossed(
            spent, limit, threshold_mask(thresholds_crossed(before, limit, 0))
        )
        return BudgetState(spent, limit, LIFETIME, crossed, before < limit <= spent)

    def get_spent(
        self, project: str, reset: Reset | None, at: datetime, budget_key: str | None = None
    ) -> int:
        """Nano-USD spent by ``project`` (or by its ``budget_key``) in the period of ``reset``
        that contains ``at``.

        The default, for a store written for llm-toll 0.13: the project's lifetime total
        from ``get_total_cost``, whatever ``reset`` (0.13 kept no periods); such a store has
        no per-key totals (``StoreError``).
        """
        if budget_key is not None:
            raise StoreError(f"{type(self).__name__} keeps no totals per budget key")
        try:
            return usd_to_nanos(self.get_total_cost(project))
        except Exception as exc:
            raise StoreError(f"{type(self).__name__}.get_total_cost failed: {exc!r}") from exc

    def get_spent_since(self, project: str, since: datetime, budget_key: str | None = None) -> int:
        """Nano-USD of the ledger's calls of ``project`` (or of its ``budget_key``) that
        started at or after ``since``, whichever process or host recorded them. Reads only
        the rows since then (the ledger's index on project and time), never the history.

        Not abstract, as above: a store written for llm-toll 0.13 has no such read, and no
        forecast is made on it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not read spend by time")

    # -- strict budgets: reservations -----------------------------------------------------
    # Not abstract, so that stores written for earlier versions still load; the decorator
    # falls back to the plain pre-call check (with a warning) on a store without them.

    def reserve(
        self,
        project: str,
        *,
        budget_key: str | None,
        spec: BudgetSpec,
        at: datetime,
        amount_nanos: int,
        ttl_s: float,
        key_spec: BudgetSpec | None = None,
    ) -> Reservation | None:
        """Set ``amount_nanos`` aside for one call, or refuse (None), in one transaction.

        First reclaims the reservations of the project's row (``spec``'s period at ``at``)
        that expired at or before ``at`` (left by crashed processes). Then refuses when
        spent + reserved + ``amount_nanos`` would exceed ``spec.limit_nanos`` (if any), or,
        when ``budget_key`` and ``key_spec`` are given, the key's limit; otherwise adds the
        amount to the reserved total of those rows and keeps a reservation that expires
        ``ttl_s`` seconds after ``at``. ``key_spec`` must have ``spec``'s reset.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support reservations")

    def settle_reservation(self, reservation: Reservation, call: CallRecord) -> BudgetState:
        """Record ``call`` as ``record_call(call, reservation.spec, reservation.key_spec)``
        does and release ``reservation``, in the same transaction. A reservation already
        reclaimed or released is not released twice; the call is recorded all the same."""
        raise NotImplementedError(f"{type(self).__name__} does not support reservations")

    def release_reservation(self, reservation: Reservation) -> None:
        """Give back a reservation whose call spent nothing (it failed or was cancelled).
        Releasing twice, or after the reservation expired and was reclaimed, does nothing."""
        raise NotImplementedError(f"{type(self).__name__} does not support reservations")

    def get_reserved(
        self, project: str, reset: Reset | None, at: datetime, budget_key: str | None = None
    ) -> int:
        """Nano-USD reserved and not yet settled, released or reclaimed, for ``project`` (or
        its ``budget_key``) in the period of ``reset`` that contains ``at``."""
        raise NotImplementedError(f"{type(self).__name__} does not support reservations")

    # Shared rate limits (``shared_limits=True``): not abstract either.

    def acquire_rate(
        self,
        scope: str,
        *,
        rpm: int | None,
        tpm: int | None,
        estimated_tokens: int,
        now: float,
    ) -> RateAdmission:
        """Admit one request of ``scope`` at ``now`` (seconds since the epoch) under ``rpm``
        requests and ``tpm`` tokens per sliding 60-second window, reserving
        ``estimated_tokens``, or refuse it with a ``retry_after``; check and write are one
        transaction, so every process (and host) sharing the store honours one limit."""
        raise NotImplementedError(f"{type(self).__name__} does not support shared rate limits")

    def settle_rate(self, scope: str, lease_id: int, actual_tokens: int, now: float) -> None:
        """Replace the estimate reserved by admission ``lease_id`` by the ``actual_tokens``
        the request used, counted from ``now``; 0 gives the estimate back (a release). The
        request itself keeps counting towards ``rpm``."""
        raise NotImplementedError(f"{type(self).__name__} does not support shared rate limits")

    # -- budgets as data: limits kept in the store (``llm_toll.budgets``) -----------------
    # Not abstract either: a store written for llm-toll 0.13 keeps no limits.

    def set_budget_limit(
        self,
        project: str,
        limit_nanos: int,
        *,
        reset: Reset | None = None,
        budget_key: str | None = None,
        set_by: str | None = None,
    ) -> StoredLimit:
        """Keep a limit for ``project`` (or its ``budget_key``) over ``reset``'s period,
        replacing the one kept for that scope and period; running processes pick it up
        (``llm_toll.budgets``)."""
        raise StoreError(f"{type(self).__name__} keeps no budget limits")

    def get_budget_limits(self) -> list[StoredLimit]:
        """Every limit kept in the store, by project, key and period."""
        return []

    def remove_budget_limits(
        self, project: str, *, budget_key: str | None = None, period: str | None = None
    ) -> int:
        """Remove the limits of ``project`` (or its ``budget_key``) over ``period``
        (``daily``, ``weekly``, ``monthly`` or ``lifetime``), or over every period (None);
        how many were removed."""
        raise StoreError(f"{type(self).__name__} keeps no budget limits")

    # -- runs and refused calls ------------------------------------------------------------
    # Not abstract either: a store written for llm-toll 0.13 keeps neither, and shows none.

    def record_runs(self, runs: Sequence[RunRecord]) -> None:
        """Keep ended runs, in one transaction (each written once: a second write of a run's
        id changes nothing)."""
        return None

    def record_refusals(self, counts: Sequence[RefusalCount]) -> None:
        """Add refused calls to the counts of their (project, key, model, reason, minute)."""
        return None

    def runs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Ended runs that started in the range, newest first."""
        return []

    def refusals(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Refused calls per (project, key, model, reason, minute), the latest first."""
        return []

    # -- llm-toll 0.13 API ---------------------------------------------------------------

    @abstractmethod
    def log_usage(
        self, project: str, model: str, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        """Record one call with a cost already computed by the caller (USD)."""

    @abstractmethod
    def log_usage_if_within_budget(
        self,
        project: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost: float,
        max_budget: float,
    ) -> float:
        """Check the budget and record the call in one transaction; return the new total.

        The call is recorded whatever the outcome, since its money is already spent. Raises
        ``BudgetExceededError`` after recording when the budget was already exhausted before
        this call, that is when the caller skipped the pre-call check.
        """

    @abstractmethod
    def get_total_cost(self, project: str) -> float:
        """Lifetime spend of ``project`` in USD (since the last ``reset_budget``)."""

    @abstractmethod
    def get_usage_logs(self, project: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ledger rows of ``project``, newest first."""

    @abstractmethod
    def get_usage_logs_filtered(
        self, project: str | None = None, model: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Ledger rows filtered by project and/or model, newest first; ``limit <= 0``: all."""

    @abstractmethod
    def get_all_project_summaries(self) -> list[dict[str, Any]]:
        """Per project: total_cost, token totals, call_count, last_used; costliest first."""

    @abstractmethod
    def get_model_summaries(self, project: str | None = None) -> list[dict[str, Any]]:
        """Per model: total_cost, token totals, call_count; costliest first."""

    @abstractmethod
    def get_project_summaries_for_model(self, model: str) -> list[dict[str, Any]]:
        """Per project, for one model: total_cost, token totals, call_count."""

    @abstractmethod
    def get_daily_cost_trends(self, days: int = 30) -> list[dict[str, Any]]:
        """Per UTC day of the last ``days`` days: cost, tokens and call count."""

    @abstractmethod
    def get_budget_utilization(self) -> list[dict[str, Any]]:
        """Per (project, budget key, period) running total, with its limit and utilization
        when known; ``budget_key`` is '' for the project's own totals."""

    # -- the ledger over a date range: UTC times, since inclusive, until exclusive --------

    def spend(
        self,
        by: Sequence[str] | str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        model: str | None = None,
        key: str | None = None,
        provider: str | None = None,
    ) -> list[dict[str, Any]]:
        """Spend grouped by ``day``, ``week`` (ISO), ``month``, ``project``, ``model``,
        ``key`` and/or ``provider``, with exact ``cost_nanos``; ordered by the groups."""
        raise NotImplementedError(f"{type(self).__name__} does not support grouped reads")

    def calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        model: str | None = None,
        key: str | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Ledger rows, newest first; ``after_id``: only rows recorded after it."""
        raise NotImplementedError(f"{type(self).__name__} does not support grouped reads")

    def iter_calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        model: str | None = None,
        key: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every ledger row selected, oldest first, in constant memory."""
        raise NotImplementedError(f"{type(self).__name__} does not support grouped reads")

    def projects(self) -> list[str]:
        """The projects that have calls or budget totals, sorted."""
        raise NotImplementedError(f"{type(self).__name__} does not support grouped reads")

    @abstractmethod
    def reset_budget(self, project: str) -> None:
        """Zero the running totals of ``project`` and of its budget keys; the ledger keeps
        its history."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call twice."""

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()
