"""The further priced units and the price context each extractor reads, from the JSON dict
and from the SDK object of the same answer, whole and streamed."""

from __future__ import annotations

from typing import Any

import pytest

from llm_toll.usage import StreamAccumulator, extract_usage
from llm_toll.usage._fields import extra
from tests.support.payloads import CASES, events, generate, message, response

# name -> (units, price context) extraction must give.
EXPECTED: dict[str, tuple[dict[str, int], dict[str, str]]] = {
    "chat-o3-flex": ({}, {"service_tier": "flex"}),
    "chat-gpt-audio-in-out": (
        {"input_audio_tokens": 1200, "output_audio_tokens": 700},
        {"service_tier": "default"},
    ),
    "chat-gpt-4o-image": ({"input_image_tokens": 1530}, {"service_tier": "default"}),
    "responses-o3-web-search": ({"web_searches": 2}, {"service_tier": "default"}),
    "responses-gpt-4o-tool-usage": ({"web_searches": 1}, {"service_tier": "default"}),
    "responses-gpt-4.1-file-search": ({"storage_searches": 2}, {"service_tier": "default"}),
    "responses-o4-mini-code": ({}, {"service_tier": "default"}),
    "messages-opus-4-1-5m-and-1h": ({"cache_write_1h_tokens": 3000}, {}),
    "messages-sonnet-4-6-web-search": ({"web_searches": 3}, {}),
    "messages-sonnet-4-6-web-fetch": ({}, {}),
    "messages-opus-4-5-batch": ({}, {"processing": "batch"}),
    "messages-opus-4-8-fast": ({}, {"speed": "fast"}),
    "messages-haiku-4-5-priority": ({}, {}),
    "gemini-2.5-flash-cached-audio": (
        {"input_audio_tokens": 6000, "cache_audio_read_tokens": 4096},
        {},
    ),
    "gemini-live-2.5-flash-image-doc": ({"input_image_tokens": 774}, {}),
    "gemini-live-2.5-flash-video": (
        {"input_video_tokens": 2580, "input_audio_tokens": 800, "output_audio_tokens": 400},
        {},
    ),
    "gemini-2.5-flash-tool-audio": (
        {"input_tool_tokens": 1520, "input_audio_tokens": 1500, "input_audio_tool_tokens": 1500},
        {},
    ),
    "gemini-omni-flash-video-out": ({"output_video_tokens": 5000}, {}),
}


def sdk_object(api: str, body: dict[str, Any]) -> Any:
    """The object the SDK makes of the answer (openai and anthropic construct it, as they do
    from a response, without validation)."""
    if api == "chat":
        from openai._models import construct_type
        from openai.types.chat import ChatCompletion

        return construct_type(type_=ChatCompletion, value=body)
    if api == "responses":
        from openai._models import construct_type
        from openai.types.responses import Response

        return construct_type(type_=Response, value=body)
    if api == "messages":
        from anthropic._models import construct_type as anthropic_construct
        from anthropic.types import Message

        return anthropic_construct(type_=Message, value=body)
    from google.genai import types

    return types.GenerateContentResponse.model_validate(body)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("form", ["dict", "sdk", "snake-dump"])
def test_whole_answers(name: str, form: str) -> None:
    case = CASES[name]
    units, context = EXPECTED[name]
    answer: Any = case.body
    if form != "dict":
        answer = sdk_object(case.api, case.body)
        if form == "snake-dump":
            answer = answer.model_dump()
    found = extract_usage(answer)
    assert found is not None
    assert dict(found.usage.units) == units
    assert dict(found.price_context) == context


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_streams_of_dicts(name: str) -> None:
    case = CASES[name]
    units, context = EXPECTED[name]
    accumulator = StreamAccumulator()
    for item in events(case.api, case.body):
        accumulator.add(item[1] if isinstance(item, tuple) else item)
    found = accumulator.result()
    assert found is not None and not found.estimated
    assert dict(found.usage.units) == units
    assert dict(found.price_context) == context


def test_no_units_no_context_when_nothing_is_reported() -> None:
    found = extract_usage(message("claude-sonnet-4-6", 10, 5))
    assert found is not None
    assert not found.usage.units and not found.price_context
    found = extract_usage(generate("gemini-2.5-flash", {"text": 10}, {"text": 3}))
    assert found is not None and not found.usage.units


def test_a_web_search_opening_a_page_is_not_billed() -> None:
    from tests.support.payloads import web_search_call

    body = response("o3", 100, 10, tools=[web_search_call(1, "open_page")])
    found = extract_usage(body)
    assert found is not None and not found.usage.units


def test_undeclared_fields_are_read_from_pydantic_extras_only() -> None:
    body = response("gpt-realtime", 500, 60)
    body["usage"]["input_tokens_details"]["audio_tokens"] = 400
    body["usage"]["output_tokens_details"]["audio_tokens"] = 50
    sdk = sdk_object("responses", body)
    assert extra(sdk.usage.input_tokens_details, "audio_tokens") == 400
    assert extra(sdk.usage.input_tokens_details, "absent") is None
    for answer in (body, sdk):
        found = extract_usage(answer)
        assert found is not None
        assert dict(found.usage.units) == {"input_audio_tokens": 400, "output_audio_tokens": 50}


def test_a_part_larger_than_its_whole_is_refused() -> None:
    from llm_toll.usage import UsageError
    from llm_toll.usage._openai import from_chat_completion
    from tests.support.payloads import chat

    with pytest.raises(UsageError, match="input_audio_tokens"):
        from_chat_completion(chat("gpt-audio", 100, 10, input_audio=101))
