"""What the framework callbacks share: a budget plan and one way to record a call."""

from __future__ import annotations

from datetime import datetime, timezone

from llm_toll import _runtime
from llm_toll._budget.once import claims
from llm_toll._budget.stored import cache as stored_limits
from llm_toll._budget.stored import with_stored_limits
from llm_toll._call.call import Call, Timed
from llm_toll._call.gates import Admission, admit
from llm_toll._call.plan import Plan, StoreErrorPolicy
from llm_toll._runtime import check_store_environment, set_reporter
from llm_toll.alerts._alert import AlertCallback
from llm_toll.decorator import plan_options
from llm_toll.reporter import CostReporter
from llm_toll.store import BaseStore
from llm_toll.usage import ExtractedUsage


class BudgetedCallback:
    """A framework callback with a project, an optional budget and an optional store.

    ``on_store_error`` is the decorator's: when the store cannot be read before a call,
    ``"allow"`` it unchecked (with an ``AccountingWarning``) or ``"refuse"`` it.
    ``on_threshold``, ``on_exceeded`` and ``alert_webhook`` are the decorator's too: the
    budget's alerts, raised by the calls the callback records and refuses.
    """

    def __init__(
        self,
        *,
        project: str = "default",
        max_budget: float | None = None,
        store: BaseStore | None = None,
        reporter: CostReporter | None = None,
        on_store_error: StoreErrorPolicy = "allow",
        on_threshold: AlertCallback | None = None,
        on_exceeded: AlertCallback | None = None,
        alert_webhook: str | None = None,
    ) -> None:
        # The decorator's checks: a budget that is negative, not finite or more than the
        # store holds is a ValueError naming it, here rather than at the first call.
        options = plan_options(
            project=project,
            max_budget=max_budget,
            on_store_error=on_store_error,
            on_threshold=on_threshold,
            on_exceeded=on_exceeded,
            alert_webhook=alert_webhook,
        )
        self._plan = Plan(name=type(self).__name__, **options)
        self._store = store
        if store is None:
            check_store_environment()
        if reporter is not None:
            set_reporter(reporter)

    def _refuse_if_spent(self) -> None:
        """Raise BudgetExceededError (and record the refusal) when the budget is spent: the
        decorator's own pre-call check."""
        admit(self._plan, (), {}, store=self._store)

    def _record(
        self,
        found: ExtractedUsage,
        *,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
        t0: float | None = None,
        request_model: str | None = None,
    ) -> None:
        """Record a call the framework already made, through the decorators' writer; not
        when llm_toll's SDK hooks recorded the same response (the framework called a
        hooked SDK). The call's span and duration are its own, not when it is recorded:
        from ``started_at`` and ``ended_at`` (naive: local time) when the framework gives
        both, else from ``t0`` (``time.perf_counter`` when the call started)."""
        if not claims.claim(found.response_id, "callback"):
            return
        start = started_at.astimezone(timezone.utc) if started_at else datetime.now(timezone.utc)
        timed = None
        if started_at is not None and ended_at is not None:
            timed = Timed(_ns(started_at), _ns(ended_at))
        # The limits kept in the store, as the pre-call check last read them (no I/O here).
        limits = stored_limits.current(self._store or _runtime.get_store())
        plan = with_stored_limits(self._plan, None, limits)
        admitted = Admission(start, budget_key=None, reservation=None, lease=None, plan=plan)
        kwargs = {"model": request_model} if request_model else {}
        call = Call(self._plan, (), kwargs, admitted, by="callback", t0=t0, timed=timed)
        call.finish_with(found, self._store)


def _ns(at: datetime) -> int:
    """``at`` in nanoseconds since the epoch (a naive ``at`` is local time)."""
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1_000
