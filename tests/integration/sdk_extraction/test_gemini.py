"""A real google-genai client against the replay server: generate_content, its stream and
its async API, checked against Gemini's rule (output excludes the thoughts)."""

from __future__ import annotations

from typing import Any

import pytest
from google import genai

from llm_toll.demo.replay import ReplayServer
from llm_toll.usage import ExtractedUsage, extract_usage, response_text
from tests.integration.sdk_extraction.helpers import GEMINI, SCRIPTS, adrain, drain, reported

# -- Gemini --------------------------------------------------------------------------------

GEMINI_SCRIPTS = [
    *SCRIPTS,
    pytest.param({"reasoning_tokens": 64}, id="thoughts"),
]


def check_gemini_wire(found: ExtractedUsage, sent: dict[str, Any]) -> None:
    # Gemini's thoughts are not in candidatesTokenCount; Usage's output includes them.
    thoughts = sent.get("thoughtsTokenCount", 0)
    assert found.usage.input_tokens == sent["promptTokenCount"]
    assert found.usage.output_tokens == sent["candidatesTokenCount"] + thoughts
    assert found.usage.reasoning_output_tokens == thoughts
    assert found.usage.cache_read_input_tokens == sent.get("cachedContentTokenCount", 0)
    assert found.usage.total_tokens == sent["totalTokenCount"]


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
