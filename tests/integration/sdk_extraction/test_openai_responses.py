"""Real OpenAI clients against the replay server: the Responses API, plain, streamed,
async and through ``responses.stream()``, checked against its documented usage rule."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from llm_toll.demo.replay import ReplayServer
from llm_toll.usage import ExtractedUsage, extract_usage, response_text
from tests.integration.sdk_extraction.helpers import (
    CACHED_AND_REASONING,
    SCRIPTS,
    adrain,
    drain,
    reported,
)

# -- OpenAI Responses API ------------------------------------------------------------------


def check_openai_responses_wire(found: ExtractedUsage, sent: dict[str, Any]) -> None:
    assert found.usage.input_tokens == sent["input_tokens"]
    assert found.usage.output_tokens == sent["output_tokens"]
    assert found.usage.cache_read_input_tokens == sent["input_tokens_details"]["cached_tokens"]
    details = sent["output_tokens_details"]
    assert found.usage.reasoning_output_tokens == details["reasoning_tokens"]


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


def test_openai_responses_stream_helper(openai_client: openai.OpenAI, replay: ReplayServer) -> None:
    replay.script(**CACHED_AND_REASONING)
    with openai_client.responses.stream(model="o4-mini", input="Tides?") as stream:
        accumulator = drain(stream)
        final = stream.get_final_response()
    assert accumulator.result() == reported(replay, "openai", "chat") == extract_usage(final)
    assert accumulator.text == replay.last.text
