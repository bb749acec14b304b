"""Every hooked method of the real openai, anthropic and google-genai clients, sync, async and
streamed, inside a run: one ledger row per request, equal to what the server sent, priced
as genai-prices prices it. The functions return nothing: what is recorded was seen where
the request was made, not in a return value."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES, genai_prices_nanos
from tests.support.otel import Telemetry

PROMPT = "Name three primary colours, briefly please."
INCLUDE_USAGE = {"stream_options": {"include_usage": True}}
GENAI_IDS = {"openai": "openai", "anthropic": "anthropic", "gcp.gemini": "google"}


def assert_rows(store: SQLiteStore, project: str, replay: ReplayServer, provider: str) -> None:
    """One ledger row per request the server answered, each as the server sent it."""
    rows = sorted(store.get_usage_logs(project, limit=100), key=lambda row: row["id"])
    answered = [exchange for exchange in replay.requests if exchange.tokens is not None]
    assert len(rows) == len(answered) > 0, (rows, replay.requests)
    for row, exchange in zip(rows, answered, strict=True):
        sent = exchange.tokens
        assert sent is not None
        assert (row["input_tokens"], row["output_tokens"]) == (
            sent.input_tokens,
            sent.output_tokens,
        )
        assert not row["estimated"], row
        assert row["provider"] == provider
        assert row["cost_nanos"] == genai_prices_nanos(sent, row["model"], GENAI_IDS[provider])
        assert row["cost_nanos"] > 0


def in_run(project: str, body: Callable[[], Any]) -> None:
    with llm_toll.run(project):
        body()


async def in_async_run(project: str, body: Callable[[], Awaitable[Any]]) -> None:
    async with llm_toll.run(project):
        await body()


# -- OpenAI ---------------------------------------------------------------------------------


def openai_sync_cases(client: Any) -> dict[str, Callable[[], Any]]:
    chat = client.chat.completions

    def chat_stream() -> None:
        for _ in chat.create(model="gpt-4o", messages=MESSAGES, stream=True, **INCLUDE_USAGE):
            pass

    def chat_stream_helper() -> None:
        with chat.stream(model="gpt-4o", messages=MESSAGES, **INCLUDE_USAGE) as stream:
            stream.get_final_completion()

    def responses_stream() -> None:
        for _ in client.responses.create(model="gpt-4o-mini", input=PROMPT, stream=True):
            pass

    def responses_stream_helper() -> None:
        with client.responses.stream(model="gpt-4o-mini", input=PROMPT) as stream:
            stream.get_final_response()

    def raw() -> None:
        chat.with_raw_response.create(model="gpt-4o", messages=MESSAGES).parse()

    def raw_stream() -> None:
        response = chat.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True, **INCLUDE_USAGE
        )
        for _ in response.parse():
            pass

    def completions_stream() -> None:
        for _ in client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt=PROMPT, stream=True, **INCLUDE_USAGE
        ):
            pass

    def low_level_post() -> None:
        from openai.types.chat import ChatCompletion

        client.post(
            "/chat/completions",
            body={"model": "gpt-4o", "messages": MESSAGES},
            cast_to=ChatCompletion,
        )

    return {
        "chat": lambda: chat.create(model="gpt-4o", messages=MESSAGES),
        "chat_stream": chat_stream,
        "chat_stream_helper": chat_stream_helper,
        "responses": lambda: client.responses.create(model="gpt-4o-mini", input=PROMPT),
        "responses_stream": responses_stream,
        "responses_stream_helper": responses_stream_helper,
        "completions": lambda: client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt=PROMPT
        ),
        "completions_stream": completions_stream,
        "embeddings": lambda: client.embeddings.create(
            model="text-embedding-3-small", input=PROMPT
        ),
        "with_raw_response": raw,
        "with_raw_response_stream": raw_stream,
        "client_post": low_level_post,
    }


@pytest.mark.parametrize(
    "case",
    [
        "chat",
        "chat_stream",
        "chat_stream_helper",
        "responses",
        "responses_stream",
        "responses_stream_helper",
        "completions",
        "completions_stream",
        "embeddings",
        "with_raw_response",
        "with_raw_response_stream",
        "client_post",
    ],
)
def test_openai_sync(
    case: str, store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    in_run(f"hook-oa-{case}", openai_sync_cases(openai_client)[case])
    assert_rows(store, f"hook-oa-{case}", replay, "openai")


def openai_async_cases(client: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    chat = client.chat.completions

    async def chat_stream() -> None:
        stream = await chat.create(model="gpt-4o", messages=MESSAGES, stream=True, **INCLUDE_USAGE)
        async for _ in stream:
            pass

    async def chat_stream_helper() -> None:
        async with chat.stream(model="gpt-4o", messages=MESSAGES, **INCLUDE_USAGE) as stream:
            await stream.get_final_completion()

    async def responses_stream() -> None:
        stream = await client.responses.create(model="gpt-4o-mini", input=PROMPT, stream=True)
        async for _ in stream:
            pass

    async def responses_stream_helper() -> None:
        async with client.responses.stream(model="gpt-4o-mini", input=PROMPT) as stream:
            await stream.get_final_response()

    async def completions_stream() -> None:
        stream = await client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt=PROMPT, stream=True, **INCLUDE_USAGE
        )
        async for _ in stream:
            pass

    async def raw() -> None:
        response = await chat.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        response.parse()  # openai's raw responses parse synchronously, async client or not

    async def raw_stream() -> None:
        response = await chat.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True, **INCLUDE_USAGE
        )
        async for _ in response.parse():
            pass

    async def low_level_post() -> None:
        from openai.types.chat import ChatCompletion

        await client.post(
            "/chat/completions",
            body={"model": "gpt-4o", "messages": MESSAGES},
            cast_to=ChatCompletion,
        )

    return {
        "chat": lambda: chat.create(model="gpt-4o", messages=MESSAGES),
        "chat_stream": chat_stream,
        "chat_stream_helper": chat_stream_helper,
        "responses": lambda: client.responses.create(model="gpt-4o-mini", input=PROMPT),
        "responses_stream": responses_stream,
        "responses_stream_helper": responses_stream_helper,
        "completions": lambda: client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt=PROMPT
        ),
        "completions_stream": completions_stream,
        "embeddings": lambda: client.embeddings.create(
            model="text-embedding-3-small", input=PROMPT
        ),
        "with_raw_response": raw,
        "with_raw_response_stream": raw_stream,
        "client_post": low_level_post,
    }


@pytest.mark.parametrize(
    "case",
    [
        "chat",
        "chat_stream",
        "chat_stream_helper",
        "responses",
        "responses_stream",
        "responses_stream_helper",
        "completions",
        "completions_stream",
        "embeddings",
        "with_raw_response",
        "with_raw_response_stream",
        "client_post",
    ],
)
async def test_openai_async(
    case: str, store: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    await in_async_run(f"hook-aoa-{case}", openai_async_cases(async_openai_client)[case])
    assert_rows(store, f"hook-aoa-{case}", replay, "openai")


# -- Anthropic ------------------------------------------------------------------------------

CLAUDE = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": MESSAGES}


def test_anthropic_sync(store: SQLiteStore, replay: ReplayServer, anthropic_client: Any) -> None:
    def body() -> None:
        anthropic_client.messages.create(**CLAUDE)
        for _ in anthropic_client.messages.create(**CLAUDE, stream=True):
            pass
        with anthropic_client.messages.stream(**CLAUDE) as stream:
            stream.get_final_message()
        anthropic_client.beta.messages.create(**CLAUDE)
        with anthropic_client.beta.messages.stream(**CLAUDE) as stream:
            stream.get_final_message()

    in_run("hook-an", body)
    assert len(replay.requests) == 5
    assert_rows(store, "hook-an", replay, "anthropic")


async def test_anthropic_async(
    store: SQLiteStore, replay: ReplayServer, async_anthropic_client: Any
) -> None:
    client = async_anthropic_client

    async def body() -> None:
        await client.messages.create(**CLAUDE)
        async for _ in await client.messages.create(**CLAUDE, stream=True):
            pass
        async with client.messages.stream(**CLAUDE) as stream:
            await stream.get_final_message()
        await client.beta.messages.create(**CLAUDE)
        async with client.beta.messages.stream(**CLAUDE) as stream:
            await stream.get_final_message()

    await in_async_run("hook-aan", body)
    assert len(replay.requests) == 5
    assert_rows(store, "hook-aan", replay, "anthropic")


# -- Gemini ---------------------------------------------------------------------------------


async def test_gemini_sync_and_async(
    store: SQLiteStore, replay: ReplayServer, gemini_client: Any
) -> None:
    models = gemini_client.models

    def body() -> None:
        models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
        for _ in models.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT):
            pass

    in_run("hook-ge", body)
    assert len(replay.requests) == 2
    assert_rows(store, "hook-ge", replay, "gcp.gemini")
    replay.reset()

    async def async_body() -> None:
        aio = gemini_client.aio.models
        await aio.generate_content(model="gemini-2.5-flash", contents=PROMPT)
        async for _ in await aio.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT):
            pass

    await in_async_run("hook-age", async_body)
    assert len(replay.requests) == 2
    assert_rows(store, "hook-age", replay, "gcp.gemini")


# -- a stream left open at its final usage item ---------------------------------------------


def _final_item(item: Any) -> bool:
    """The last item that carries usage: OpenAI's usage chunk, ``response.completed``,
    Anthropic's ``message_stop``."""
    kind = getattr(item, "type", None)
    if kind is not None:
        return kind in ("response.completed", "message_stop")
    return item.usage is not None and not item.choices


