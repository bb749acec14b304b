"""Plain values passed between the decorator, the processor and the stores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Literal, NamedTuple

from llm_toll._budget.periods import Reset
from llm_toll.usage._base import NO_CONTEXT

if TYPE_CHECKING:
    from llm_toll.usage._base import Usage

LimitKind = Literal["rpm", "tpm"]
"""A rate limit: requests per minute or tokens per minute."""


# Records made on every call are not ``frozen``: a frozen dataclass sets each field through
# ``object.__setattr__``, four times slower to build (about 4 µs per call for this one).
# They are never changed after they are made; ``dataclasses.replace`` makes a changed copy.
@dataclass(slots=True)
class CallRecord:
    """One finished LLM call, priced, ready to be written to the ledger exactly once."""

    project: str
    model: str
    usage: Usage
    cost_nanos: int
    started_at: datetime
    """UTC start of the call; it also decides which budget period the cost belongs to."""
    duration_s: float = 0.0
    provider: str | None = None
    operation: str = "chat"
    price_known: bool = True
    estimated: bool = False
    response_id: str | None = None
    budget_key: str | None = None
    price_source: str | None = None
    """Where the price came from: ``genai-prices``, ``override``, ``local``, ``fallback``,
    ``unknown``; None for a row written without a price of llm_toll's (0.13's API)."""
    price_version: str | None = None
    """Which data of that source: genai-prices' version (and fetch time, if refreshed)."""
    unpriced_units: tuple[str, ...] = ()
    """Reported units no price applied to: the cost is then only part of the bill."""
    price_context: Mapping[str, str] = field(default_factory=lambda: NO_CONTEXT)
    """What the response said decides its price: ``service_tier``, ``processing``."""
    cost_source: str = "local"
    """``local`` (priced by llm_toll) or ``provider`` (the response's own figure)."""
    local_cost_nanos: int | None = None
    """llm_toll's own price of the call, when ``cost_nanos`` is the provider's figure."""
    run_id: str | None = None
    """The innermost run the call was made in (its row in ``runs`` names its parent)."""


class PendingWrite(NamedTuple):
    """One finished call to write, with what its write updates."""

    call: CallRecord
    budget: BudgetSpec | None
    """The project's budget: its limit and period decide the state reported back."""
    key_budget: BudgetSpec | None = None
    """The budget of the call's budget key, when it has one."""
    reservation: Reservation | None = None
    """A strict call's reservation, settled to the call's cost in the same transaction."""
    record_id: str | None = None
    """Set for a record that must be written once whoever writes it how often (a batch
    result, ``llm_toll.record_batch``): a store that keeps record ids (SQLite, PostgreSQL)
    writes it and its id in one transaction and skips an id it has seen."""


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A budget as configured on a decorator: limit and reset period of one scope."""

    limit_nanos: int | None
    reset: Reset | None = None
    """None (lifetime), "daily", "weekly" or "monthly", on the UTC calendar."""
    also: tuple[BudgetSpec, ...] = ()
    """Limits of the same scope over other periods (a limit kept in the store with its own
    ``reset``, see ``_budget.limits``): each has its own period total, and the call is
    refused when any is exhausted."""


@dataclass(slots=True)  # made on every call: not frozen, as CallRecord
class BudgetState:
    """The state of one budget scope right after a call was recorded."""

    spent_nanos: int
    limit_nanos: int | None
    period: str
    """The period key, e.g. "all", "2026-11-28", "W2026-11-23" (the week of that Monday),
    "2026-11"."""
    crossed_thresholds: tuple[int, ...] = field(default=())
    """Percentages (50, 80, 100) this call crossed for the first time in the period."""
    exceeded_now: bool = False
    """True for the one call that took the spend from under the limit to at or over it."""
    key_state: BudgetState | None = None
    """The state of the call's budget key (per-tenant budget), when one was tracked."""
    others: tuple[BudgetState, ...] = ()
    """The scope's other period totals (limits kept in the store over other periods),
    when this state is the binding one of several."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money set aside by ``BaseStore.reserve`` for one call before it runs (strict budgets).

    It counts against the project's row of each period of ``spec`` (its own and those of
    ``spec.also``) and, when ``key_spec`` is set, against the rows of ``budget_key`` over the
    periods of ``key_spec``, until ``settle_reservation`` or ``release_reservation``; or
    until ``expires_at``, after which ``reserve`` reclaims it (a process that crashed
    mid-call). Each period holds it in a row of its own: ``id`` and ``period`` name the row
    of ``spec``'s own period, ``others`` the rest.
    """

    id: int
    project: str
    budget_key: str | None
    """The key whose row the reservation also counts against; None for the project only."""
    period: str
    amount_nanos: int
    expires_at: datetime
    spec: BudgetSpec
    key_spec: BudgetSpec | None = None
    others: tuple[tuple[int, str], ...] = ()
    """(id, period) of its rows over the other periods of ``spec``, in lock order."""

    def rows(self) -> tuple[tuple[int, str], ...]:
        """(id, period) of every row that holds it."""
        return ((self.id, self.period), *self.others)


class RateAdmission(NamedTuple):
    """The answer of a store's ``acquire_rate``: admitted, or when to retry."""

    admitted: bool
    retry_after: float
    """Seconds until the request would be admitted; 0.0 when admitted."""
    limit_type: LimitKind | None = None
    """``"rpm"`` or ``"tpm"``: the limit that refused the request (None when admitted)."""
    lease_id: int | None = None
    """The admitted request's event, for ``settle_rate``."""


RunStatus = Literal["ok", "error", "refused"]
"""How a run ended: its code returned, raised, or was stopped by llm_toll (a budget, a run
cap or a rate limit refused a request and the refusal left the run's code)."""


class RunRecord(NamedTuple):
    """One ended run, written once to the store's ``runs`` table (a tuple: made at each
    run's end, so as cheap to make as can be)."""

    id: str
    parent_id: str | None
    project: str
    name: str
    budget_key: str | None
    status: RunStatus
    requests: int
    """Requests recorded in the run and the runs inside it (as ``llm_toll.run.requests``)."""
    cost_nanos: int
    """Their cost, exact (as ``llm_toll.run.cost``)."""
    max_cost_nanos: int | None
    started_ns: int
    """When it started, as ``time.time_ns()``; ``started_at`` as a datetime."""
    ended_ns: int

    @property
    def started_at(self) -> datetime:
        return utc_of_ns(self.started_ns)

    @property
    def ended_at(self) -> datetime:
        return utc_of_ns(self.ended_ns)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def utc_of_ns(ns: int) -> datetime:
    """``time.time_ns()``'s figure as an aware UTC datetime, exact to the microsecond."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def ns_of(at: datetime) -> int:
    """An aware datetime as ``time.time_ns()`` gives its time, exactly."""
    return (at - _EPOCH) // _MICROSECOND * 1000


@dataclass(frozen=True, slots=True)
class RefusalCount:
    """Refusals of one (project, key, model, reason) in one minute: the store adds
    ``count`` to its row and keeps the latest time and message."""

    project: str
    budget_key: str | None
    model: str | None
    reason: str
    """The refusing limit: ``project``, ``key``, ``run``, ``store``, ``unpriced`` (a
    ``BudgetExceededError``'s scope), ``rpm`` or ``tpm`` (a ``LocalRateLimitError``)."""
    minute: datetime
    count: int
    last_at: datetime
    message: str
