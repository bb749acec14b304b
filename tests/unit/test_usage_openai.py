"""OpenAI usage from JSON dicts: chat, legacy completions, embeddings, Responses."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from llm_toll.usage import MAX_TOKENS_PER_CALL, ExtractedUsage, Usage, UsageError, extract_usage


def chat(usage: Any = ..., **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris."},
                "finish_reason": "stop",
            }
        ],
        **fields,
    }
    if usage is not ...:
        payload["usage"] = usage
    return payload


CHAT_USAGE: dict[str, Any] = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0},
}

RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "o4-mini-2025-04-16",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Tides.", "annotations": []}],
        },
    ],
    "usage": {
        "input_tokens": 300,
        "input_tokens_details": {"cached_tokens": 256, "cache_write_tokens": 0},
        "output_tokens": 90,
        "output_tokens_details": {"reasoning_tokens": 64},
        "total_tokens": 390,
    },
}


def test_chat_completion() -> None:
    assert extract_usage(chat(CHAT_USAGE)) == ExtractedUsage(
        usage=Usage(
            input_tokens=120,  # cached tokens are already in prompt_tokens
            output_tokens=30,  # reasoning tokens are already in completion_tokens
            cache_read_input_tokens=100,
            reasoning_output_tokens=12,
        ),
        model="gpt-4o-2024-08-06",
        provider="openai",
        operation="chat",
        response_id="chatcmpl-1",
    )


def test_chat_completion_minimal_usage_and_cache_writes() -> None:
    found = extract_usage(chat({"prompt_tokens": 5, "completion_tokens": 1}))
    assert found is not None
    assert found.usage == Usage(input_tokens=5, output_tokens=1)

    usage = {**CHAT_USAGE, "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 90}}
    found = extract_usage(chat(usage))
    assert found is not None
    assert (found.usage.cache_read_input_tokens, found.usage.cache_creation_input_tokens) == (
        10,
        90,
    )


def test_null_details_count_as_zero() -> None:
    usage = {**CHAT_USAGE, "prompt_tokens_details": None, "completion_tokens_details": None}
    found = extract_usage(chat(usage))
    assert found is not None
    assert found.usage == Usage(input_tokens=120, output_tokens=30)


def test_chat_completion_without_object_field_is_recognised() -> None:
    """OpenAI-compatible servers sometimes leave out ``object``."""
    payload = chat(CHAT_USAGE)
    del payload["object"]
    found = extract_usage(payload)
    assert found is not None
    assert found.usage.input_tokens == 120


def test_legacy_completion() -> None:
    payload = {
        "id": "cmpl-1",
        "object": "text_completion",
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": "Hi", "index": 0, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }
    assert extract_usage(payload) == ExtractedUsage(
        Usage(input_tokens=4, output_tokens=2),
        model="gpt-3.5-turbo-instruct",
        provider="openai",
        operation="text_completion",
        response_id="cmpl-1",
    )


def test_embeddings() -> None:
    payload = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    assert extract_usage(payload) == ExtractedUsage(
        Usage(input_tokens=8, output_tokens=0),
        model="text-embedding-3-small",
        provider="openai",
        operation="embeddings",
    )


def test_responses_api() -> None:
    assert extract_usage(RESPONSE) == ExtractedUsage(
        usage=Usage(
            input_tokens=300,
            output_tokens=90,
            cache_read_input_tokens=256,
            reasoning_output_tokens=64,
        ),
        model="o4-mini-2025-04-16",
        provider="openai",
        operation="chat",
        response_id="resp_1",
    )


def test_sdk_objects_and_their_dumps_agree() -> None:
    from openai.types.chat import ChatCompletion
    from openai.types.responses import Response

    for payload, model in ((chat(CHAT_USAGE), ChatCompletion), (RESPONSE, Response)):
        sdk_object = model.construct(**copy.deepcopy(payload))
        assert extract_usage(sdk_object) == extract_usage(payload)
        assert extract_usage(sdk_object.model_dump()) == extract_usage(payload)


def test_parsed_subclass_is_recognised() -> None:
    from openai.types.chat import ParsedChatCompletion

    parsed = ParsedChatCompletion[None].construct(**chat(CHAT_USAGE))
    found = extract_usage(parsed)
    assert found is not None
    assert found.usage.input_tokens == 120


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        (..., "usage is missing"),
        (None, "usage is missing"),
        ("12", "usage is not an object: '12'"),
        ([], "usage is not an object: []"),
        ({"completion_tokens": 3}, "usage.prompt_tokens is missing"),
        ({"prompt_tokens": 3, "completion_tokens": None}, "usage.completion_tokens is missing"),
        ({"prompt_tokens": -5, "completion_tokens": 3}, "usage.prompt_tokens is negative: -5"),
        (
            {"prompt_tokens": "12", "completion_tokens": 3},
            "usage.prompt_tokens is not an integer: '12'",
        ),
        (
            {"prompt_tokens": 12.0, "completion_tokens": 3},
            "usage.prompt_tokens is not an integer: 12.0",
        ),
        (
            {"prompt_tokens": True, "completion_tokens": 3},
            "usage.prompt_tokens is not an integer: True",
        ),
        (
            {"prompt_tokens": MAX_TOKENS_PER_CALL + 1, "completion_tokens": 3},
            "usage.prompt_tokens is implausibly large",
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": -1},
            },
            "usage.prompt_tokens_details.cached_tokens is negative: -1",
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 11},
            },
            "cached input tokens (11) exceed input tokens (10)",
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 3,
                "completion_tokens_details": {"reasoning_tokens": 4},
            },
            "reasoning tokens (4) exceed output tokens (3)",
        ),
    ],
)
def test_bad_chat_usage(usage: Any, message: str) -> None:
    with pytest.raises(UsageError, match="^openai chat.completion: " + re.escape(message)):
        extract_usage(chat(usage))


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        (None, "usage is missing"),
        ({"output_tokens": 1}, "usage.input_tokens is missing"),
        ({"input_tokens": 1, "output_tokens": "x"}, "usage.output_tokens is not an integer: 'x'"),
        (
            {"input_tokens": 5, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 6}},
            "cached input tokens (6) exceed input tokens (5)",
        ),
    ],
)
def test_bad_responses_usage(usage: Any, message: str) -> None:
    with pytest.raises(UsageError, match="^openai response: " + re.escape(message)):
        extract_usage({**RESPONSE, "usage": usage})


def test_bad_embeddings_usage() -> None:
    payload = {"object": "list", "data": [], "model": "m", "usage": {"total_tokens": 3}}
    with pytest.raises(UsageError, match=r"^openai embeddings: usage\.prompt_tokens is missing"):
        extract_usage(payload)


def test_other_openai_lists_are_not_responses() -> None:
    assert extract_usage({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]}) is None
    assert extract_usage({"object": "model", "id": "gpt-4o"}) is None
    assert extract_usage({"object": "chat.completion.chunk", "choices": []}) is None