def read_to_final_item(stream: Any) -> None:
    """Read as LiteLLM's stream wrapper reads: up to the final usage item, then stop, the
    stream neither exhausted nor closed."""
    for item in stream:
        if _final_item(item):
            return
    raise AssertionError("the stream ended before its final usage item")


def sync_streams(openai_client: Any, anthropic_client: Any) -> dict[str, Callable[[], Any]]:
    return {
        "openai-chat": lambda: openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, **INCLUDE_USAGE
        ),
        "openai-responses": lambda: openai_client.responses.create(
            model="gpt-4o-mini", input=PROMPT, stream=True
        ),
        "anthropic": lambda: anthropic_client.messages.create(**CLAUDE, stream=True),
    }


@pytest.mark.parametrize("case", ["openai-chat", "openai-responses", "anthropic"])
def test_a_stream_read_to_its_usage_is_recorded_there_not_when_closed(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    anthropic_client: Any,
    case: str,
) -> None:
    """A reader that stops at the final usage item, holding the stream open, has spent the
    run's cap: the run's next request is refused before it is sent. The stream's later
    close records nothing twice."""
    open_stream = sync_streams(openai_client, anthropic_client)[case]
    with llm_toll.run(f"held-{case}", max_cost=1e-9):
        stream = open_stream()
        try:
            read_to_final_item(stream)
            with pytest.raises(llm_toll.BudgetExceededError):
                open_stream()
        finally:
            stream.close()
    assert len(replay.requests) == 1
    provider = "openai" if case.startswith("openai") else "anthropic"
    assert_rows(store, f"held-{case}", replay, provider)


