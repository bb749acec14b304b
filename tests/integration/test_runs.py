"""Runs: an agent function's many requests, nested runs, run caps, requests made in tasks and
threads, rate limits per request, and requests made outside any run."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError, LocalRateLimitError, track_costs
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES
from tests.support.otel import Telemetry

CLAUDE = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": MESSAGES}


def test_an_agent_records_each_request_and_returns_its_text(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    anthropic_client: Any,
    gemini_client: Any,
    telemetry: Telemetry,
) -> None:
    @track_costs(project="agent", max_budget=5.0)
    def agent(question: str) -> str:
        plan = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        draft = anthropic_client.messages.create(**CLAUDE)
        check = gemini_client.models.generate_content(model="gemini-2.5-flash", contents=question)
        return f"{plan.choices[0].message.content} {draft.content[0].text} {check.text}"

    answer = agent("What are the primary colours?")
    assert isinstance(answer, str) and answer
    rows = store.get_usage_logs("agent", limit=10)
    assert sorted((row["provider"], row["model"]) for row in rows) == [
        ("anthropic", "claude-sonnet-4-6"),
        ("gcp.gemini", "gemini-2.5-flash"),
        ("openai", "gpt-4o"),
    ]
    assert all(not row["estimated"] and row["cost_nanos"] > 0 for row in rows)
    # The returned text is not recorded again: the run's requests were.
    [run] = telemetry.runs()
    assert run.attributes is not None
    assert run.attributes["llm_toll.run.requests"] == 3
    assert run.attributes["llm_toll.run.cost"] == pytest.approx(sum(r["cost"] for r in rows))
    assert len(telemetry.requests()) == 3


def test_a_returned_hooked_response_is_recorded_once(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="returned")
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()
    assert len(store.get_usage_logs("returned")) == 1


def test_nested_runs_keep_their_own_caps_and_roll_up(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    def ask() -> None:
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with llm_toll.run("nested", max_cost=1.0) as outer:
        ask()
        with llm_toll.run(max_cost=1e-9) as inner:  # inherits project "nested"
            ask()  # the cap has room: nothing was spent yet
            with pytest.raises(BudgetExceededError) as refused:
                ask()
        ask()  # the outer run's cap still has room
    assert refused.value.scope == "run"
    assert refused.value.project == "nested"
    assert refused.value.max_budget == pytest.approx(1e-9)
    assert refused.value.current_cost == pytest.approx(inner.cost)
    assert len(replay.requests) == 3  # the refused request never reached the server
    rows = store.get_usage_logs("nested", limit=10)
    assert len(rows) == 3
    assert outer.cost == pytest.approx(sum(row["cost"] for row in rows))
    assert inner.cost == pytest.approx(rows[0]["cost"])  # newest first: the inner request


def test_a_run_cap_stops_an_agent_before_its_next_request(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    @track_costs(project="capped", max_run_cost=0.0003)
    def agent() -> None:
        for _ in range(50):  # an agent loop the cap has to stop
            openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with pytest.raises(BudgetExceededError) as refused:
        agent()
    rows = store.get_usage_logs("capped", limit=100)
    assert len(rows) == len(replay.requests) >= 1  # every request sent was recorded
    spent = sum(row["cost_nanos"] for row in rows)
    before_last = spent - rows[0]["cost_nanos"]
    assert before_last < 300_000 <= spent  # refused once the cap was reached, not before
    assert refused.value.scope == "run"
    [run] = telemetry.runs()
    assert run.status.status_code.name == "ERROR"
    [refusal] = [s for s in telemetry.requests() if s.status.status_code.name == "ERROR"]
    assert [event.name for event in refusal.events] == ["llm_toll.budget.exceeded"]


def test_a_spent_project_budget_refuses_requests_mid_run(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="mid-run", max_budget=0.0003)
    def agent() -> None:
        for _ in range(20):
            openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with pytest.raises(BudgetExceededError) as refused:
        agent()
    assert refused.value.scope == "project"
    assert len(store.get_usage_logs("mid-run", limit=100)) == len(replay.requests) < 20


def test_a_spent_key_budget_refuses_that_tenants_requests_mid_run(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(
        project="tenants",
        budget_key=lambda tenant: tenant,
        key_budget=0.0003,
    )
    def agent(tenant: str) -> None:
        for _ in range(20):
            openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with pytest.raises(BudgetExceededError) as refused:
        agent("ann")
    assert (refused.value.scope, refused.value.budget_key) == ("key", "ann")
    sent_for_ann = len(replay.requests)
    assert 1 <= sent_for_ann < 20
    rows = store.get_usage_logs("tenants", limit=100)
    assert len(rows) == sent_for_ann and {row["budget_key"] for row in rows} == {"ann"}
    # Another tenant's requests are not held back by ann's spent budget.
    with pytest.raises(BudgetExceededError) as bob_refused:
        agent("bob")
    assert bob_refused.value.budget_key == "bob"
    assert len(replay.requests) == 2 * sent_for_ann


async def test_requests_in_tasks_and_threads_belong_to_the_run(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any, openai_client: Any
) -> None:
    def sync_request() -> None:
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    async with llm_toll.run("spread") as run:
        await asyncio.gather(
            *(async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
              for _ in range(3))
        )  # fmt: skip
        await asyncio.create_task(
            async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        )
        await asyncio.to_thread(sync_request)
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(sync_request,))
        thread.start()
        thread.join()
    assert run.requests == 6
    assert len(store.get_usage_logs("spread", limit=100)) == 6


def test_requests_outside_any_run_are_not_recorded(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    llm_toll.instrument()  # hooks on, no project: a request outside any run is left alone
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert store.get_all_project_summaries() == []


def test_instrument_with_a_project_tracks_every_request(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    try:
        assert llm_toll.instrument(project="everything", max_budget=1.0)
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        openai_client.embeddings.create(model="text-embedding-3-small", input="colours")
        rows = store.get_usage_logs("everything")
        assert sorted(row["model"] for row in rows) == ["gpt-4o", "text-embedding-3-small"]
    finally:
        llm_toll.uninstrument()
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(store.get_usage_logs("everything")) == 2
    llm_toll.instrument()  # the hooks back on, for the tests that follow


def test_rate_limit_counts_requests(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="rated", rate_limit=2)
    def agent() -> None:
        for _ in range(3):
            openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with pytest.raises(LocalRateLimitError):
        agent()  # its first request used the call's own admission, the second a new one
    assert len(replay.requests) == 2
    assert len(store.get_usage_logs("rated")) == 2


def test_run_rows_and_refusals_go_to_the_store_in_use_when_they_happened(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, tmp_path: Path
) -> None:
    """A run's row and a refusal's count are written off the call path a moment later: to
    the store that was in use then, as the run's requests were, not to one set since."""
    later = SQLiteStore(tmp_path / "later.db")
    try:

        def spend_then_ask_again() -> None:
            for _ in range(2):  # the first spends the cap, the second is refused
                openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

        with pytest.raises(BudgetExceededError), llm_toll.run("moved", max_cost=1e-9):
            spend_then_ask_again()
        llm_toll.set_store(later)  # within the moment the worker waits for more rows
        assert [run["status"] for run in store.runs(project="moved")] == ["refused"]
        assert [count["count"] for count in store.refusals(project="moved")] == [1]
        assert later.runs(project="moved") == []
        assert later.refusals(project="moved") == []
    finally:
        llm_toll.set_store(store)
        later.close()


def test_a_burst_of_runs_is_written_whole(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs ending faster than their rows' short wait are written in batches as they fill,
    never dropped: here five times more runs end within one wait than may be kept waiting
    (the limits are made small, as a burst of tens of thousands of runs would meet them)."""
    from llm_toll._call import batch

    monkeypatch.setattr(batch, "BATCH_ROWS", 10)
    monkeypatch.setattr(batch, "MAX_KEPT", 40)
    for _ in range(200):
        with llm_toll.run("burst"):
            pass
    assert len(store.runs(project="burst", limit=-1)) == 200
