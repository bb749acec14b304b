"""The dashboard's JSON over each backend: its figures are the read API's, exactly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest

from llm_toll._budget.records import BudgetSpec
from llm_toll.dashboard import DashboardServer, open_dashboard
from llm_toll.dashboard._figures import budgets
from llm_toll.store import BaseStore
from tests.dashboard.http import get
from tests.stores.helpers import MONDAY, a_run, make_call, one_refusal


@pytest.fixture
def dashboard(store: BaseStore) -> Iterator[DashboardServer]:
    server = open_dashboard(store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def record(store: BaseStore) -> None:
    for day, (project, model, key, cost) in enumerate(
        [
            ("chat", "gpt-4o", "alice", 1_234_567_890),
            ("chat", "gpt-4o-mini", None, 12_345),
            ("search", "embed", "bob", 160),
            ("chat", "gpt-4o", "bob", 7),
        ]
    ):
        at = MONDAY + timedelta(days=day)
        store.record_call(make_call(cost, project=project, model=model, budget_key=key, at=at))
    store.record_call(make_call(0, project="search", model="odd", at=MONDAY, price_known=False))


def test_the_overview_is_the_read_apis(store: BaseStore, dashboard: DashboardServer) -> None:
    record(store)
    since, until = MONDAY.date().isoformat(), (MONDAY + timedelta(days=3)).date().isoformat()
    answer = get(dashboard.url, f"/api/overview?step=day&group=model&since={since}&until={until}")
    assert answer.status == 200
    overview = answer.json()
    end = MONDAY + timedelta(days=3)
    for group in ("project", "model", "key"):
        expected = [
            (row[group], str(row["cost_nanos"]), row["calls"])
            for row in store.spend([group], since=MONDAY, until=end)
        ]
        shown = [
            (row["name"], row["cost_nanos"], row["calls"]) for row in overview["breakdown"][group]
        ]
        assert sorted(shown, key=str) == sorted(expected, key=str), group
    assert overview["totals"]["cost_nanos"] == str(1_234_567_890 + 12_345 + 160)
    assert (overview["totals"]["calls"], overview["totals"]["unpriced_calls"]) == (4, 1)
    chart = overview["series"]
    days = [(MONDAY + timedelta(days=n)).date().isoformat() for n in range(3)]
    assert chart["buckets"] == days
    by_model = {series["name"]: series["cost_nanos"] for series in chart["series"]}
    assert by_model["gpt-4o"] == ["1234567890", "0", "0"]
    assert by_model["embed"] == ["0", "0", "160"]


def test_calls_newest_first_and_after_an_id(store: BaseStore, dashboard: DashboardServer) -> None:
    record(store)
    calls = get(dashboard.url, "/api/calls?limit=3").json()["calls"]
    assert [call["cost_nanos"] for call in calls] == ["7", "160", "12345"]
    assert calls[0]["key"] == "bob" and calls[0]["created_at"].startswith("2026-03-05T12:00")
    # Live updates go by id, the order of recording (a call may be recorded late).
    newest = max(call["id"] for call in get(dashboard.url, "/api/calls").json()["calls"])
    assert get(dashboard.url, f"/api/calls?after_id={newest}").json() == {"calls": []}
    store.record_call(make_call(99, project="late", at=MONDAY + timedelta(days=9)))
    (late,) = get(dashboard.url, f"/api/calls?after_id={newest}").json()["calls"]
    assert (late["project"], late["cost_nanos"], late["flags"]) == ("late", "99", [])
    odd = get(dashboard.url, "/api/calls?limit=50").json()["calls"]
    assert [call["flags"] for call in odd if call["model"] == "odd"] == [["unpriced"]]


def test_budgets_include_stored_limits_nothing_spent_against(store: BaseStore) -> None:
    """A limit set with ``llm-toll budget set`` is a budget from the moment it is set, not
    from its first call; one that calls already carry is shown once."""
    now = datetime.now(timezone.utc)
    store.set_budget_limit("chat", 5_000_000_000, reset="daily", budget_key=None, set_by="ops")
    store.set_budget_limit("search", 2_000_000_000, reset=None, budget_key=None, set_by="ops")
    store.record_call(
        make_call(250_000_000, project="search", at=now),
        BudgetSpec(2_000_000_000, None),
    )

    shown = {(b["project"], b["reset"]): b for b in budgets(store, now)}

    assert set(shown) == {("chat", "daily"), ("search", "never")}
    assert (shown["chat", "daily"]["limit_nanos"], shown["chat", "daily"]["spent_nanos"]) == (
        "5000000000",
        "0",
    )
    assert shown["chat", "daily"]["period"] == now.date().isoformat()
    assert (shown["search", "never"]["spent_nanos"], shown["search", "never"]["period"]) == (
        "250000000",
        "lifetime",
    )


def test_runs_and_refusals_are_the_read_apis(store: BaseStore, dashboard: DashboardServer) -> None:
    store.record_runs([a_run("outer", minutes=0, cost_nanos=1_234_567_890, requests=3)])
    capped: dict[str, Any] = {"parent_id": "outer", "status": "refused", "max_cost_nanos": 1_000}
    store.record_runs([a_run("inner", minutes=1, cost_nanos=160, **capped)])
    for second in range(100):
        store.record_refusals([one_refusal(second % 60, budget_key="alice", reason="key")])
    window = urlencode({"since": MONDAY.isoformat(), "until": MONDAY + timedelta(minutes=1)})
    answer = get(dashboard.url, f"/api/runs?{window}").json()
    assert answer["runs"] == [
        {
            "id": "outer",
            "parent_id": None,
            "name": "agent",
            "project": "proj",
            "key": None,
            "status": "ok",
            "started_at": MONDAY.isoformat(),
            "duration_s": 1.5,
            "requests": 3,
            "cost_nanos": "1234567890",
            "max_cost_nanos": None,
        }
    ]
    [refused] = answer["refusals"]
    assert (refused["key"], refused["reason"], refused["count"]) == ("alice", "key", 100)
    assert refused["flags"] == ["refused"]
    assert refused["last_at"] == (MONDAY + timedelta(seconds=59)).isoformat()
    every = get(dashboard.url, "/api/runs").json()
    assert [run["id"] for run in every["runs"]] == [run["id"] for run in store.runs()]
    assert every["runs"][0]["max_cost_nanos"] == "1000"