async def test_an_async_stream_read_to_its_usage_is_recorded_there(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    chat = async_openai_client.chat.completions
    request = {"model": "gpt-4o", "messages": MESSAGES, "stream": True, **INCLUDE_USAGE}
    async with llm_toll.run("held-async", max_cost=1e-9):
        stream = await chat.create(**request)
        try:
            async for item in stream:
                if _final_item(item):
                    break
            with pytest.raises(llm_toll.BudgetExceededError):
                await chat.create(**request)
        finally:
            await stream.close()
    assert len(replay.requests) == 1
    assert_rows(store, "held-async", replay, "openai")


# -- spans ----------------------------------------------------------------------------------


def test_request_spans_are_children_of_the_run_span(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    with llm_toll.run("hook-spans", name="agent step"):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [run] = telemetry.runs()
    requests = telemetry.requests()
    assert run.name == "agent step"
    assert sorted(span.name for span in requests) == ["chat gpt-4o", "chat gpt-4o-mini"]
    assert run.context is not None
    for span in requests:
        assert span.parent is not None and span.parent.span_id == run.context.span_id
        assert span.attributes is not None
        assert span.attributes["gen_ai.provider.name"] == "openai"
    rows = store.get_usage_logs("hook-spans")
    assert run.attributes is not None
    assert run.attributes["llm_toll.run.requests"] == 2
    assert run.attributes["llm_toll.run.cost"] == pytest.approx(sum(row["cost"] for row in rows))
    assert "gen_ai.usage.cost.amount" not in run.attributes  # a per-trace sum counts it once


# -- installation ---------------------------------------------------------------------------
# In a fresh interpreter each: what is imported, and the environment, are the program's own.

LATE_IMPORT = """
import sys
import llm_toll
from llm_toll._hooks import installed

assert llm_toll.instrument()
assert "openai" not in sys.modules and installed() == []
import openai  # imported after the hooks were installed: hooked as it is imported

print(installed())
client = openai.OpenAI(max_retries=0)
with llm_toll.run("late-import"):
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
"""

HOOKS_OFF = """
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import openai
    import llm_toll
    from llm_toll._hooks import installed

    client = openai.OpenAI(max_retries=0)

    @llm_toll.track_costs(project="hooks-off", max_run_cost=1e-9)
    def agent():
        for _ in range(2):  # no hook, no run cap: both requests are sent
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]
            )
        return "done"  # recorded from its return value: a str, estimated

    assert llm_toll.instrument() is False
    agent()
print(installed())
print(sum("LLM_TOLL_HOOKS turns the provider SDK hooks off" in str(w.message) for w in caught))
"""


def run_program(program: str, replay: ReplayServer, tmp_path: Path, **env: str) -> list[str]:
    """Runs ``program`` in a fresh interpreter against the replay server, with a ledger of
    its own; its output lines."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "LLM_TOLL_", "OPENAI_"))
    }
    environment.update(
        OPENAI_BASE_URL=replay.base_url + "/v1",
        OPENAI_API_KEY="test",
        LLM_TOLL_DB=str(tmp_path / "ledger.db"),
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_an_sdk_imported_after_the_hooks_is_hooked_on_import(
    replay: ReplayServer, tmp_path: Path
) -> None:
    [patched] = run_program(LATE_IMPORT, replay, tmp_path)
    assert "openai._base_client:SyncAPIClient.request" in patched
    with SQLiteStore(str(tmp_path / "ledger.db")) as store:
        [row] = store.get_usage_logs("late-import")
    assert (row["model"], row["estimated"]) == ("gpt-4o", 0)


def test_the_environment_variable_turns_the_hooks_off(replay: ReplayServer, tmp_path: Path) -> None:
    patched, warned = run_program(HOOKS_OFF, replay, tmp_path, LLM_TOLL_HOOKS="off")
    assert patched == "[]"  # no SDK method wrapped
    assert warned == "1"  # said, once, why requests are not gated
    assert len(replay.requests) == 2  # the run cap could not stop the second request
    with SQLiteStore(str(tmp_path / "ledger.db")) as store:
        [row] = store.get_usage_logs("hooks-off")
    assert row["estimated"]  # the return value, as llm-toll 0.13 recorded it
