"""Real SDK clients against the replay server: what the SDKs parse, llm_toll reads exactly.

Every expectation comes from the server's record of what it sent (``replay.last``): the
normalised counts it computed (``tokens``) and the provider-format usage on the wire
(``usage``), so each test also checks the provider's documented normalisation rule.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from llm_toll.demo.replay import ReplayServer
from llm_toll.usage import (
    ExtractedUsage,
    StreamAccumulator,
    UsageError,
    extract_usage,
    response_text,
)

MESSAGES: list[Any] = [
    {"role": "system", "content": "You answer geography questions in one short sentence."},
    {"role": "user", "content": "What is the capital of France, and why is it famous?"},
]
CLAUDE = "claude-sonnet-4-6"
GEMINI = "gemini-2.5-flash"
CACHED_AND_REASONING = {"cached_tokens": 40, "reasoning_tokens": 12}
SCRIPTS = [
    pytest.param({}, id="plain"),
    pytest.param(CACHED_AND_REASONING, id="cached+reasoning"),
]
ANTHROPIC_SCRIPTS = [
    *SCRIPTS,
    pytest.param({"cached_tokens": 30, "cache_creation_tokens": 25}, id="cache-read+creation"),
    pytest.param({"reasoning_tokens": 9}, id="thinking"),
]


def reported(replay: ReplayServer, provider: str, operation: str) -> ExtractedUsage:
    """What extraction must give for the last exchange, from the server's own record."""
    sent = replay.last
    assert sent.tokens is not None
    return ExtractedUsage(
        usage=sent.tokens,
        model=sent.model,
        provider=provider,
        operation=operation,
        response_id=sent.response_id,
    )


def drain(
    stream: Iterable[object], accumulator: StreamAccumulator | None = None
) -> StreamAccumulator:
    accumulator = StreamAccumulator() if accumulator is None else accumulator
    for item in stream:
        accumulator.add(item)
    return accumulator


async def adrain(stream: AsyncIterable[object]) -> StreamAccumulator:
    accumulator = StreamAccumulator()
    async for item in stream:
        accumulator.add(item)
    return accumulator


# -- what the wire said, by each provider's documented rule --------------------------------


def check_openai_chat_wire(found: ExtractedUsage, sent: dict[str, Any]) -> None:
    assert found.usage.input_tokens == sent["prompt_tokens"]  # cached tokens included
    assert found.usage.output_tokens == sent["completion_tokens"]  # reasoning included
    assert found.usage.cache_read_input_tokens == sent["prompt_tokens_details"]["cached_tokens"]
    details = sent["completion_tokens_details"]
    assert found.usage.reasoning_output_tokens == details["reasoning_tokens"]


def check_openai_responses_wire(found: ExtractedUsage, sent: dict[str, Any]) -> None:
    assert found.usage.input_tokens == sent["input_tokens"]
    assert found.usage.output_tokens == sent["output_tokens"]
    assert found.usage.cache_read_input_tokens == sent["input_tokens_details"]["cached_tokens"]
    details = sent["output_tokens_details"]
    assert found.usage.reasoning_output_tokens == details["reasoning_tokens"]


def check_anthropic_wire(found: ExtractedUsage, sent: dict[str, Any]) -> None:
    # Anthropic's input_tokens exclude cache reads and writes; Usage includes them.
    cache_read, cache_creation = (
        sent["cache_read_input_tokens"],
        sent["cache_creation_input_tokens"],
    )
    assert found.usage.input_tokens == sent["input_tokens"] + cache_read + cache_creation
    assert found.usage.cache_read_input_tokens == cache_read
    assert found.usage.cache_creation_input_tokens == cache_creation
    assert found.usage.output_tokens == sent["output_tokens"]


def check_gemini_wire(found: ExtractedUsage, sent: dict[str, Any]) -> None:
    # Gemini's thoughts are not in candidatesTokenCount; Usage's output includes them.
    thoughts = sent.get("thoughtsTokenCount", 0)
    assert found.usage.input_tokens == sent["promptTokenCount"]
    assert found.usage.output_tokens == sent["candidatesTokenCount"] + thoughts
    assert found.usage.reasoning_output_tokens == thoughts
    assert found.usage.cache_read_input_tokens == sent.get("cachedContentTokenCount", 0)
    assert found.usage.total_tokens == sent["totalTokenCount"]


