"""Usage that cannot be trusted, as the SDKs deliver it: missing, negative, non-integer or
inconsistent usage is a UsageError (from a stream, at ``result()``), a stream without
usage gives none, an unknown model is reported as sent, and a stream cut mid-way gives
no usage or an estimated one."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import openai
import pytest
from google import genai

from llm_toll.demo.replay import ReplayServer
from llm_toll.usage import StreamAccumulator, UsageError, extract_usage, response_text
from tests.integration.sdk_extraction.helpers import (
    ANTHROPIC_MESSAGES,
    CLAUDE,
    GEMINI,
    MESSAGES,
    drain,
)

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
