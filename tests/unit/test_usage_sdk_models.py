"""The SDK models' usual usage is read by attribute: it must read exactly what the
field-by-field reading of the same object (or of its JSON) reads, errors included."""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from typing import Any

import pytest
from anthropic.types import Message
from google.genai.types import GenerateContentResponse
from openai.types.chat import ChatCompletion

from llm_toll.usage import MAX_TOKENS_PER_CALL, ExtractedUsage, Usage, UsageError, extract_usage
from llm_toll.usage import _anthropic as anthropic
from llm_toll.usage import _gemini as gemini
from llm_toll.usage import _openai as openai

Read = Callable[[Any], ExtractedUsage | None]


class Seven(enum.IntEnum):
    N = 7  # an int subclass: counted as the plain int 7 by the field-by-field reading


def outcome(read: Read, response: Any) -> ExtractedUsage | str | None:
    try:
        return read(response)
    except UsageError as exc:
        return f"UsageError: {exc}"


def assert_same_reading(quick: Read, general: Read, response: Any) -> None:
    assert outcome(quick, response) == outcome(general, response)


def changed(model: Any, path: str, value: Any) -> Any:
    """A deep copy of ``model`` with the attribute at the dotted ``path`` set to ``value``
    (unvalidated, as a proxy or ``model_construct`` may hand it over)."""
    model = model.model_copy(deep=True)
    *parents, name = path.split(".")
    target = model
    for parent in parents:
        target = getattr(target, parent)
    setattr(target, name, value)
    return model


OPENAI_CHAT: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-2024-08-06",
    "service_tier": "default",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 50,
        "total_tokens": 1250,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 20, "audio_tokens": 0},
    },
}


def openai_chat(**usage: Any) -> dict[str, Any]:
    payload = copy.deepcopy(OPENAI_CHAT)
    payload["usage"].update(usage)
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        OPENAI_CHAT,
        openai_chat(prompt_tokens_details=None, completion_tokens_details=None),
        openai_chat(prompt_tokens_details={"cached_tokens": 0, "cache_write_tokens": 100}),
        openai_chat(prompt_tokens_details={"audio_tokens": 300, "image_tokens": 10}),
        openai_chat(completion_tokens_details={"audio_tokens": 5}),
        openai_chat(completion_tokens_details={"image_tokens": 7}),  # undeclared: an extra
        openai_chat(cost=0.0042),  # OpenRouter's usage.cost, an extra field
        {**OPENAI_CHAT, "service_tier": "flex"},
        {**OPENAI_CHAT, "service_tier": None, "usage": None},
    ],
)
def test_openai_chat_models_read_as_their_json(payload: dict[str, Any]) -> None:
    sdk_object = ChatCompletion.model_validate(payload)
    assert outcome(extract_usage, sdk_object) == outcome(extract_usage, payload)


def test_openai_chat_model_usual_usage() -> None:
    found = extract_usage(ChatCompletion.model_validate(OPENAI_CHAT))
    assert found == ExtractedUsage(
        usage=Usage(1200, 50, cache_read_input_tokens=1024, reasoning_output_tokens=20),
        model="gpt-4o-2024-08-06",
        provider="openai",
        operation="chat",
        response_id="chatcmpl-1",
        price_context={"service_tier": "default"},
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("usage", "12"),
        ("usage", {"prompt_tokens": 3, "completion_tokens": 1}),
        ("usage.prompt_tokens", None),
        ("usage.prompt_tokens", True),
        ("usage.prompt_tokens", -5),
        ("usage.prompt_tokens", 12.0),
        ("usage.prompt_tokens", Seven.N),
        ("usage.prompt_tokens", MAX_TOKENS_PER_CALL + 1),
        ("usage.completion_tokens", "50"),
        ("usage.prompt_tokens_details.cached_tokens", 1201),
        ("usage.prompt_tokens_details.cached_tokens", -1),
        ("usage.prompt_tokens_details.cached_tokens", None),
        ("usage.prompt_tokens_details.cached_tokens", MAX_TOKENS_PER_CALL + 1),
        ("usage.prompt_tokens_details.audio_tokens", 0.0),
        ("usage.prompt_tokens_details.audio_tokens", "x"),
        ("usage.completion_tokens_details.reasoning_tokens", 51),
        ("usage.completion_tokens_details.reasoning_tokens", False),
        ("model", 5),
        ("id", None),
        ("service_tier", ""),
    ],
)
def test_openai_chat_model_read_as_field_by_field(path: str, value: Any) -> None:
    sdk_object = changed(ChatCompletion.model_validate(OPENAI_CHAT), path, value)
    assert_same_reading(openai.from_chat_model, openai.from_chat_completion, sdk_object)


ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hi."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 20,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 40,
        "output_tokens_details": {"thinking_tokens": 10},
        "service_tier": "standard",
    },
}


