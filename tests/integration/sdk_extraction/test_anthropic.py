"""Real Anthropic clients against the replay server: messages, raw streams, the
``messages.stream()`` helper and async calls, with cache reads, cache writes and
thinking, checked against Anthropic's rule (input excludes the cache)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from llm_toll.demo.replay import ReplayServer
from llm_toll.usage import ExtractedUsage, extract_usage, response_text
from tests.integration.sdk_extraction.helpers import (
    ANTHROPIC_MESSAGES,
    CLAUDE,
    SCRIPTS,
    adrain,
    drain,
    reported,
)

# -- Anthropic -----------------------------------------------------------------------------


ANTHROPIC_SCRIPTS = [
    *SCRIPTS,
    pytest.param({"cached_tokens": 30, "cache_creation_tokens": 25}, id="cache-read+creation"),
    pytest.param({"reasoning_tokens": 9}, id="thinking"),
]


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
