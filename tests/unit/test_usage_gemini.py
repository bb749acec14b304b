"""Gemini usage from REST JSON (camelCase), SDK dumps (snake_case) and SDK objects."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

import pytest

from llm_toll.usage import ExtractedUsage, Usage, UsageError, extract_usage, response_text

REST: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {"text": "Thinking about light...", "thought": True},
                    {"text": "Rayleigh "},
                    {"text": "scattering."},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1200,  # includes the cached content
        "cachedContentTokenCount": 1000,
        "candidatesTokenCount": 40,  # thoughts are not in here
        "thoughtsTokenCount": 200,
        "toolUsePromptTokenCount": 30,
        "totalTokenCount": 1470,
    },
    "modelVersion": "gemini-2.5-pro",
    "responseId": "abc123",
}

EXPECTED = ExtractedUsage(
    usage=Usage(
        input_tokens=1230,
        output_tokens=240,
        cache_read_input_tokens=1000,
        reasoning_output_tokens=200,
        units=MappingProxyType({"input_tool_tokens": 30}),
    ),
    model="gemini-2.5-pro",
    provider="gcp.gemini",
    operation="generate_content",
    response_id="abc123",
)


def test_rest_json() -> None:
    found = extract_usage(REST)
    assert found == EXPECTED
    assert found.usage.total_tokens == REST["usageMetadata"]["totalTokenCount"]


def test_sdk_object_and_snake_case_dump() -> None:
    from google.genai import types

    response = types.GenerateContentResponse.model_validate(REST)
    assert extract_usage(response) == EXPECTED
    assert extract_usage(response.model_dump()) == EXPECTED
    assert extract_usage(response.model_dump(mode="json", by_alias=True)) == EXPECTED
    assert response_text(response) == response.text == "Rayleigh scattering."


def test_no_candidates_tokens_means_zero_output() -> None:
    """A blocked prompt: Gemini leaves candidatesTokenCount out."""
    payload = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9},
    }
    found = extract_usage(payload)
    assert found is not None
    assert found.usage == Usage(input_tokens=9, output_tokens=0)
    assert response_text(payload) == ""


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        (None, "usage is missing"),
        ("12", "usage is not an object: '12'"),
        ({"candidatesTokenCount": 3}, "usage_metadata.prompt_token_count is missing"),
        ({"promptTokenCount": -5}, "usage_metadata.prompt_token_count is negative: -5"),
        (
            {"promptTokenCount": 5, "thoughtsTokenCount": "7"},
            "usage_metadata.thoughts_token_count is not an integer: '7'",
        ),
        (
            {"promptTokenCount": 5, "candidatesTokenCount": 10**10},
            "usage_metadata.candidates_token_count is implausibly large",
        ),
        (
            {"promptTokenCount": 5, "cachedContentTokenCount": 6},
            "cached input tokens (6) exceed input tokens (5)",
        ),
    ],
)
def test_bad_usage(metadata: Any, error: str) -> None:
    payload = {**REST, "usageMetadata": metadata}
    with pytest.raises(UsageError, match="^gcp.gemini generate_content: " + re.escape(error)):
        extract_usage(payload)


def test_candidates_without_usage_is_recognised_and_refused() -> None:
    payload = {key: value for key, value in REST.items() if key != "usageMetadata"}
    with pytest.raises(UsageError, match="usage is missing"):
        extract_usage(payload)
