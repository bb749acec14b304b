"""Anthropic usage from Message dicts and SDK objects."""

from __future__ import annotations

import re
from typing import Any

import pytest

from llm_toll.usage import ExtractedUsage, Usage, UsageError, extract_usage, response_text


def message(usage: Any = ..., **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
            {"type": "text", "text": "The Danube, "},
            {"type": "text", "text": "the Rhine."},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        **fields,
    }
    if usage is not ...:
        payload["usage"] = usage
    return payload


USAGE: dict[str, Any] = {
    "input_tokens": 20,  # uncached input only
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 300,
    "output_tokens": 80,
    "output_tokens_details": {"thinking_tokens": 50},
}


def test_cached_tokens_are_added_to_input() -> None:
    assert extract_usage(message(USAGE)) == ExtractedUsage(
        usage=Usage(
            input_tokens=1320,
            output_tokens=80,
            cache_read_input_tokens=1000,
            cache_creation_input_tokens=300,
            reasoning_output_tokens=50,
        ),
        model="claude-sonnet-4-6",
        provider="anthropic",
        operation="chat",
        response_id="msg_1",
    )


def test_optional_cache_fields_may_be_null_or_absent() -> None:
    usage = {"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": None}
    found = extract_usage(message(usage))
    assert found is not None
    assert found.usage == Usage(input_tokens=7, output_tokens=3)


def test_sdk_message_and_beta_message() -> None:
    from anthropic.types import Message
    from anthropic.types.beta import BetaMessage

    expected = extract_usage(message(USAGE))
    for model in (Message, BetaMessage):
        sdk_object = model.model_validate(message(USAGE))
        assert extract_usage(sdk_object) == expected
        assert response_text(sdk_object) == "The Danube, the Rhine."


def test_text_leaves_out_thinking() -> None:
    assert response_text(message(USAGE)) == "The Danube, the Rhine."


@pytest.mark.parametrize(
    ("usage", "error"),
    [
        (..., "usage is missing"),
        (None, "usage is missing"),
        (42, "usage is not an object: 42"),
        ({"output_tokens": 3}, "usage.input_tokens is missing"),
        ({"input_tokens": 3}, "usage.output_tokens is missing"),
        ({"input_tokens": -1, "output_tokens": 3}, "usage.input_tokens is negative: -1"),
        ({"input_tokens": 1, "output_tokens": 2.5}, "usage.output_tokens is not an integer: 2.5"),
        (
            {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": "9"},
            "usage.cache_read_input_tokens is not an integer: '9'",
        ),
        (
            {"input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": 10**9},
            "usage.cache_creation_input_tokens is implausibly large",
        ),
        (
            {
                "input_tokens": 1,
                "output_tokens": 2,
                "output_tokens_details": {"thinking_tokens": 3},
            },
            "reasoning tokens (3) exceed output tokens (2)",
        ),
    ],
)
def test_bad_usage(usage: Any, error: str) -> None:
    with pytest.raises(UsageError, match="^anthropic message: " + re.escape(error)):
        extract_usage(message(usage))


def test_sums_above_the_limit_are_refused() -> None:
    usage = {"input_tokens": 60_000_000, "cache_read_input_tokens": 60_000_000, "output_tokens": 1}
    with pytest.raises(UsageError, match="input_tokens is implausibly large: 120000000"):
        extract_usage(message(usage))


def test_other_typed_payloads_are_not_messages() -> None:
    assert extract_usage({"type": "message_start", "message": message(USAGE)}) is None
    assert extract_usage({"type": "error", "error": {"type": "overloaded_error"}}) is None