# -- OpenAI chat completions ---------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_openai_chat(openai_client: openai.OpenAI, replay: ReplayServer, script: Any) -> None:
    replay.script(**script)
    response = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    found = extract_usage(response)
    assert found == reported(replay, "openai", "chat")
    check_openai_chat_wire(found, replay.last.usage)
    assert response_text(response) == replay.last.text


def test_openai_chat_cache_write_tokens(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    replay.script(cached_tokens=10, cache_creation_tokens=15)
    found = extract_usage(openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
    assert found == reported(replay, "openai", "chat")
    assert found.usage.cache_creation_input_tokens == 15


@pytest.mark.parametrize("script", SCRIPTS)
def test_openai_chat_stream(
    openai_client: openai.OpenAI, replay: ReplayServer, script: Any
) -> None:
    replay.script(**script)
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    accumulator = drain(stream)
    found = accumulator.result()
    assert found == reported(replay, "openai", "chat")
    check_openai_chat_wire(found, replay.last.usage)
    assert accumulator.text == replay.last.text


@pytest.mark.parametrize("script", SCRIPTS)
async def test_async_openai_chat(
    async_openai_client: openai.AsyncOpenAI, replay: ReplayServer, script: Any
) -> None:
    replay.script(**script)
    response = await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert extract_usage(response) == reported(replay, "openai", "chat")


@pytest.mark.parametrize("script", SCRIPTS)
async def test_async_openai_chat_stream(
    async_openai_client: openai.AsyncOpenAI, replay: ReplayServer, script: Any
) -> None:
    replay.script(**script)
    stream = await async_openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    accumulator = await adrain(stream)
    assert accumulator.result() == reported(replay, "openai", "chat")
    assert accumulator.text == replay.last.text


def test_openai_chat_stream_without_include_usage_reports_none(
    openai_client: openai.OpenAI, replay: ReplayServer
) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    accumulator = drain(stream)
    assert replay.last.usage is None
    assert accumulator.result() is None
    assert accumulator.text == replay.last.text  # enough to estimate from
    assert accumulator.model == "gpt-4o"


def test_openai_legacy_completion(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    response = openai_client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Write a haiku about the sea."
    )
    assert extract_usage(response) == reported(replay, "openai", "text_completion")
    assert response_text(response) == replay.last.text

    stream = openai_client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Write a haiku about the sea.",
        stream=True,
        stream_options={"include_usage": True},
    )
    accumulator = drain(stream)
    assert accumulator.result() == reported(replay, "openai", "text_completion")
    assert accumulator.text == replay.last.text


async def test_openai_embeddings(
    openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI, replay: ReplayServer
) -> None:
    inputs = ["The quick brown fox", "jumps over the lazy dog."]
    response = openai_client.embeddings.create(model="text-embedding-3-small", input=inputs)
    expected = reported(replay, "openai", "embeddings")
    assert extract_usage(response) == ExtractedUsage(
        expected.usage, model="text-embedding-3-small", provider="openai", operation="embeddings"
    )
    assert response.usage.prompt_tokens == replay.last.usage["prompt_tokens"] > 0
    assert len(response.data) == 2

    response = await async_openai_client.embeddings.create(
        model="text-embedding-3-small", input=inputs[0], encoding_format="base64"
    )
    found = extract_usage(response)
    assert found is not None
    assert found.usage == replay.last.tokens


# -- OpenAI Responses API ------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_openai_responses(openai_client: openai.OpenAI, replay: ReplayServer, script: Any) -> None:
    replay.script(**script)
    response = openai_client.responses.create(
        model="o4-mini", instructions="Be brief.", input="Explain tides to a child."
    )
    found = extract_usage(response)
    assert found == reported(replay, "openai", "chat")
    check_openai_responses_wire(found, replay.last.usage)
    assert response_text(response) == response.output_text == replay.last.text


@pytest.mark.parametrize("script", SCRIPTS)
def test_openai_responses_stream(
    openai_client: openai.OpenAI, replay: ReplayServer, script: Any
) -> None:
    replay.script(**script)
    stream = openai_client.responses.create(
        model="o4-mini", input=[{"role": "user", "content": "Explain tides."}], stream=True
    )
    accumulator = drain(stream)
    found = accumulator.result()
    assert found == reported(replay, "openai", "chat")
    check_openai_responses_wire(found, replay.last.usage)
    assert accumulator.text == replay.last.text


async def test_async_openai_responses(
    async_openai_client: openai.AsyncOpenAI, replay: ReplayServer
) -> None:
    replay.script(**CACHED_AND_REASONING)
    response = await async_openai_client.responses.create(model="o4-mini", input="Tides?")
    assert extract_usage(response) == reported(replay, "openai", "chat")

    replay.script(**CACHED_AND_REASONING)
    stream = await async_openai_client.responses.create(
        model="o4-mini", input="Tides?", stream=True
    )
    accumulator = await adrain(stream)
    assert accumulator.result() == reported(replay, "openai", "chat")


# -- Anthropic -----------------------------------------------------------------------------

ANTHROPIC_MESSAGES: list[Any] = [{"role": "user", "content": "Name three rivers in Europe."}]


@pytest.mark.parametrize("script", ANTHROPIC_SCRIPTS)
def test_anthropic_message(
    anthropic_client: anthropic.Anthropic, replay: ReplayServer, script: Any
) -> None:
    replay.script(**script)
    message = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=256, system="Be terse.", messages=ANTHROPIC_MESSAGES
    )
    found = extract_usage(message)
    assert found == reported(replay, "anthropic", "chat")
    check_anthropic_wire(found, replay.last.usage)
    assert response_text(message) == replay.last.text


