"""Which alerts a call raises, handed to the alert thread.

Once per crossing, fleet-wide, because the store decides: a threshold alert is raised by
the one call whose transaction flipped that threshold's bit of the period's mask, an
exceeded alert by the one call whose transaction took the spend from under the limit to
it or past it. A refused call raises the period's refusal alert only when the alert thread
wins the store's refusal mark (``store._alert_marks``); a process asks the store about a
budget at most once a minute, however many of its calls are refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Final

from llm_toll._budget.money import nanos_to_decimal, usd_to_nanos
from llm_toll._budget.periods import period_key, shown_period, stored_period
from llm_toll._warnings import Guard, shown, warn_once
from llm_toll.alerts import _dispatch
from llm_toll.alerts._alert import Alert, AlertCallback
from llm_toll.alerts._options import AlertOptions, webhook_of
from llm_toll.exceptions import AccountingWarning, BudgetExceededError, TelemetryWarning

if TYPE_CHECKING:
    from llm_toll._budget.records import BudgetState, CallRecord
    from llm_toll._call.plan import Plan
    from llm_toll.store import BaseStore

REFUSAL_RECHECK_S: Final = 60.0
"""How long a process asks the store nothing about a budget whose refusal it asked about."""
_MAX_REMEMBERED = 10_000

_ALERTING = Guard("alerts", "queue a budget alert", TelemetryWarning)
_asked: dict[tuple[object, str, str, str], float] = {}
_asked_lock = threading.Lock()


def crossed(state: BudgetState) -> bool:
    """Whether a write crossed anything (the usual write did not: one look, no import)."""
    key_state = state.key_state
    return bool(
        state.crossed_thresholds
        or state.exceeded_now
        or (key_state is not None and (key_state.crossed_thresholds or key_state.exceeded_now))
    )


def after_write(options: AlertOptions | None, call: CallRecord, state: BudgetState) -> None:
    """Queue the alerts of the crossings this call's write made. Never raises."""
    with _ALERTING:
        webhook = webhook_of(options)
        if options is None and webhook is None:
            return
        at = datetime.now(timezone.utc)
        scopes: list[tuple[str | None, BudgetState]] = [(None, state)]
        if state.key_state is not None and call.budget_key:
            scopes.append((call.budget_key, state.key_state))
        for key, scope_state in scopes:
            for alert, posted in _crossings(call.project, key, scope_state, at):
                _queue(alert, options, webhook if posted else None)


def _crossings(
    project: str, key: str | None, state: BudgetState, at: datetime
) -> Iterator[tuple[Alert, bool]]:
    """The alerts of one scope's state, each with whether the webhook posts it: a call
    that takes the spend to the limit posts its exceeded alert, not also the 100% one."""
    limit = state.limit_nanos
    if limit is None:
        return
    figures = {
        "project": project,
        "budget_key": key,
        "period": shown_period(state.period),
        "limit": nanos_to_decimal(limit),
        "spent": nanos_to_decimal(state.spent_nanos),
        "at": at,
    }
    for pct in state.crossed_thresholds:
        posted = not (pct == 100 and state.exceeded_now)
        yield Alert(kind="threshold", threshold=pct, **figures), posted  # type: ignore[arg-type]
    if state.exceeded_now:
        yield Alert(kind="exceeded", threshold=100, **figures), True  # type: ignore[arg-type]


def after_refusal(plan: Plan, error: BudgetExceededError, store: BaseStore) -> None:
    """Queue the refusal alert of a spent budget, to be raised if this process wins the
    store's mark of the period. Never raises, never waits on the store."""
    with _ALERTING:
        if error.scope not in ("project", "key") or None in (error.current_cost, error.max_budget):
            return  # a run's cap, the store down, an unpriced model, or no figures
        options = plan.alerts
        callback = None if options is None else options.on_exceeded
        webhook = webhook_of(options)
        if callback is None and webhook is None:
            return
        spec = plan.spec_of(error.budget_key)
        at = datetime.now(timezone.utc)
        period = period_key(None if spec is None else spec.reset, at)
        asked = (
            getattr(store, "location", id(store)),
            plan.project,
            error.budget_key or "",
            period,
        )
        if not _first_ask(asked, time.monotonic()):
            return
        alert = Alert(
            kind="exceeded",
            project=plan.project,
            budget_key=error.budget_key,
            period=shown_period(period),
            limit=nanos_to_decimal(usd_to_nanos(error.max_budget or 0)),
            spent=nanos_to_decimal(usd_to_nanos(error.current_cost or 0)),
            threshold=100,
            at=at,
            refused=True,
        )
        _dispatch.dispatcher.submit(partial(_claim_and_deliver, store, alert, callback, webhook))


def _first_ask(asked: tuple[object, str, str, str], now: float) -> bool:
    with _asked_lock:
        last = _asked.get(asked)
        if last is not None and now - last < REFUSAL_RECHECK_S:
            return False
        if len(_asked) >= _MAX_REMEMBERED:
            _asked.clear()
        _asked[asked] = now
        return True


def _claim_and_deliver(
    store: BaseStore, alert: Alert, callback: AlertCallback | None, webhook: str | None
) -> None:
    """In the alert thread: win the store's mark, then deliver. A store that keeps no
    marks leaves it to this process's own once-a-minute rule."""
    from llm_toll.store import StoreError

    claim = getattr(store, "claim_refusal_alert", None)
    if claim is not None:
        try:
            period = stored_period(alert.period)  # the key of the store's running total
            won = claim(alert.project, alert.budget_key, period, usd_to_nanos(alert.limit))
        except StoreError as error:
            warn_once("alert-mark", f"llm_toll could not mark a refusal alert in the store "
                      f"({error}); it is not sent.", AccountingWarning)  # fmt: skip
            return
        if won is False:
            return
    _deliver(alert, callback, webhook)


def _queue(alert: Alert, options: AlertOptions | None, webhook: str | None) -> None:
    callback = None
    if options is not None:
        callback = options.on_threshold if alert.kind == "threshold" else options.on_exceeded
    if callback is not None or webhook is not None:
        _dispatch.dispatcher.submit(partial(_deliver, alert, callback, webhook))


def _deliver(alert: Alert, callback: AlertCallback | None, webhook: str | None) -> None:
    """In the alert thread: the callback, then the webhook; each failure warned once."""
    if callback is not None:
        try:
            callback(alert)
        except Exception as error:
            name = getattr(callback, "__qualname__", type(callback).__name__)
            warn_once(f"alert-callback:{name}", f"llm_toll: the alert callback {name} raised "
                      f"{shown(error)}; alerts go on.", TelemetryWarning)  # fmt: skip
    if webhook is not None:
        from llm_toll.alerts._webhook import deliver

        deliver(webhook, alert.slack_message(), _dispatch.dispatcher.pause)
