"""One vocabulary for periods: what a stored period key is shown as, and back."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from llm_toll._budget.periods import LIFETIME, period_key, shown_period, stored_period
from llm_toll.telemetry._names import period_label


def test_the_period_without_reset_is_lifetime_where_shown_and_in_telemetry() -> None:
    assert shown_period(period_key(None, datetime.now(timezone.utc))) == "lifetime"
    assert period_label(None) == "lifetime"
    assert stored_period("lifetime") == LIFETIME


@pytest.mark.parametrize("day", ["2026-11-30", "2026-12-06", "2021-01-03", "2024-12-30"])
def test_a_week_is_shown_as_its_iso_week_and_read_back(day: str) -> None:
    at = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    key = period_key("weekly", at)
    year, week, _ = date.fromisoformat(day).isocalendar()
    assert shown_period(key) == f"{year}-W{week:02d}"
    assert stored_period(shown_period(key)) == key


def test_days_and_months_are_shown_as_stored() -> None:
    at = datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc) + timedelta(minutes=2)
    for reset in ("daily", "monthly"):
        key = period_key(reset, at)
        assert shown_period(key) == key == stored_period(key)


def test_an_impossible_iso_week_is_refused() -> None:
    with pytest.raises(ValueError, match="no ISO week '2026-W54'"):
        stored_period("2026-W54")