def anthropic_message(**usage: Any) -> dict[str, Any]:
    payload = copy.deepcopy(ANTHROPIC_MESSAGE)
    payload["usage"].update(usage)
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        ANTHROPIC_MESSAGE,
        anthropic_message(
            cache_creation_input_tokens=0,
            cache_read_input_tokens=None,
            cache_creation=None,
            output_tokens_details=None,
        ),
        anthropic_message(
            cache_creation={"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60}
        ),
        anthropic_message(server_tool_use={"web_search_requests": 2, "web_fetch_requests": 0}),
        anthropic_message(server_tool_use={"web_search_requests": 0, "web_fetch_requests": 3}),
        anthropic_message(service_tier="batch", speed="fast"),
        anthropic_message(speed="fast"),
    ],
)
def test_anthropic_models_read_as_their_json(payload: dict[str, Any]) -> None:
    sdk_object = Message.model_validate(payload)
    assert outcome(extract_usage, sdk_object) == outcome(extract_usage, payload)


def test_anthropic_model_usual_usage() -> None:
    found = extract_usage(Message.model_validate(ANTHROPIC_MESSAGE))
    assert found == ExtractedUsage(
        usage=Usage(
            2120,  # Anthropic's input_tokens leave the cache out
            40,
            cache_read_input_tokens=2000,
            cache_creation_input_tokens=100,
            reasoning_output_tokens=10,
        ),
        model="claude-sonnet-4-5",
        provider="anthropic",
        operation="chat",
        response_id="msg_1",
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("usage", None),
        ("usage", {"input_tokens": 3, "output_tokens": 1}),
        ("usage.input_tokens", None),
        ("usage.input_tokens", True),
        ("usage.input_tokens", -1),
        ("usage.input_tokens", Seven.N),
        ("usage.input_tokens", MAX_TOKENS_PER_CALL),  # too many once the cache is added
        ("usage.output_tokens", 4.0),
        ("usage.cache_read_input_tokens", "2000"),
        ("usage.cache_creation_input_tokens", None),
        ("usage.cache_creation.ephemeral_1h_input_tokens", 0.0),
        ("usage.cache_creation.ephemeral_1h_input_tokens", 101),
        ("usage.output_tokens_details.thinking_tokens", 41),
        ("usage.server_tool_use", {"web_search_requests": 1}),
        ("usage.service_tier", "batch"),
        ("model", None),
    ],
)
def test_anthropic_model_read_as_field_by_field(path: str, value: Any) -> None:
    sdk_object = changed(Message.model_validate(ANTHROPIC_MESSAGE), path, value)
    assert_same_reading(anthropic.from_message_model, anthropic.from_message, sdk_object)


GEMINI_RESPONSE: dict[str, Any] = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi."}]}}],
    "model_version": "gemini-2.5-flash",
    "response_id": "resp-1",
    "usage_metadata": {
        "prompt_token_count": 80,
        "cached_content_token_count": 64,
        "candidates_token_count": 4,
        "thoughts_token_count": 20,
        "total_token_count": 104,
        "prompt_tokens_details": [{"modality": "TEXT", "token_count": 80}],
    },
}


def gemini_response(**metadata: Any) -> dict[str, Any]:
    payload = copy.deepcopy(GEMINI_RESPONSE)
    payload["usage_metadata"].update(metadata)
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        GEMINI_RESPONSE,
        gemini_response(tool_use_prompt_token_count=12),
        gemini_response(
            prompt_tokens_details=[
                {"modality": "TEXT", "token_count": 50},
                {"modality": "AUDIO", "token_count": 30},
            ],
            candidates_tokens_details=[{"modality": "IMAGE", "token_count": 4}],
        ),
        gemini_response(candidates_token_count=None, thoughts_token_count=None),
        {**GEMINI_RESPONSE, "usage_metadata": None},
    ],
)
def test_gemini_models_read_as_their_json(payload: dict[str, Any]) -> None:
    sdk_object = GenerateContentResponse.model_validate(payload)
    assert outcome(extract_usage, sdk_object) == outcome(extract_usage, payload)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("usage_metadata.prompt_token_count", None),
        ("usage_metadata.prompt_token_count", -80),
        ("usage_metadata.prompt_token_count", Seven.N),
        ("usage_metadata.candidates_token_count", True),
        ("usage_metadata.thoughts_token_count", MAX_TOKENS_PER_CALL),
        ("usage_metadata.cached_content_token_count", 81),
        ("usage_metadata.cached_content_token_count", "64"),
        ("usage_metadata.tool_use_prompt_token_count", 1.5),
        ("usage_metadata.prompt_tokens_details", [{"modality": "AUDIO", "token_count": -1}]),
        ("model_version", 3),
    ],
)
def test_gemini_model_read_as_field_by_field(path: str, value: Any) -> None:
    sdk_object = changed(GenerateContentResponse.model_validate(GEMINI_RESPONSE), path, value)
    quick, general = gemini.from_generate_content_model, gemini.from_generate_content
    assert_same_reading(quick, general, sdk_object)
