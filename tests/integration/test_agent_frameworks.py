"""Agent frameworks without an adapter: pydantic-ai and the OpenAI Agents SDK call the
openai SDK, which llm_toll hooks, so an agent run inside ``llm_toll.run(...)`` is gated,
recorded and spanned request by request, as any code calling the SDK is.

Each agent here makes two model requests: the replay server scripts a tool call first,
then answers the request that carries the tool's result in text. Under a cap the first
request spends, the second is refused before it is sent: ``BudgetExceededError`` reaches
the caller as it is (neither framework wraps it) and the server saw one request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError
from llm_toll.demo.replay import ReplayServer
from llm_toll.demo.replay._answer import Exchange
from llm_toll.store import SQLiteStore
from llm_toll.usage import Usage
from tests.conftest import API_KEY
from tests.integration.test_decorated_providers import genai_prices_nanos
from tests.support.otel import Telemetry
from tests.support.payloads.tool_calls import (
    chat_tool_call,
    chat_tool_call_stream,
    responses_function_call,
    responses_function_call_stream,
)

if TYPE_CHECKING:
    import openai

MODEL = "gpt-4o"
QUESTION = "What is the weather in Paris?"
CITY = {"city": "Paris"}
# The scripted tool call's usage: 120 prompt and 20 completion tokens of gpt-4o cost
# $0.0005, so a run capped at $0.0004 admits it (nothing spent yet) and refuses the next.
TOOL_CALL_TOKENS = {"prompt": 120, "completion": 20}
CAP_BELOW_FIRST = 0.0004


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def served(exchange: Exchange) -> dict[str, Any]:
    """The response one exchange answered, whole: for a stream, its chat chunk that carries
    the usage, or the Responses API's ``response.completed`` response."""
    if isinstance(exchange.response, dict):
        return exchange.response
    for data in reversed(exchange.response):
        if isinstance(data, dict) and data.get("type") == "response.completed":
            return dict(data["response"])
        if isinstance(data, dict) and data.get("usage"):
            return data
    raise AssertionError(f"no usage in the stream answered: {exchange.response!r}")


def sent_usage(exchange: Exchange) -> Usage:
    """The usage the server sent for one exchange (scripted or computed), normalised."""
    usage = served(exchange)["usage"]
    if exchange.api == "openai.responses":
        cached = usage["input_tokens_details"]["cached_tokens"]
        return Usage(usage["input_tokens"], usage["output_tokens"], cached)
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    return Usage(usage["prompt_tokens"], usage["completion_tokens"], cached)


def assert_each_request_recorded(
    store: SQLiteStore, project: str, replay: ReplayServer, telemetry: Telemetry, requests: int
) -> float:
    """One ledger row per request the agent made, each priced as genai-prices prices the
    usage served, and one span each under the run's span; returns the rows' total."""
    assert len(replay.requests) == requests
    assert all(exchange.status == 200 for exchange in replay.requests)
    rows = {row["response_id"]: row for row in store.get_usage_logs(project, limit=100)}
    assert sorted(rows) == sorted(served(e)["id"] for e in replay.requests)
    for exchange in replay.requests:
        row, usage = rows[served(exchange)["id"]], sent_usage(exchange)
        assert (row["provider"], row["model"]) == ("openai", MODEL)
        assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens,
                                                               usage.output_tokens)  # fmt: skip
        assert not row["estimated"]
        assert row["cost_nanos"] == genai_prices_nanos(usage, MODEL, "openai") > 0
    spans = telemetry.requests()
    [run] = telemetry.runs()
    assert len(spans) == requests
    assert all(span.parent is not None and span.parent.span_id == run.context.span_id
               for span in spans)  # fmt: skip
    return float(sum(row["cost"] for row in rows.values()))


def assert_refused_second(
    refused: pytest.ExceptionInfo[BudgetExceededError],
    store: SQLiteStore,
    project: str,
    replay: ReplayServer,
) -> None:
    """The tool call was sent and recorded; the answer's request never left the process."""
    assert refused.value.scope == "run"
    assert refused.value.project == project
    assert refused.value.max_budget == pytest.approx(CAP_BELOW_FIRST)
    assert len(replay.requests) == 1  # the server's count: the second request was not sent
    [row] = store.get_usage_logs(project)
    assert row["response_id"] == served(replay.requests[0])["id"]
    assert refused.value.current_cost == pytest.approx(row["cost"])


# -- pydantic-ai ----------------------------------------------------------------------------


def pydantic_agent(client: openai.AsyncOpenAI) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client))
    agent = Agent(model, instructions="Answer with the weather tool.")
    agent.tool_plain(get_weather)
    return agent


@pytest.fixture
def sync_client(replay: ReplayServer) -> openai.AsyncOpenAI:
    """An async client for a framework's sync entry point (it runs an event loop of its
    own); not closed: closing it would need that loop, and it holds no open connection."""
    import openai

    return openai.AsyncOpenAI(base_url=replay.base_url + "/v1", api_key=API_KEY, max_retries=0)


