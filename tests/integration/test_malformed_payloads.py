"""Hooked requests whose provider answers a malformed body: the real openai, anthropic and
google-genai clients against the replay server scripted to answer it (usage missing or of
the wrong types, a body that is no JSON object, stream chunks that make no sense).

Each request is made twice with the same answer: outside any run (the SDK alone, its hook
passes it through) and inside a decorated function (hooked). The caller sees the same
either way: the SDK's value, or the SDK's own exception when the SDK itself rejects the
body. A request the hook saw answered is recorded once, its usage estimated when it
cannot be read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import pytest

from llm_toll import track_costs
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore

MESSAGES = [{"role": "user", "content": "Name three primary colours, briefly please."}]
CLAUDE = "claude-sonnet-4-6"
GEMINI = "gemini-2.5-flash"


class Outcome(NamedTuple):
    """What a caller got: the type of the value (for a stream, of each item read), or of
    the exception raised."""

    raised: type[BaseException] | None
    value: tuple[type, ...]


def _outcome(make: Callable[[], Any], stream: bool) -> Outcome:
    try:
        result = make()
        if stream:
            return Outcome(None, tuple(type(item) for item in result))
        if hasattr(result, "parse"):  # a raw response: the caller parses it
            result = result.parse()
        return Outcome(None, (type(result),))
    except Exception as error:
        return Outcome(type(error), ())


async def _outcome_async(make: Callable[[], Awaitable[Any]], stream: bool) -> Outcome:
    try:
        result = await make()
        if stream:
            return Outcome(None, tuple([type(item) async for item in result]))
        return Outcome(None, (type(result),))
    except Exception as error:
        return Outcome(type(error), ())


class Case(NamedTuple):
    client: str
    """The SDK whose client makes the request: openai, anthropic or gemini."""
    request: Callable[[Any], Any]
    body: Any
    """The scripted answer (``Script.body``)."""
    stream: bool = False
    recorded: bool = True
    """Whether the hooked request is recorded when the SDK raises: False when the SDK
    rejects the body while the request is made (no answer to record), True when it does so
    after the hooked request returned (google-genai validates the parsed JSON later)."""


def openai_chat(client: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def openai_raw(client: Any) -> Any:
    return client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)


def openai_stream(client: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )


def anthropic_message(client: Any) -> Any:
    return client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)


def anthropic_stream(client: Any) -> Any:
    return client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES, stream=True)


def gemini_generate(client: Any) -> Any:
    return client.models.generate_content(model=GEMINI, contents="Name three colours.")


def gemini_stream(client: Any) -> Any:
    return client.models.generate_content_stream(model=GEMINI, contents="Name three colours.")


CHUNK = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o"}
SYNC_CASES = {
    "openai-usage-not-an-object": Case(
        "openai", openai_chat, {"object": "chat.completion", "usage": [1]}
    ),
    "openai-usage-of-wrong-types": Case(
        "openai",
        openai_chat,
        {
            "object": "chat.completion",
            "model": 5,
            "choices": "not a list",
            "usage": {"prompt_tokens": "many", "completion_tokens": 10**30},
        },
    ),
    "openai-usage-missing": Case("openai", openai_chat, {"object": "chat.completion"}),
    "openai-body-a-list": Case("openai", openai_chat, []),
    "openai-body-null": Case("openai", openai_chat, None),
    "openai-body-not-json": Case("openai", openai_chat, b"{not json", recorded=False),
    "openai-raw-body-not-json": Case("openai", openai_raw, b"{not json"),
    "openai-stream-odd-chunks": Case(
        "openai",
        openai_stream,
        [{**CHUNK, "choices": 5}, {"usage": -1}, [1], 5, {**CHUNK, "usage": "x"}, "[DONE]"],
        stream=True,
    ),
    "openai-stream-only-done": Case("openai", openai_stream, ["[DONE]"], stream=True),
    "anthropic-usage-not-an-object": Case(
        "anthropic", anthropic_message, {"type": "message", "usage": "x"}
    ),
    "anthropic-usage-of-wrong-types": Case(
        "anthropic",
        anthropic_message,
        {"type": "message", "content": 5, "usage": {"input_tokens": -4, "output_tokens": None}},
    ),
    "anthropic-body-a-list": Case("anthropic", anthropic_message, []),
    "anthropic-stream-odd-events": Case(
        "anthropic",
        anthropic_stream,
        [
            ("message_start", {"type": "message_start", "message": 5}),
            ("content_block_delta", {"type": "content_block_delta", "delta": 5}),
            ("message_delta", {"type": "message_delta", "usage": "x"}),
            ("message_stop", {"type": "message_stop"}),
        ],
        stream=True,
    ),
    "gemini-usage-not-an-object": Case("gemini", gemini_generate, {"usageMetadata": 5}),
    "gemini-usage-of-wrong-types": Case(
        "gemini",
        gemini_generate,
        {"candidates": [], "usageMetadata": {"promptTokenCount": -1}},
    ),
    "gemini-body-a-list": Case("gemini", gemini_generate, []),
    "gemini-stream-odd-chunks": Case(
        "gemini",
        gemini_stream,
        [{"usageMetadata": {"promptTokenCount": "x"}}, {"candidates": []}, {}],
        stream=True,
    ),
}


def _check(store: SQLiteStore, project: str, case: Case, alone: Outcome, hooked: Outcome) -> None:
    assert hooked == alone  # the same value, or the SDK's own exception
    rows = store.get_usage_logs(project)
    expected = 1 if alone.raised is None or case.recorded else 0
    assert len(rows) == expected, rows
    if rows:
        assert rows[0]["input_tokens"] >= 0


@pytest.mark.parametrize("name", sorted(SYNC_CASES))
def test_a_malformed_answer_reaches_the_caller_as_the_sdk_gives_it(
    name: str,
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    anthropic_client: Any,
    gemini_client: Any,
) -> None:
    case = SYNC_CASES[name]
    client = {"openai": openai_client, "anthropic": anthropic_client, "gemini": gemini_client}[
        case.client
    ]
    project = f"malformed-{name}"

    replay.script(body=case.body)
    alone = _outcome(lambda: case.request(client), case.stream)

    @track_costs(project=project)
    def ask() -> Any:
        return case.request(client)

    replay.script(body=case.body)
    hooked = _outcome(ask, case.stream)

    _check(store, project, case, alone, hooked)


async def openai_chat_async(client: Any) -> Any:
    return await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


async def openai_raw_async(client: Any) -> Any:
    response = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES
    )
    return await response.parse()


async def openai_stream_async(client: Any) -> Any:
    return await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )


async def anthropic_stream_async(client: Any) -> Any:
    return await client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES, stream=True)


async def gemini_generate_async(client: Any) -> Any:
    return await client.aio.models.generate_content(model=GEMINI, contents="Name three colours.")


async def gemini_stream_async(client: Any) -> Any:
    return await client.aio.models.generate_content_stream(
        model=GEMINI, contents="Name three colours."
    )


ASYNC_CASES = {
    "openai-usage-of-wrong-types": Case(
        "openai",
        openai_chat_async,
        {"object": "chat.completion", "usage": {"prompt_tokens": "many"}},
    ),
    "openai-body-a-list": Case("openai", openai_chat_async, []),
    "openai-raw-body-not-json": Case("openai", openai_raw_async, b"{not json"),
    "openai-stream-odd-chunks": Case(
        "openai",
        openai_stream_async,
        [{**CHUNK, "choices": 5}, {"usage": -1}, 5, "[DONE]"],
        stream=True,
    ),
    "anthropic-stream-odd-events": Case(
        "anthropic",
        anthropic_stream_async,
        [("message_start", {"type": "message_start", "message": {"usage": "x"}})],
        stream=True,
    ),
    "gemini-body-a-list": Case("gemini", gemini_generate_async, []),
    "gemini-stream-odd-chunks": Case(
        "gemini", gemini_stream_async, [{"usageMetadata": 5}, {}], stream=True
    ),
}


@pytest.mark.parametrize("name", sorted(ASYNC_CASES))
async def test_a_malformed_answer_reaches_an_async_caller_as_the_sdk_gives_it(
    name: str,
    store: SQLiteStore,
    replay: ReplayServer,
    async_openai_client: Any,
    async_anthropic_client: Any,
    gemini_client: Any,
) -> None:
    case = ASYNC_CASES[name]
    clients = {"openai": async_openai_client, "anthropic": async_anthropic_client}
    client = clients.get(case.client, gemini_client)
    project = f"malformed-async-{name}"

    replay.script(body=case.body)
    alone = await _outcome_async(lambda: case.request(client), case.stream)

    @track_costs(project=project)
    async def ask() -> Any:
        return await case.request(client)

    replay.script(body=case.body)
    hooked = await _outcome_async(ask, case.stream)

    _check(store, project, case, alone, hooked)
