"""Recognising (or not) an LLM response, and reading its text."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from llm_toll.usage import ExtractedUsage, Usage, extract_usage, response_text


class Plain:
    model = "gpt-4o"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "a plain string",
        42,
        3.5,
        b"bytes",
        [],
        [{"usage": {"prompt_tokens": 1, "completion_tokens": 1}}],
        (1, 2),
        {},
        {"usage": {"prompt_tokens": 1, "completion_tokens": 1}},  # no shape of a response
        {"model": "gpt-4o", "choices": []},
        Plain(),
        SimpleNamespace(model="gpt-4o"),
        iter([1, 2]),
    ],
    ids=repr,
)
def test_not_an_llm_response(value: object) -> None:
    assert extract_usage(value) is None
    assert response_text(value) == ""


def test_sdk_objects_that_are_not_responses() -> None:
    from anthropic.types import TextBlock
    from google.genai import types
    from openai.types import Model

    assert extract_usage(Model(id="gpt-4o", created=1, object="model", owned_by="openai")) is None
    assert extract_usage(TextBlock(type="text", text="hi")) is None
    assert extract_usage(types.Candidate()) is None


def test_look_alike_objects_of_other_libraries_are_read_by_shape() -> None:
    """E.g. an OpenAI-compatible library's own response class (or a test double)."""
    usage = SimpleNamespace(prompt_tokens=11, completion_tokens=4)
    message = SimpleNamespace(content="Hello!")
    response = SimpleNamespace(
        id="x-1",
        model="llama-3-70b",
        choices=[SimpleNamespace(message=message)],
        usage=usage,
    )
    assert extract_usage(response) == ExtractedUsage(
        Usage(input_tokens=11, output_tokens=4),
        model="llama-3-70b",
        provider="openai",
        operation="chat",
        response_id="x-1",
    )
    assert response_text(response) == "Hello!"

    gemini_like = SimpleNamespace(
        model_version="gemini-2.0-flash",
        usage_metadata=SimpleNamespace(prompt_token_count=3, candidates_token_count=2),
    )
    found = extract_usage(gemini_like)
    assert found is not None
    assert found.provider == "gcp.gemini"
    assert found.usage == Usage(input_tokens=3, output_tokens=2)


def test_an_anthropic_message_look_alike_without_type_is_read_by_shape() -> None:
    """As llm-toll 0.13 recognised it: stop_reason, content and a usage with input_tokens."""
    message = SimpleNamespace(
        id="msg-1",
        model="claude-sonnet-4-20250514",
        content=[{"type": "text", "text": "Hello!"}],
        stop_reason="end_turn",
        usage=SimpleNamespace(input_tokens=200, output_tokens=100),
    )
    assert extract_usage(message) == ExtractedUsage(
        Usage(input_tokens=200, output_tokens=100),
        model="claude-sonnet-4-20250514",
        provider="anthropic",
        operation="chat",
        response_id="msg-1",
    )
    assert response_text(message) == "Hello!"
    # Without stop_reason it is not recognised (an OpenAI Responses look-alike has the same usage).
    del message.stop_reason
    assert extract_usage(message) is None


def test_response_text_of_each_kind() -> None:
    chat = {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"content": "one "}},
            {"index": 1, "message": {"content": "two"}},
            {"index": 2, "message": {"content": None, "tool_calls": []}},
        ],
    }
    completion = {"object": "text_completion", "choices": [{"text": "done"}]}
    embeddings = {"object": "list", "data": [], "usage": {"prompt_tokens": 1}}
    assert response_text(chat) == "one two"
    assert response_text(completion) == "done"
    assert response_text(embeddings) == ""


def test_response_text_never_raises() -> None:
    class Exploding:
        @property
        def choices(self) -> Any:
            raise RuntimeError("boom")

    broken = {"object": "chat.completion", "choices": [{"message": 5}, "junk", None]}
    assert response_text(broken) == ""
    exploding = Exploding()
    exploding.__dict__["model"] = "m"
    assert response_text(exploding) == ""


def test_importing_llm_toll_usage_imports_no_sdk() -> None:
    code = (
        "import sys, llm_toll.usage, llm_toll.demo.replay; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'openai', 'anthropic', 'google'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
