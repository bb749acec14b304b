"""Estimating usage from text when a provider reports none."""

from __future__ import annotations

import pytest

from llm_toll.usage import ExtractedUsage, Usage, estimate_tokens, estimate_usage, request_text


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100), ("x" * 401, 101)],
)
def test_estimate_tokens_is_four_characters_per_token_rounded_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_estimate_usage_is_flagged() -> None:
    assert estimate_usage("x" * 10, "y" * 4, "gpt-4o") == ExtractedUsage(
        Usage(input_tokens=3, output_tokens=1), model="gpt-4o", estimated=True
    )
    assert estimate_usage("", "", None).usage == Usage()


def test_openai_and_anthropic_messages() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "this picture."},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "user", "content": [{"type": "tool_result", "content": "42 degrees"}]},
    ]
    text = request_text((), {"model": "gpt-4o", "messages": messages, "system": "You are kind."})
    assert text == "You are kind.\nBe brief.\nDescribe\nthis picture.\n42 degrees"
    assert "gpt-4o" not in text
    assert "AAAA" not in text


def test_responses_input_and_instructions() -> None:
    assert request_text((), {"input": "Hi", "instructions": "Be terse."}) == "Be terse.\nHi"
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}]
    assert request_text((), {"input": items}) == "Hello"


def test_legacy_prompt_and_embedding_input() -> None:
    assert request_text((), {"prompt": ["one", "two"]}) == "one\ntwo"
    assert request_text((), {"input": [[1, 2, 3]]}) == ""  # token arrays are not text


def test_gemini_contents_and_config() -> None:
    from google.genai import types

    contents = [
        "plain string",
        {"role": "user", "parts": [{"text": "dict part"}]},
        types.Content(role="user", parts=[types.Part(text="sdk part")]),
        types.Part(text="bare part"),
    ]
    config = types.GenerateContentConfig(system_instruction="Answer in French.")
    text = request_text((), {"contents": contents, "config": config})
    assert text == "plain string\ndict part\nsdk part\nbare part\nAnswer in French."
    rest = {
        "systemInstruction": {"parts": [{"text": "Sys"}]},
        "contents": [{"parts": [{"text": "Q"}]}],
    }
    assert request_text((), rest) == "Sys\nQ"


def test_positional_arguments() -> None:
    class Service:
        content = "not a prompt"

    assert request_text((Service(), "What is 2+2?"), {}) == "What is 2+2?"
    assert request_text(([{"role": "user", "content": "Hi"}],), {}) == "Hi"


def test_deeply_nested_input_is_bounded() -> None:
    nested: object = "deep"
    for _ in range(100):
        nested = [nested]
    assert request_text((), {"input": nested}) == ""