@pytest.mark.parametrize("script", ANTHROPIC_SCRIPTS)
def test_anthropic_raw_stream(
    anthropic_client: anthropic.Anthropic, replay: ReplayServer, script: Any
) -> None:
    replay.script(**script)
    stream = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=256, messages=ANTHROPIC_MESSAGES, stream=True
    )
    accumulator = drain(stream)
    assert accumulator.result() == reported(replay, "anthropic", "chat")
    assert accumulator.text == replay.last.text


@pytest.mark.parametrize("script", ANTHROPIC_SCRIPTS)
def test_anthropic_message_stream_helper(
    anthropic_client: anthropic.Anthropic, replay: ReplayServer, script: Any
) -> None:
    """``messages.stream()`` yields raw and derived events; nothing is counted twice."""
    replay.script(**script)
    with anthropic_client.messages.stream(
        model=CLAUDE, max_tokens=256, messages=ANTHROPIC_MESSAGES
    ) as stream:
        accumulator = drain(stream)
        final = stream.get_final_message()
    assert accumulator.result() == reported(replay, "anthropic", "chat") == extract_usage(final)
    assert accumulator.text == replay.last.text


async def test_async_anthropic(
    async_anthropic_client: anthropic.AsyncAnthropic, replay: ReplayServer
) -> None:
    script = {"cached_tokens": 30, "cache_creation_tokens": 25, "reasoning_tokens": 9}
    replay.script(**script)
    message = await async_anthropic_client.messages.create(
        model=CLAUDE, max_tokens=256, messages=ANTHROPIC_MESSAGES
    )
    assert extract_usage(message) == reported(replay, "anthropic", "chat")

    replay.script(**script)
    stream = await async_anthropic_client.messages.create(
        model=CLAUDE, max_tokens=256, messages=ANTHROPIC_MESSAGES, stream=True
    )
    accumulator = await adrain(stream)
    assert accumulator.result() == reported(replay, "anthropic", "chat")

    replay.script(**script)
    async with async_anthropic_client.messages.stream(
        model=CLAUDE, max_tokens=256, messages=ANTHROPIC_MESSAGES
    ) as helper:
        accumulator = await adrain(helper)
    assert accumulator.result() == reported(replay, "anthropic", "chat")


# -- Gemini --------------------------------------------------------------------------------

GEMINI_SCRIPTS = [
    *SCRIPTS,
    pytest.param({"reasoning_tokens": 64}, id="thoughts"),
]


