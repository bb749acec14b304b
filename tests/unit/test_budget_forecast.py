"""Forecasts: the burn rate of the ledger's last hour and the seconds a budget has left."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest

from llm_toll._budget.forecast import FORECAST_WINDOW_S, forecast, forecast_budget
from llm_toll._budget.periods import period_end
from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.store import SQLiteStore
from llm_toll.usage._base import Usage

USD = 1_000_000_000
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # a Monday, noon


def call(project: str, cost_nanos: int, at: datetime, key: str | None = None) -> CallRecord:
    return CallRecord(
        project=project,
        model="gpt-4o",
        usage=Usage(input_tokens=10, output_tokens=5),
        cost_nanos=cost_nanos,
        started_at=at,
        budget_key=key,
    )


# -- the arithmetic ---------------------------------------------------------------------------


def test_seconds_left_is_what_is_left_over_the_burn_rate() -> None:
    # $0.60 in the last hour, $0.20 left: 0.20 / (0.60 / 3600) = 1200 s.
    found = forecast(limit_nanos=USD, spent_nanos=800_000_000, window_spent_nanos=600_000_000)
    assert found.seconds_left == 1200.0
    assert found.runs_out
    assert found.nanos_per_s == Fraction(600_000_000, 3600)
    assert found.usd_per_s == pytest.approx(0.6 / 3600)


def test_the_rate_is_exact_in_nanos() -> None:
    # One nano-dollar an hour, one nano-dollar left: exactly an hour, no float drift.
    found = forecast(limit_nanos=10**15, spent_nanos=10**15 - 1, window_spent_nanos=1)
    assert found.seconds_left == float(FORECAST_WINDOW_S)
    assert found.nanos_per_s == Fraction(1, FORECAST_WINDOW_S)


def test_a_spent_budget_has_no_time_left_and_no_spend_has_no_forecast() -> None:
    spent = forecast(limit_nanos=USD, spent_nanos=USD + 1, window_spent_nanos=0)
    assert (spent.seconds_left, spent.runs_out) == (0.0, True)
    idle = forecast(limit_nanos=USD, spent_nanos=10, window_spent_nanos=0)
    assert (idle.seconds_left, idle.runs_out) == (None, False)


def test_a_budget_that_resets_first_is_capped_at_its_period_end() -> None:
    # 7200 s at this rate, but the period ends in 1000 s: it lasts until then.
    found = forecast(
        limit_nanos=USD, spent_nanos=0, window_spent_nanos=500_000_000, seconds_to_reset=1000
    )
    assert (found.seconds_left, found.runs_out) == (1000.0, False)
    soon = forecast(
        limit_nanos=USD, spent_nanos=0, window_spent_nanos=500_000_000, seconds_to_reset=8000
    )
    assert (soon.seconds_left, soon.runs_out) == (7200.0, True)


def test_bad_figures_are_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        forecast(limit_nanos=1, spent_nanos=0, window_spent_nanos=1, window_s=0)
    with pytest.raises(ValueError, match="window_spent_nanos"):
        forecast(limit_nanos=1, spent_nanos=0, window_spent_nanos=-1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("reset", "at", "end"),
    [
        (None, NOW, None),
        ("daily", NOW, utc(2026, 3, 3)),
        ("weekly", NOW, utc(2026, 3, 9)),  # the next Monday
        ("weekly", utc(2026, 3, 8, 23, 59), utc(2026, 3, 9)),
        ("monthly", NOW, utc(2026, 4, 1)),
        ("monthly", utc(2026, 12, 31, 23), utc(2027, 1, 1)),
        # Another time zone: the UTC calendar decides (still 2 March in UTC).
        ("daily", datetime(2026, 3, 3, 1, tzinfo=timezone(timedelta(hours=5))), utc(2026, 3, 3)),
    ],
)
def test_period_end_is_the_next_utc_period_start(
    reset: str | None, at: datetime, end: datetime | None
) -> None:
    assert period_end(reset, at) == end  # type: ignore[arg-type]


# -- read from a store ---------------------------------------------------------------------


def test_forecast_budget_reads_the_last_hour_of_the_ledger(tmp_path: Path) -> None:
    daily = BudgetSpec(USD, "daily")
    with SQLiteStore(tmp_path / "ledger.db") as store:
        # Earlier today, out of the window: counts as spent, not in the rate.
        store.record_call(call("bot", 300_000_000, NOW - timedelta(hours=2)), daily)
        # In the window (its start included): $0.45 in the last hour.
        store.record_call(call("bot", 150_000_000, NOW - timedelta(hours=1)), daily)
        store.record_call(call("bot", 300_000_000, NOW - timedelta(minutes=1)), daily)
        store.record_call(call("other", 900_000_000, NOW - timedelta(minutes=1)), daily)

        found = forecast_budget(store, "bot", limit_nanos=USD, reset="daily", now=NOW)
        assert (found.spent_nanos, found.window_spent_nanos) == (750_000_000, 450_000_000)
        # $0.25 left at $0.45 an hour: 2000 s, well before midnight.
        assert (found.seconds_left, found.runs_out) == (2000.0, True)

        # The spend given by the caller (the figure it shows) is used as it is.
        shown = forecast_budget(
            store, "bot", limit_nanos=USD, reset="daily", now=NOW, spent_nanos=100_000_000
        )
        assert shown.seconds_left == 7200.0

        # An hour before midnight: $0.20 left at $0.05 an hour outlasts the day.
        late = NOW + timedelta(hours=11)
        store.record_call(call("bot", 50_000_000, late - timedelta(minutes=1)), daily)
        lasting = forecast_budget(store, "bot", limit_nanos=USD, reset="daily", now=late)
        assert (lasting.seconds_left, lasting.runs_out) == (3600.0, False)


def test_forecast_budget_of_a_budget_key(tmp_path: Path) -> None:
    project, key_budget = BudgetSpec(10 * USD), BudgetSpec(USD)
    with SQLiteStore(tmp_path / "ledger.db") as store:
        store.record_call(call("app", 400_000_000, NOW, "alice"), project, key_budget)
        store.record_call(call("app", 100_000_000, NOW, "bob"), project, key_budget)
        found = forecast_budget(
            store, "app", limit_nanos=USD, reset=None, now=NOW, budget_key="alice"
        )
        assert (found.spent_nanos, found.window_spent_nanos) == (400_000_000, 400_000_000)
        assert found.seconds_left == 5400.0  # $0.60 left at $0.40 an hour, no reset
