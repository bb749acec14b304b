"""LangChain and LangGraph through their own entry points: real ChatOpenAI and
ChatAnthropic models, with llm_toll's callback in ``callbacks=`` or in the invoke config,
against the replay server."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic import SecretStr

import llm_toll
from llm_toll import BudgetExceededError, LangChainCallback
from llm_toll._worker import worker
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import UsageWarning
from llm_toll.integrations.langchain import AsyncLangChainCallback
from llm_toll.store import SQLiteStore
from tests.integration.test_alerts import Received, delivered
from tests.integration.test_decorated_providers import assert_recorded, genai_prices_nanos
from tests.support.alert_receiver import AlertReceiver, fields
from tests.support.otel import Telemetry

KEY = SecretStr("test")


def chat_openai(replay: ReplayServer, callbacks: list[Any] | None = None, **options: Any) -> Any:
    return ChatOpenAI(
        model="gpt-4o",
        base_url=replay.base_url + "/v1",
        api_key=KEY,
        max_retries=0,
        callbacks=callbacks,
        # one per test: langchain-openai would share one across the tests' event loops
        http_async_client=httpx.AsyncClient(),
        **options,
    )


def chat_anthropic(replay: ReplayServer, callbacks: list[Any]) -> Any:
    return ChatAnthropic(  # type: ignore[call-arg]
        model_name="claude-sonnet-4-6",
        anthropic_api_url=replay.base_url,
        api_key=KEY,
        max_retries=0,
        callbacks=callbacks,
    )


def assert_timed(row: dict[str, Any], span: Any, wall_s: float) -> None:
    """The call's duration is the call's, within the wall time measured around it."""
    assert 0 < row["duration_s"] <= wall_s
    elapsed_s = (span.end_time - span.start_time) / 1e9
    assert 0 < elapsed_s <= wall_s
    assert elapsed_s >= row["duration_s"] * 0.5


def test_chat_openai_with_the_callback_in_callbacks(
    store: SQLiteStore, replay: ReplayServer, telemetry: Telemetry
) -> None:
    replay.script(cached_tokens=64, reasoning_tokens=32, delay=0.05)
    model = chat_openai(replay, [LangChainCallback(project="lc-openai", max_budget=1.0)])
    t0 = time.perf_counter()
    message = model.invoke("Name three primary colours, briefly please.")
    wall_s = time.perf_counter() - t0
    assert message.content
    assert_recorded(store, "lc-openai", replay, "openai")
    [row] = store.get_usage_logs("lc-openai")
    assert row["response_id"] == replay.last.response_id == message.response_metadata["id"]
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o")
    assert row["cache_read_input_tokens"] == 64
    span = telemetry.span()
    assert span.attributes is not None
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["gen_ai.response.id"] == replay.last.response_id
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 64
    assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == 32
    assert_timed(row, span, wall_s)


def test_chat_openai_with_the_callback_in_the_invoke_config(
    store: SQLiteStore, replay: ReplayServer
) -> None:
    replay.script(cached_tokens=16)
    handler = LangChainCallback(project="lc-config")
    chat_openai(replay).invoke("hello there", config={"callbacks": [handler]})
    assert_recorded(store, "lc-config", replay, "openai")


def test_chat_openai_streamed(store: SQLiteStore, replay: ReplayServer) -> None:
    replay.script(cached_tokens=8)
    handler = LangChainCallback(project="lc-stream")
    model = chat_openai(replay, [handler], streaming=True, stream_usage=True)
    assert "".join(str(chunk.content) for chunk in model.stream("hello there"))
    assert_recorded(store, "lc-stream", replay, "openai")


def test_a_stream_without_usage_warns_and_records_nothing(
    store: SQLiteStore, replay: ReplayServer
) -> None:
    """langchain-openai given a base_url asks a stream for no usage: nothing to price."""
    model = chat_openai(replay, [LangChainCallback(project="lc-no-usage")], streaming=True)
    with pytest.warns(UsageWarning, match="stream_usage=True"):
        assert "".join(str(chunk.content) for chunk in model.stream("hello there"))
    assert replay.last.usage is None
    assert store.get_usage_logs("lc-no-usage") == []


def test_chat_anthropic_with_cache_writes(store: SQLiteStore, replay: ReplayServer) -> None:
    replay.script(cached_tokens=40, cache_creation_tokens=24)
    model = chat_anthropic(replay, [LangChainCallback(project="lc-anthropic")])
    message = model.invoke("Name three primary colours, briefly please.")
    [row] = store.get_usage_logs("lc-anthropic")
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    assert row["cache_read_input_tokens"] == 40
    assert row["cache_creation_input_tokens"] == 24
    assert (row["provider"], row["response_id"]) == ("anthropic", message.response_metadata["id"])
    assert row["cost_nanos"] == genai_prices_nanos(sent, row["model"], "anthropic") > 0


def assert_each_anthropic_request_recorded(
    store: SQLiteStore, project: str, replay: ReplayServer
) -> None:
    """One row per request served, each with every unit served (the input side from the
    stream's cumulative ``message_delta``) at its exact cost, and their sum as the total.
    langchain-anthropic's streamed message carries no response id: rows are matched by
    their units."""

    def units(row: dict[str, Any]) -> tuple[int, ...]:
        return tuple(row[name] for name in UNITS)

    rows = sorted(store.get_usage_logs(project, limit=100), key=units)
    served = sorted((e.tokens for e in replay.requests if e.tokens), key=lambda t: tuple(
        getattr(t, name) for name in UNITS))  # fmt: skip
    assert len(rows) == len(served) == len(replay.requests)
    for row, sent in zip(rows, served, strict=True):
        assert units(row) == tuple(getattr(sent, name) for name in UNITS)
        assert row["cost_nanos"] == genai_prices_nanos(sent, row["model"], "anthropic") > 0
    total = sum(row["cost_nanos"] for row in rows)
    assert store.get_total_cost(project) == pytest.approx(total / 1e9)


UNITS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
         "cache_creation_input_tokens")  # fmt: skip
STREAMED_ANTHROPIC = [{"cached_tokens": 40, "cache_creation_tokens": 24}, {}]


def test_chat_anthropic_streamed(store: SQLiteStore, replay: ReplayServer) -> None:
    """langchain-anthropic reads a stream's usage from its ``message_delta`` alone: the
    input side is there too (cumulative counts, as the API sends them)."""
    model = chat_anthropic(replay, [LangChainCallback(project="lc-anthropic-stream")])
    for script in STREAMED_ANTHROPIC:
        replay.script(**script)
        assert "".join(str(chunk.content) for chunk in model.stream("Name three colours."))
    assert len(replay.requests) == len(STREAMED_ANTHROPIC)
    assert_each_anthropic_request_recorded(store, "lc-anthropic-stream", replay)


async def test_chat_anthropic_astreamed(store: SQLiteStore, replay: ReplayServer) -> None:
    model = chat_anthropic(replay, [AsyncLangChainCallback(project="lc-anthropic-astream")])
    for script in STREAMED_ANTHROPIC:
        replay.script(**script)
        assert "".join([str(chunk.content) async for chunk in model.astream("Name colours.")])
    assert len(replay.requests) == len(STREAMED_ANTHROPIC)
    assert_each_anthropic_request_recorded(store, "lc-anthropic-astream", replay)


def test_a_spent_budget_stops_the_chain_before_the_request(
    store: SQLiteStore, replay: ReplayServer
) -> None:
    handler = LangChainCallback(project="lc-spent", max_budget=0.000001)
    model = chat_openai(replay, [handler])
    model.invoke("hello there")  # allowed; crosses the tiny budget
    assert len(replay.requests) == 1
    with pytest.raises(BudgetExceededError):
        model.invoke("hello again")
    assert len(replay.requests) == 1  # refused before it was sent
    assert len(store.get_usage_logs("lc-spent")) == 1


async def test_ainvoke_with_the_async_handler(
    store: SQLiteStore, replay: ReplayServer, telemetry: Telemetry
) -> None:
    replay.script(cached_tokens=32, delay=0.05)
    handler = AsyncLangChainCallback(project="lc-async", max_budget=0.000001)
    model = chat_openai(replay, [handler])
    t0 = time.perf_counter()
    await model.ainvoke("hello there")
    wall_s = time.perf_counter() - t0
    assert_recorded(store, "lc-async", replay, "openai")
    [row] = store.get_usage_logs("lc-async")
    span = telemetry.span()
    assert_timed(row, span, wall_s)
    assert span.attributes is not None
    assert span.attributes["gen_ai.provider.name"] == "openai"
    with pytest.raises(BudgetExceededError):
        await model.ainvoke("hello again")
    assert len(replay.requests) == 1


async def test_ainvoke_with_the_sync_handler(store: SQLiteStore, replay: ReplayServer) -> None:
    """LangChain calls the sync handler in a thread of its own in async chains; its refusal
    still stops the chain."""
    replay.script(cached_tokens=16)
    handler = LangChainCallback(project="lc-async-sync", max_budget=0.000001)
    model = chat_openai(replay, [handler])
    await model.ainvoke("hi")
    worker.wait_idle()
    assert_recorded(store, "lc-async-sync", replay, "openai")
    with pytest.raises(BudgetExceededError):
        await model.ainvoke("hi again")
    assert len(replay.requests) == 1


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
def test_inside_a_run_each_request_is_recorded_once(
    store: SQLiteStore, replay: ReplayServer, streaming: bool
) -> None:
    """langchain-openai calls the openai SDK, which the hooks record inside a run: the
    callback of the same project does not record it again."""
    replay.script(cached_tokens=8)
    handler = LangChainCallback(project="lc-run")
    model = chat_openai(replay, [handler], streaming=streaming, stream_usage=True)
    with llm_toll.run(project="lc-run") as run:
        model.invoke("hello there")
    assert_recorded(store, "lc-run", replay, "openai")
    [row] = store.get_usage_logs("lc-run")
    assert run.cost == pytest.approx(row["cost_nanos"] / 1e9)


async def test_inside_a_run_async_once(store: SQLiteStore, replay: ReplayServer) -> None:
    model = chat_openai(replay, [AsyncLangChainCallback(project="lc-arun")])
    async with llm_toll.run(project="lc-arun"):
        await model.ainvoke("hello there")
    assert_recorded(store, "lc-arun", replay, "openai")


def test_a_langgraph_agent_is_a_run_with_a_cap(store: SQLiteStore, replay: ReplayServer) -> None:
    """A LangGraph graph of ChatOpenAI calls inside ``llm_toll.run``: each request is
    recorded through the hooks, and the run's cap stops the graph before the next one."""
    model = chat_openai(replay)

    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        return "think" if len(state["messages"]) < 10 else END

    builder = StateGraph(MessagesState)
    builder.add_node("think", think)
    builder.add_edge(START, "think")
    builder.add_conditional_edges("think", route)
    graph = builder.compile()

    with (
        pytest.raises(BudgetExceededError) as refused,
        llm_toll.run(project="lc-graph", max_cost=0.0001) as run,
    ):
        graph.invoke(MessagesState(messages=[HumanMessage("Plan a trip, step by step.")]))
    assert refused.value.scope == "run"
    rows = store.get_usage_logs("lc-graph")
    assert 1 <= len(rows) == len(replay.requests) < 9  # stopped by the cap, not the graph
    assert run.cost == pytest.approx(sum(r["cost_nanos"] for r in rows) / 1e9)
    assert run.cost >= 0.0001


@pytest.mark.parametrize("handler_class", [LangChainCallback, AsyncLangChainCallback])
async def test_the_handler_raises_the_budgets_alerts(
    store: SQLiteStore, replay: ReplayServer, handler_class: type[LangChainCallback]
) -> None:
    thresholds, exceeded = Received(), Received()
    with AlertReceiver() as receiver:
        handler = handler_class(
            project="lc-alerts",
            max_budget=0.000001,
            on_threshold=thresholds,
            on_exceeded=exceeded,
            alert_webhook=receiver.url,
        )
        model = chat_openai(replay, [handler])
        await model.ainvoke("hello there")  # crosses every threshold, then the limit
        with pytest.raises(BudgetExceededError):
            await model.ainvoke("hello again")
        bodies = receiver.wait_for(4)
        delivered()
    [row] = store.get_usage_logs("lc-alerts")
    spent = Decimal(row["cost_nanos"]).scaleb(-9)
    assert [(a.threshold, a.spent) for a in thresholds.alerts] == [
        (50, spent),
        (80, spent),
        (100, spent),
    ]
    assert [(a.kind, a.refused) for a in exceeded.alerts] == [
        ("exceeded", False),
        ("exceeded", True),
    ]
    assert [fields(body)["kind"] for body in bodies] == [
        "threshold",
        "threshold",
        "exceeded",
        "refused",
    ]