@pytest.mark.parametrize("script", GEMINI_SCRIPTS)
def test_gemini_generate_content(
    gemini_client: genai.Client, replay: ReplayServer, script: Any
) -> None:
    replay.script(**script)
    response = gemini_client.models.generate_content(
        model=GEMINI, contents="Why is the sky blue? One sentence."
    )
    found = extract_usage(response)
    assert found == reported(replay, "gcp.gemini", "generate_content")
    check_gemini_wire(found, replay.last.usage)
    assert replay.last.path == f"/v1beta/models/{GEMINI}:generateContent"
    assert response_text(response) == response.text == replay.last.text


@pytest.mark.parametrize("script", GEMINI_SCRIPTS)
def test_gemini_stream(gemini_client: genai.Client, replay: ReplayServer, script: Any) -> None:
    replay.script(**script)
    stream = gemini_client.models.generate_content_stream(
        model=GEMINI, contents="Why is the sky blue? One sentence."
    )
    accumulator = drain(stream)
    found = accumulator.result()
    assert found == reported(replay, "gcp.gemini", "generate_content")
    check_gemini_wire(found, replay.last.usage)
    assert replay.last.query == {"alt": ["sse"]}
    assert accumulator.text == replay.last.text


async def test_gemini_async(gemini_client: genai.Client, replay: ReplayServer) -> None:
    replay.script(cached_tokens=20, reasoning_tokens=33)
    response = await gemini_client.aio.models.generate_content(model=GEMINI, contents="Hi!")
    assert extract_usage(response) == reported(replay, "gcp.gemini", "generate_content")

    replay.script(cached_tokens=20, reasoning_tokens=33)
    stream = await gemini_client.aio.models.generate_content_stream(model=GEMINI, contents="Hi!")
    accumulator = await adrain(stream)
    assert accumulator.result() == reported(replay, "gcp.gemini", "generate_content")
    assert accumulator.text == replay.last.text


# -- usage that cannot be trusted, as the SDKs deliver it ----------------------------------


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        (None, "usage is missing"),
        ({"prompt_tokens": -5}, "usage.prompt_tokens is negative: -5"),
        ({"completion_tokens": "many"}, "usage.completion_tokens is not an integer: 'many'"),
        ({"prompt_tokens": 12.5}, "usage.prompt_tokens is not an integer: 12.5"),
        ({"prompt_tokens": 10**12}, "usage.prompt_tokens is implausibly large"),
        ("12", "usage is not an object: '12'"),
    ],
)
def test_openai_bad_usage_is_a_usage_error(
    openai_client: openai.OpenAI, replay: ReplayServer, usage: Any, message: str
) -> None:
    replay.script(usage=usage)
    response = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with pytest.raises(UsageError, match=rf"^openai chat\.completion: {re.escape(message)}"):
        extract_usage(response)
    assert response_text(response) == replay.last.text  # what the caller estimates from


def test_openai_sdk_coerces_numeric_strings(
    openai_client: openai.OpenAI, replay: ReplayServer
) -> None:
    """The OpenAI SDK turns ``"12"`` into 12 while parsing: that usage is then fine."""
    replay.script(usage={"prompt_tokens": "12"})
    response = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    found = extract_usage(response)
    assert found is not None
    assert found.usage.input_tokens == 12


def test_openai_bad_usage_in_stream_surfaces_at_result(
    openai_client: openai.OpenAI, replay: ReplayServer
) -> None:
    replay.script(usage={"completion_tokens": -1})
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    accumulator = drain(stream)  # never raises while streaming
    assert accumulator.text == replay.last.text
    with pytest.raises(
        UsageError, match=r"openai chat\.completion stream: usage\.completion_tokens"
    ):
        accumulator.result()


def test_anthropic_bad_usage(anthropic_client: anthropic.Anthropic, replay: ReplayServer) -> None:
    replay.script(usage=None)
    message = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=64, messages=ANTHROPIC_MESSAGES
    )
    with pytest.raises(UsageError, match=r"^anthropic message: usage is missing"):
        extract_usage(message)

    replay.script(usage={"cache_read_input_tokens": -3})
    message = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=64, messages=ANTHROPIC_MESSAGES
    )
    with pytest.raises(UsageError, match=r"usage\.cache_read_input_tokens is negative: -3"):
        extract_usage(message)


