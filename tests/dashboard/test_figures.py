"""The chart's time axis: every step between the first and the last, calls or not; the
runs and refused calls as the page is given them."""

from __future__ import annotations

from datetime import timedelta

from llm_toll.dashboard._figures import Range, _every_step, runs
from llm_toll.store import SQLiteStore
from tests.stores.helpers import MONDAY, a_run, one_refusal


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


def test_runs_and_refused_calls_are_the_store_s_exactly(store: SQLiteStore) -> None:
    store.record_runs([a_run("r1", cost_nanos=5_000_000_001, max_cost_nanos=7_000_000_000)])
    store.record_runs([a_run("r2", minutes=5, status="error", parent_id="r1")])
    store.record_refusals([one_refusal(3, model=None)] * 100)
    shown = runs(store, Range(), limit=1)
    [newest] = shown["runs"]
    assert (newest["id"], newest["parent_id"], newest["status"]) == ("r2", "r1", "error")
    everything = runs(store, Range())
    assert [(run["cost_nanos"], run["max_cost_nanos"]) for run in everything["runs"]] == [
        ("5000000001", None),
        ("5000000001", "7000000000"),  # strings of nanos: exact in JSON
    ]
    [refused] = everything["refusals"]
    assert (refused["count"], refused["model"], refused["flags"]) == (100, None, ["refused"])
    assert refused["minute"] == MONDAY.isoformat()
    later = Range(since=MONDAY + timedelta(minutes=1))
    assert runs(store, later) == {
        "runs": [runs(store, Range(), limit=1)["runs"][0]],
        "refusals": [],
    }
