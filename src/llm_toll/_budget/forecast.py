"""When a budget runs out at its recent burn rate.

The burn rate is the ledger's spend over the last ``FORECAST_WINDOW_S`` seconds divided by
that window, whatever process or host recorded it: the store's ledger is the fleet's, so
every process sharing a store forecasts the same figure. The window is fixed (not "since
the first call in it"): a project that started spending ten minutes ago burns at a sixth of
its ten-minute rate, never at a rate made up from one call. Money stays in integer nano-USD;
only the seconds left are a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Final

from llm_toll._budget.money import NANOS_PER_USD
from llm_toll._budget.periods import Reset, period_end

if TYPE_CHECKING:
    from llm_toll.store import BaseStore

FORECAST_WINDOW_S: Final = 3600
"""The recent window the burn rate is measured over: the last hour of the ledger."""


@dataclass(frozen=True, slots=True)
class Forecast:
    """A budget's state and where its recent burn rate takes it."""

    limit_nanos: int
    spent_nanos: int
    window_spent_nanos: int
    """Spent in the last ``window_s`` seconds (the burn), across the fleet."""
    window_s: int
    seconds_left: float | None
    """Seconds until the budget runs out at the burn rate, capped by the end of its period
    for a budget that resets (it starts again then); 0 when already spent; None when
    nothing was spent in the window (no rate to forecast with)."""
    runs_out: bool
    """True when the budget is spent, or runs out at this rate before its period ends."""

    @property
    def nanos_per_s(self) -> Fraction:
        """The burn rate, exactly."""
        return Fraction(self.window_spent_nanos, self.window_s)

    @property
    def usd_per_s(self) -> float:
        return float(self.nanos_per_s / NANOS_PER_USD)


def forecast(
    *,
    limit_nanos: int,
    spent_nanos: int,
    window_spent_nanos: int,
    window_s: int = FORECAST_WINDOW_S,
    seconds_to_reset: float | None = None,
) -> Forecast:
    """The forecast of a budget from its figures; ``seconds_to_reset``: how long until its
    period ends (None for a budget that never resets)."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive; got {window_s!r}")
    if window_spent_nanos < 0:
        raise ValueError(f"window_spent_nanos must not be negative; got {window_spent_nanos!r}")
    left = limit_nanos - spent_nanos
    seconds: float | None
    if left <= 0:
        seconds, runs_out = 0.0, True
    elif window_spent_nanos == 0:
        seconds, runs_out = None, False
    else:
        seconds = float(Fraction(left * window_s, window_spent_nanos))
        runs_out = seconds_to_reset is None or seconds < seconds_to_reset
        if not runs_out:
            seconds = seconds_to_reset
    return Forecast(limit_nanos, spent_nanos, window_spent_nanos, window_s, seconds, runs_out)


def forecast_budget(
    store: BaseStore,
    project: str,
    *,
    limit_nanos: int,
    reset: Reset | None,
    now: datetime,
    budget_key: str | None = None,
    spent_nanos: int | None = None,
    window_s: int = FORECAST_WINDOW_S,
) -> Forecast:
    """The forecast of the budget of ``project`` (or of its ``budget_key``) at ``now``.

    Reads the spend of the last ``window_s`` seconds from the ledger (bounded by the window,
    not the history) and, unless ``spent_nanos`` is given, the running total of the current
    period. Store failures raise ``StoreError``; a store without the read (one written for
    llm-toll 0.13) raises NotImplementedError.
    """
    burned = store.get_spent_since(project, now - timedelta(seconds=window_s), budget_key)
    if spent_nanos is None:
        spent_nanos = store.get_spent(project, reset, now, budget_key)
    end = period_end(reset, now)
    return forecast(
        limit_nanos=limit_nanos,
        spent_nanos=spent_nanos,
        window_spent_nanos=burned,
        window_s=window_s,
        seconds_to_reset=None if end is None else (end - now).total_seconds(),
    )