def test_anthropic_stream_without_usage_reports_none(
    anthropic_client: anthropic.Anthropic, replay: ReplayServer
) -> None:
    replay.script(usage=None)
    stream = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=64, messages=ANTHROPIC_MESSAGES, stream=True
    )
    accumulator = drain(stream)
    assert accumulator.result() is None
    assert accumulator.text == replay.last.text


def test_anthropic_bad_usage_in_stream(
    anthropic_client: anthropic.Anthropic, replay: ReplayServer
) -> None:
    replay.script(usage={"output_tokens": -3})
    stream = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=64, messages=ANTHROPIC_MESSAGES, stream=True
    )
    accumulator = drain(stream)
    with pytest.raises(
        UsageError, match=r"anthropic message stream: usage\.output_tokens is negative: -3"
    ):
        accumulator.result()


def test_gemini_bad_usage(gemini_client: genai.Client, replay: ReplayServer) -> None:
    replay.script(usage=None)
    response = gemini_client.models.generate_content(model=GEMINI, contents="Hi")
    with pytest.raises(UsageError, match=r"^gcp\.gemini generate_content: usage is missing"):
        extract_usage(response)

    replay.script(usage={"promptTokenCount": -5})
    response = gemini_client.models.generate_content(model=GEMINI, contents="Hi")
    with pytest.raises(UsageError, match=r"usage_metadata\.prompt_token_count is negative: -5"):
        extract_usage(response)

    replay.script(usage={"cachedContentTokenCount": 10_000})
    response = gemini_client.models.generate_content(model=GEMINI, contents="Hi")
    with pytest.raises(UsageError, match=r"cached input tokens .* exceed input tokens"):
        extract_usage(response)


def test_gemini_stream_without_usage_reports_none(
    gemini_client: genai.Client, replay: ReplayServer
) -> None:
    replay.script(usage=None)
    accumulator = drain(gemini_client.models.generate_content_stream(model=GEMINI, contents="Hi"))
    assert accumulator.result() is None
    assert accumulator.text == replay.last.text


def test_unknown_model_is_reported_as_sent(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic, replay: ReplayServer
) -> None:
    replay.script(model="gpt-9-turbo-unreleased")
    found = extract_usage(openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
    assert found is not None
    assert found.model == "gpt-9-turbo-unreleased"

    replay.script(model="claude-unknown-1")
    stream = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=64, messages=ANTHROPIC_MESSAGES, stream=True
    )
    assert drain(stream).model == "claude-unknown-1"


# -- streams cut mid-way -------------------------------------------------------------------


def test_openai_stream_cut_before_usage(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    replay.script(break_after=3)
    accumulator = StreamAccumulator()
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    with pytest.raises(openai.APIConnectionError):
        drain(stream, accumulator)
    assert accumulator.chunks == 3
    assert accumulator.result() is None
    assert accumulator.text
    assert replay.last.text.startswith(accumulator.text)


def test_anthropic_stream_cut_after_message_start_is_estimated(
    anthropic_client: anthropic.Anthropic, replay: ReplayServer
) -> None:
    """message_start reported the exact input; the output is estimated from the text seen."""
    replay.script(cached_tokens=50, break_after=5)
    accumulator = StreamAccumulator()
    stream = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=64, messages=ANTHROPIC_MESSAGES, stream=True
    )
    with pytest.raises(Exception, match=r"incomplete chunked read"):
        drain(stream, accumulator)
    found = accumulator.result()
    assert found is not None
    assert found.estimated
    sent = replay.last.tokens
    assert sent is not None
    assert found.usage.input_tokens == sent.input_tokens
    assert found.usage.cache_read_input_tokens == 50
    assert 1 <= found.usage.output_tokens < sent.output_tokens


# -- the server itself ---------------------------------------------------------------------


