"""Real OpenAI clients against the replay server: chat completions (plain, streamed, async,
and through ``chat.completions.stream()``), legacy completions and embeddings, read
exactly as the SDK parsed them and checked against OpenAI's documented rule."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from llm_toll.demo.replay import ReplayServer
from llm_toll.usage import ExtractedUsage, extract_usage, response_text
from tests.integration.sdk_extraction.helpers import (
    CACHED_AND_REASONING,
    MESSAGES,
    SCRIPTS,
    adrain,
    drain,
    reported,
)

# -- OpenAI chat completions ---------------------------------------------------------------


def check_openai_chat_wire(found: ExtractedUsage, sent: dict[str, Any]) -> None:
    assert found.usage.input_tokens == sent["prompt_tokens"]  # cached tokens included
    assert found.usage.output_tokens == sent["completion_tokens"]  # reasoning included
    assert found.usage.cache_read_input_tokens == sent["prompt_tokens_details"]["cached_tokens"]
    details = sent["completion_tokens_details"]
    assert found.usage.reasoning_output_tokens == details["reasoning_tokens"]


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


def test_openai_chat_stream_helper(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    """``chat.completions.stream()`` yields chunk events wrapping chunks, plus derived ones."""
    replay.script(**CACHED_AND_REASONING)
    with openai_client.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        accumulator = drain(stream)
    assert accumulator.result() == reported(replay, "openai", "chat")
    assert accumulator.text == replay.last.text