def test_pydantic_ai_run_sync_records_each_request(
    store: SQLiteStore, replay: ReplayServer, telemetry: Telemetry, sync_client: Any
) -> None:
    agent = pydantic_agent(sync_client)
    replay.script(body=chat_tool_call(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))
    with llm_toll.run("pai-sync", max_cost=1.0) as run:
        result = agent.run_sync(QUESTION)
    assert result.output == replay.requests[1].response["choices"][0]["message"]["content"]
    total = assert_each_request_recorded(store, "pai-sync", replay, telemetry, requests=2)
    assert run.cost == pytest.approx(total)
    assert replay.requests[1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_get_weather",
        "content": "Sunny in Paris.",
    }


async def test_pydantic_ai_run_records_each_request(
    store: SQLiteStore, replay: ReplayServer, telemetry: Telemetry, async_openai_client: Any
) -> None:
    agent = pydantic_agent(async_openai_client)
    replay.script(body=chat_tool_call(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))
    async with llm_toll.run("pai-async", max_cost=1.0) as run:
        result = await agent.run(QUESTION)
    assert result.output == replay.requests[1].response["choices"][0]["message"]["content"]
    total = assert_each_request_recorded(store, "pai-async", replay, telemetry, requests=2)
    assert run.cost == pytest.approx(total)


def test_pydantic_ai_run_sync_is_stopped_at_its_cap(
    store: SQLiteStore, replay: ReplayServer, sync_client: Any
) -> None:
    agent = pydantic_agent(sync_client)
    replay.script(body=chat_tool_call(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))
    capped = llm_toll.run("pai-sync-cap", max_cost=CAP_BELOW_FIRST)
    with pytest.raises(BudgetExceededError) as refused, capped:  # pydantic-ai does not wrap it
        agent.run_sync(QUESTION)
    assert_refused_second(refused, store, "pai-sync-cap", replay)