def test_scripted_http_errors_reach_each_sdk(
    openai_client: openai.OpenAI,
    anthropic_client: anthropic.Anthropic,
    gemini_client: genai.Client,
    replay: ReplayServer,
) -> None:
    replay.script(status=429)
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    replay.script(status=529)
    with pytest.raises(anthropic.APIStatusError) as excinfo:
        anthropic_client.messages.create(model=CLAUDE, max_tokens=8, messages=ANTHROPIC_MESSAGES)
    assert excinfo.value.status_code == 529
    replay.script(status=500)
    with pytest.raises(genai_errors.ServerError):
        gemini_client.models.generate_content(model=GEMINI, contents="Hi")
    assert [exchange.status for exchange in replay.requests] == [429, 529, 500]


def test_server_records_requests(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, user="u-1")
    (exchange,) = replay.requests
    assert (exchange.method, exchange.path, exchange.api) == (
        "POST",
        "/v1/chat/completions",
        "openai.chat",
    )
    assert exchange.body["user"] == "u-1"
    assert exchange.headers["authorization"] == "Bearer test"
    assert not exchange.stream


def test_server_stops_cleanly_with_open_connections() -> None:
    with ReplayServer() as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # keep-alive
        port = server.port
    client.close()
    with ReplayServer(port=port) as again:  # the port was released
        assert again.port == port


# -- the stream helpers of the SDKs ------------------------------------------------------


def test_openai_chat_stream_helper(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    """``chat.completions.stream()`` yields chunk events wrapping chunks, plus derived ones."""
    replay.script(**CACHED_AND_REASONING)
    with openai_client.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        accumulator = drain(stream)
    assert accumulator.result() == reported(replay, "openai", "chat")
    assert accumulator.text == replay.last.text


def test_openai_responses_stream_helper(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    replay.script(**CACHED_AND_REASONING)
    with openai_client.responses.stream(model="o4-mini", input="Tides?") as stream:
        accumulator = drain(stream)
        final = stream.get_final_response()
    assert accumulator.result() == reported(replay, "openai", "chat") == extract_usage(final)
    assert accumulator.text == replay.last.text


# -- the server's bodies are valid for the SDKs' types, strictly ----------------------------


def test_bodies_validate_strictly_against_the_sdk_types(
    openai_client: openai.OpenAI,
    anthropic_client: anthropic.Anthropic,
    gemini_client: genai.Client,
    replay: ReplayServer,
) -> None:
    """The SDKs parse leniently (``construct``); pydantic validation checks every field the
    SDK types declare required is present with the right type."""
    from anthropic.types import Message, RawMessageStreamEvent
    from google.genai import types as genai_types
    from openai.types import Completion, CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import TypeAdapter

    options: Any = {"include_usage": True}
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    ChatCompletion.model_validate(replay.last.response)
    list(openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options=options
    ))  # fmt: skip
    *chunks, done = replay.last.response
    assert done == "[DONE]"
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi")
    Completion.model_validate(replay.last.response)
    # (the SDK asks for base64 by default and decodes it itself; the type declares floats)
    openai_client.embeddings.create(
        model="text-embedding-3-small", input="Hi", encoding_format="float"
    )
    CreateEmbeddingResponse.model_validate(replay.last.response)
    openai_client.responses.create(model="o4-mini", input="Hi")
    Response.model_validate(replay.last.response)
    list(openai_client.responses.create(model="o4-mini", input="Hi", stream=True))
    events: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for event in replay.last.response:
        events.validate_python(event)

    anthropic_client.messages.create(model=CLAUDE, max_tokens=8, messages=ANTHROPIC_MESSAGES)
    Message.model_validate(replay.last.response)
    list(anthropic_client.messages.create(
        model=CLAUDE, max_tokens=8, messages=ANTHROPIC_MESSAGES, stream=True
    ))  # fmt: skip
    raw_events: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    for event in replay.last.response:
        if event["type"] != "ping":  # pings are skipped by the SDK
            raw_events.validate_python(event)

    gemini_client.models.generate_content(model=GEMINI, contents="Hi")
    genai_types.GenerateContentResponse.model_validate(replay.last.response)
    list(gemini_client.models.generate_content_stream(model=GEMINI, contents="Hi"))
    for chunk in replay.last.response:
        genai_types.GenerateContentResponse.model_validate(chunk)
