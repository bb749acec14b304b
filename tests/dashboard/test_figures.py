"""The chart's time axis: every step between the first and the last, calls or not."""

from __future__ import annotations

from llm_toll.dashboard._figures import _every_step


def test_days_weeks_and_months_without_calls_keep_their_place() -> None:
    assert _every_step("day", ["2026-03-01", "2026-02-27"]) == [
        "2026-02-27",
        "2026-02-28",
        "2026-03-01",
    ]
    assert _every_step("week", ["2027-W01", "2026-W52"]) == ["2026-W52", "2026-W53", "2027-W01"]
    assert _every_step("month", ["2027-02", "2026-11"]) == [
        "2026-11",
        "2026-12",
        "2027-01",
        "2027-02",
    ]
    assert _every_step("day", []) == []
