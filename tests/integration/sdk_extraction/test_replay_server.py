"""The replay server itself: scripted HTTP errors reach each SDK, requests are recorded,
it stops cleanly with open connections, and its bodies validate strictly against the
SDKs' own response types."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from llm_toll.demo.replay import ReplayServer
from tests.integration.sdk_extraction.helpers import ANTHROPIC_MESSAGES, CLAUDE, GEMINI, MESSAGES

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


def test_a_failing_model_answers_errors_and_keeps_the_scripts(
    openai_client: openai.OpenAI, replay: ReplayServer
) -> None:
    replay.fail("gpt-4o", 503)
    replay.script(text="Scripted.")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    answer = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content == "Scripted."  # the script waited for it
    assert [(e.model, e.status) for e in replay.requests] == [
        ("gpt-4o", 503),
        ("gpt-4o", 503),
        ("gpt-4o-mini", 200),
    ]
    replay.reset()
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        replay.fail("gpt-4o", 200)


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
