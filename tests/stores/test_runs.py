"""Runs and refused calls in the store (schema step 7) on both backends: a run's row written
once and read back with its figures, the ledger rows naming their run, nested runs and a run
stopped by its cap (``@track_costs`` and ``llm_toll.run`` around the real openai client,
against the loopback replay server), and refusals counted per minute, not listed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError, track_costs
from llm_toll._warnings import forget_warnings
from llm_toll._worker import worker
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import BaseStore, SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES
from tests.stores.conftest import StoreFactory
from tests.stores.helpers import MONDAY, a_run, make_call, one_refusal


@pytest.fixture
def in_use(store: BaseStore) -> Iterator[BaseStore]:
    """``store``, used by every decorated call and run of the test."""
    llm_toll.set_store(store)
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    try:
        yield store
    finally:
        worker.drain()
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)


def test_a_run_is_kept_once_and_read_back_by_range_and_project(store: BaseStore) -> None:
    assert store.runs() == []
    store.record_runs([a_run("a", max_cost_nanos=9, budget_key="acme", status="refused")])
    store.record_runs([a_run("a", requests=99)])  # written once: the second write changes nothing
    store.record_runs([a_run("b", minutes=10, parent_id="a")])
    store.record_runs([a_run("c", project="other", minutes=20)])
    newest, middle, oldest = store.runs()
    assert [newest["id"], middle["id"], oldest["id"]] == ["c", "b", "a"]
    assert oldest == {
        "id": "a",
        "parent_id": None,
        "project": "proj",
        "name": "agent",
        "budget_key": "acme",
        "status": "refused",
        "requests": 2,
        "cost": 5.000000001,
        "max_cost": 9e-9,
        "started_at": MONDAY,
        "ended_at": MONDAY + timedelta(seconds=1.5),
        "cost_nanos": 5_000_000_001,
        "max_cost_nanos": 9,
        "duration_s": 1.5,
    }
    assert middle["parent_id"] == "a"
    assert [r["id"] for r in store.runs(project="proj")] == ["b", "a"]
    since, until = MONDAY + timedelta(minutes=10), MONDAY + timedelta(minutes=20)
    assert [r["id"] for r in store.runs(since=since, until=until)] == ["b"]
    assert [r["id"] for r in store.runs(limit=1)] == ["c"]


def test_refusals_add_up_in_one_row_per_minute(store: BaseStore) -> None:
    assert store.refusals() == []
    for second in range(100):  # 100 writes, as a flood of flushes would make them
        store.record_refusals([one_refusal(second % 50, message=f"refusal {second}")])
    store.record_refusals([one_refusal(5, budget_key="acme", reason="key", count=3)])
    store.record_refusals([one_refusal(60, minute=MONDAY + timedelta(minutes=1), model=None)])
    rows = store.refusals(limit=-1)
    assert [(r["budget_key"], r["model"], r["reason"], r["count"]) for r in rows] == [
        (None, None, "project", 1),  # the latest first
        (None, "gpt-4o", "project", 100),
        ("acme", "gpt-4o", "key", 3),
    ]
    flood = rows[1]
    assert flood["minute"] == MONDAY
    # The latest refusal's time and message, whichever order the writes came in.
    assert flood["last_at"] == MONDAY + timedelta(seconds=49)
    assert flood["message"] == "refusal 49"
    assert len(store.refusals(since=MONDAY + timedelta(minutes=1))) == 1
    assert len(store.refusals(until=MONDAY + timedelta(minutes=1), project="proj")) == 2
    assert store.refusals(project="other") == []


def test_the_ledger_row_names_its_run(store: BaseStore) -> None:
    store.record_call(make_call(run_id="r-1"))
    store.record_call(make_call())
    assert [row["run_id"] for row in store.calls()] == [None, "r-1"]


# -- runs made by real requests -------------------------------------------------------------


def test_a_decorated_function_is_a_run_whose_requests_name_it(
    in_use: BaseStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="agent")
    def agent() -> None:
        for _ in range(2):
            openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    agent()
    [run] = in_use.runs()
    calls = in_use.calls()
    assert len(calls) == 2 and {call["run_id"] for call in calls} == {run["id"]}
    assert run["name"].endswith("agent") and run["project"] == "agent"
    assert (run["status"], run["requests"], run["parent_id"]) == ("ok", 2, None)
    assert run["cost_nanos"] == sum(call["cost_nanos"] for call in calls) > 0
    assert run["started_at"] <= min(call["created_at"] for call in calls)
    assert run["ended_at"] >= run["started_at"]


def test_nested_runs_name_their_parent_and_a_capped_run_is_refused(
    in_use: BaseStore, replay: ReplayServer, openai_client: Any
) -> None:
    def ask() -> None:
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    def capped() -> None:
        with llm_toll.run(max_cost=1e-9, name="inner"):  # inherits project "nested"
            ask()  # the cap has room: nothing was spent yet
            ask()  # refused: the cap is spent

    def broken() -> None:
        with llm_toll.run(name="broken"):
            raise ValueError("the run's own failure")

    with llm_toll.run("nested", name="outer"):
        ask()
        with pytest.raises(BudgetExceededError):
            capped()
        with pytest.raises(ValueError, match="own failure"):
            broken()
    runs = {run["name"]: run for run in in_use.runs()}
    outer, inner, failed = runs["outer"], runs["inner"], runs["broken"]
    assert (outer["status"], inner["status"], failed["status"]) == ("ok", "refused", "error")
    assert inner["parent_id"] == failed["parent_id"] == outer["id"]
    assert (outer["requests"], inner["requests"]) == (2, 1)
    assert inner["max_cost_nanos"] == 1 and outer["max_cost_nanos"] is None
    by_run = {call["run_id"]: call["cost_nanos"] for call in in_use.calls()}
    assert by_run.keys() == {outer["id"], inner["id"]}
    assert inner["cost_nanos"] == by_run[inner["id"]]
    assert outer["cost_nanos"] == sum(by_run.values())  # the inner run's counts in it
    [refused] = in_use.refusals()
    assert (refused["project"], refused["reason"], refused["count"]) == ("nested", "run", 1)
    assert refused["model"] == "gpt-4o"
    assert "Run cap reached" in refused["message"]


def test_a_retry_loop_refused_100_times_adds_to_one_count(
    in_use: BaseStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="looping", max_budget=1e-9)
    def ask() -> None:
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()  # spends the budget
    for _ in range(100):
        with pytest.raises(BudgetExceededError):
            ask()
    rows = in_use.refusals()
    assert sum(row["count"] for row in rows) == 100
    # One row per minute the loop ran in: a loop that crossed a minute has two.
    minutes = {row["minute"] for row in rows}
    assert len(rows) == len(minutes) <= 2
    assert {(row["project"], row["reason"]) for row in rows} == {("looping", "project")}
    assert len(replay.requests) == 1  # none of them was sent


def test_a_second_store_on_the_database_reads_the_runs(
    in_use: BaseStore, store_factory: StoreFactory, replay: ReplayServer, openai_client: Any
) -> None:
    with llm_toll.run("shared"):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    [mine] = in_use.runs()  # hands this process's waiting rows to the writer first
    [run] = store_factory().runs(project="shared")
    assert run == mine
    assert run["requests"] == 1


def test_rows_a_locked_store_refuses_wait_for_the_next_batch(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path, busy_timeout_s=0)
    store.runs()  # the schema, before the file is locked
    blocker = sqlite3.connect(path, isolation_level=None)
    llm_toll.set_store(store)
    forget_warnings()
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process writing: the store is busy
        with llm_toll.run("locked", name="waits"):
            pass
        with pytest.warns(AccountingWarning, match="could not record runs"):
            assert store.runs() == []  # the worker's write was refused: the row is kept
        blocker.execute("ROLLBACK")
        [run] = store.runs()  # written by the next batch
        assert (run["name"], run["project"], run["status"]) == ("waits", "locked", "ok")
    finally:
        blocker.close()
        llm_toll.set_store(None)
        store.close()


async def test_an_async_run_is_recorded_by_the_worker(
    in_use: BaseStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    async with llm_toll.run("async-runs", name="gathered"):
        await asyncio.gather(
            *(
                async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
                for _ in range(3)
            )
        )
    [run] = await asyncio.to_thread(in_use.runs)  # a read: not on the event loop
    calls = await asyncio.to_thread(in_use.calls)
    assert (run["name"], run["status"], run["requests"]) == ("gathered", "ok", 3)
    assert run["cost_nanos"] == sum(call["cost_nanos"] for call in calls)
    assert {call["run_id"] for call in calls} == {run["id"]}