async def test_pydantic_ai_run_is_stopped_at_its_cap(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    agent = pydantic_agent(async_openai_client)
    replay.script(body=chat_tool_call(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))
    with pytest.raises(BudgetExceededError) as refused:
        async with llm_toll.run("pai-async-cap", max_cost=CAP_BELOW_FIRST):
            await agent.run(QUESTION)
    assert_refused_second(refused, store, "pai-async-cap", replay)


async def pydantic_streamed(agent: Any) -> str:
    """``agent.run_stream``, read to its final output."""
    async with agent.run_stream(QUESTION) as result:
        return str(await result.get_output())


async def test_pydantic_ai_run_stream_records_each_request(
    store: SQLiteStore, replay: ReplayServer, telemetry: Telemetry, async_openai_client: Any
) -> None:
    """``agent.run_stream``: the tool call and the answer both arrive as streams, each
    metered as it arrives and recorded once."""
    agent = pydantic_agent(async_openai_client)
    replay.script(body=chat_tool_call_stream(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))
    async with llm_toll.run("pai-stream", max_cost=1.0) as run:
        output = await pydantic_streamed(agent)
    assert output == replay.requests[1].text
    assert all(exchange.stream for exchange in replay.requests)
    total = assert_each_request_recorded(store, "pai-stream", replay, telemetry, requests=2)
    assert run.cost == pytest.approx(total)


async def test_pydantic_ai_run_stream_is_stopped_at_its_cap(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    agent = pydantic_agent(async_openai_client)
    replay.script(body=chat_tool_call_stream(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))
    with pytest.raises(BudgetExceededError) as refused:
        async with llm_toll.run("pai-stream-cap", max_cost=CAP_BELOW_FIRST):
            await pydantic_streamed(agent)
    assert_refused_second(refused, store, "pai-stream-cap", replay)


# -- OpenAI Agents SDK ----------------------------------------------------------------------

APIS = ("responses", "chat_completions")


@pytest.fixture
def agents_default_client() -> Iterator[None]:
    """The Agents SDK's process-wide settings, as its docs set them for another endpoint:
    tracing off (it would export to OpenAI's platform), the default client put back after."""
    from agents import set_tracing_disabled
    from agents.models import _openai_shared

    set_tracing_disabled(True)
    previous = _openai_shared.get_default_openai_client()
    yield
    _openai_shared._default_openai_client = previous


def openai_agent(client: openai.AsyncOpenAI, api: str) -> Any:
    """An agent on the Responses API through the SDK's default client (a model name), or on
    Chat Completions through a model object given the client."""
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        function_tool,
        set_default_openai_client,
    )

    set_default_openai_client(client, use_for_tracing=False)
    model: Any = MODEL
    if api == "chat_completions":
        model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    return Agent(
        name="weather",
        instructions="Answer with the weather tool.",
        model=model,
        tools=[function_tool(get_weather)],
        # A Chat Completions stream from another host than api.openai.com (here the replay
        # server) carries its usage only when asked to.
        model_settings=ModelSettings(include_usage=True),
    )


def script_tool_call(replay: ReplayServer, api: str) -> None:
    build = responses_function_call if api == "responses" else chat_tool_call
    replay.script(body=build(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))


@pytest.mark.usefixtures("agents_default_client")
@pytest.mark.parametrize("api", APIS)
def test_agents_sdk_run_sync_records_each_request(
    store: SQLiteStore, replay: ReplayServer, telemetry: Telemetry, sync_client: Any, api: str
) -> None:
    from agents import Runner

    agent = openai_agent(sync_client, api)
    script_tool_call(replay, api)
    with llm_toll.run(f"oa-agents-sync-{api}", max_cost=1.0) as run:
        result = Runner.run_sync(agent, QUESTION)
    assert result.final_output == replay.requests[1].text
    assert "Sunny in Paris." in json.dumps(replay.requests[1].body)  # the tool's result
    assert {e.api for e in replay.requests} == {f"openai.{api.removesuffix('_completions')}"}
    total = assert_each_request_recorded(
        store, f"oa-agents-sync-{api}", replay, telemetry, requests=2
    )
    assert run.cost == pytest.approx(total)


@pytest.mark.usefixtures("agents_default_client")
@pytest.mark.parametrize("api", APIS)
async def test_agents_sdk_run_records_each_request(
    store: SQLiteStore,
    replay: ReplayServer,
    telemetry: Telemetry,
    async_openai_client: Any,
    api: str,
) -> None:
    from agents import Runner

    agent = openai_agent(async_openai_client, api)
    script_tool_call(replay, api)
    async with llm_toll.run(f"oa-agents-async-{api}", max_cost=1.0) as run:
        result = await Runner.run(agent, QUESTION)
    assert result.final_output == replay.requests[1].text
    assert "Sunny in Paris." in json.dumps(replay.requests[1].body)  # the tool's result
    total = assert_each_request_recorded(
        store, f"oa-agents-async-{api}", replay, telemetry, requests=2
    )
    assert run.cost == pytest.approx(total)


@pytest.mark.usefixtures("agents_default_client")
@pytest.mark.parametrize("api", APIS)
def test_agents_sdk_run_sync_is_stopped_at_its_cap(
    store: SQLiteStore, replay: ReplayServer, sync_client: Any, api: str
) -> None:
    from agents import Runner

    agent = openai_agent(sync_client, api)
    script_tool_call(replay, api)
    capped = llm_toll.run(f"oa-agents-sync-cap-{api}", max_cost=CAP_BELOW_FIRST)
    with pytest.raises(BudgetExceededError) as refused, capped:  # logged by the SDK, re-raised
        Runner.run_sync(agent, QUESTION)
    assert_refused_second(refused, store, f"oa-agents-sync-cap-{api}", replay)


@pytest.mark.usefixtures("agents_default_client")
@pytest.mark.parametrize("api", APIS)
async def test_agents_sdk_run_is_stopped_at_its_cap(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any, api: str
) -> None:
    from agents import Runner

    agent = openai_agent(async_openai_client, api)
    script_tool_call(replay, api)
    with pytest.raises(BudgetExceededError) as refused:
        async with llm_toll.run(f"oa-agents-async-cap-{api}", max_cost=CAP_BELOW_FIRST):
            await Runner.run(agent, QUESTION)
    assert_refused_second(refused, store, f"oa-agents-async-cap-{api}", replay)


def script_streamed_tool_call(replay: ReplayServer, api: str) -> None:
    build = responses_function_call_stream if api == "responses" else chat_tool_call_stream
    replay.script(body=build(MODEL, "get_weather", CITY, **TOOL_CALL_TOKENS))


async def agents_streamed(agent: Any) -> Any:
    """``Runner.run_streamed``, its events read to the end (which re-raises what stopped
    the run)."""
    from agents import Runner

    result = Runner.run_streamed(agent, QUESTION)
    async for _ in result.stream_events():
        pass
    return result


@pytest.mark.usefixtures("agents_default_client")
@pytest.mark.parametrize("api", APIS)
async def test_agents_sdk_run_streamed_records_each_request(
    store: SQLiteStore,
    replay: ReplayServer,
    telemetry: Telemetry,
    async_openai_client: Any,
    api: str,
) -> None:
    agent = openai_agent(async_openai_client, api)
    script_streamed_tool_call(replay, api)
    async with llm_toll.run(f"oa-agents-stream-{api}", max_cost=1.0) as run:
        result = await agents_streamed(agent)
    assert result.final_output == replay.requests[1].text
    assert all(exchange.stream for exchange in replay.requests)
    total = assert_each_request_recorded(
        store, f"oa-agents-stream-{api}", replay, telemetry, requests=2
    )
    assert run.cost == pytest.approx(total)


@pytest.mark.usefixtures("agents_default_client")
@pytest.mark.parametrize("api", APIS)
async def test_agents_sdk_run_streamed_is_stopped_at_its_cap(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any, api: str
) -> None:
    agent = openai_agent(async_openai_client, api)
    script_streamed_tool_call(replay, api)
    with pytest.raises(BudgetExceededError) as refused:
        async with llm_toll.run(f"oa-agents-stream-cap-{api}", max_cost=CAP_BELOW_FIRST):
            await agents_streamed(agent)
    assert_refused_second(refused, store, f"oa-agents-stream-cap-{api}", replay)
