"""OpenAI: chat completions, legacy completions, embeddings and the Responses API.

OpenAI's ``prompt_tokens`` / ``input_tokens`` already include cached tokens, and its
``completion_tokens`` / ``output_tokens`` already include reasoning tokens: the counts map
one to one onto :class:`~llm_toll.usage.base.Usage`.

Every function accepts the SDK object or the same JSON as a dict.
"""

from __future__ import annotations

from typing import NamedTuple

from llm_toll.usage._fields import as_list, checked_usage, count, get, text_of, usage_object
from llm_toll.usage.base import ExtractedUsage, Usage
from llm_toll.usage.provider_cost import usage_cost

PROVIDER = "openai"


def chat_usage(where: str, usage: object) -> Usage:
    """``CompletionUsage`` (chat and legacy completions) as a Usage."""
    return _usage(where, usage, _CHAT_FIELDS)


def responses_usage(where: str, usage: object) -> Usage:
    """Responses API ``ResponseUsage`` as a Usage."""
    return _usage(where, usage, _RESPONSES_FIELDS)


class _Layout(NamedTuple):
    """Where one OpenAI API puts its counts (the same layout under other names), and the
    labels errors name them by, made once: reading usage runs on every call."""

    input: str
    output: str
    input_details: str
    output_details: str
    input_label: str
    output_label: str
    read_label: str
    write_label: str
    reasoning_label: str


def _layout(input: str, output: str, input_details: str, output_details: str) -> _Layout:
    return _Layout(
        input,
        output,
        input_details,
        output_details,
        f"usage.{input}",
        f"usage.{output}",
        f"usage.{input_details}.cached_tokens",
        f"usage.{input_details}.cache_write_tokens",
        f"usage.{output_details}.reasoning_tokens",
    )


_CHAT_FIELDS = _layout(
    "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"
)
_RESPONSES_FIELDS = _layout(
    "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"
)


def _usage(where: str, usage: object, layout: _Layout) -> Usage:
    usage = usage_object(where, usage)
    inputs = get(usage, layout.input_details)
    outputs = get(usage, layout.output_details)
    return checked_usage(
        where,
        input_tokens=count(where, layout.input_label, get(usage, layout.input), required=True),
        output_tokens=count(where, layout.output_label, get(usage, layout.output), required=True),
        cache_read_input_tokens=count(where, layout.read_label, get(inputs, "cached_tokens")),
        cache_creation_input_tokens=count(
            where, layout.write_label, get(inputs, "cache_write_tokens")
        ),
        reasoning_output_tokens=count(
            where, layout.reasoning_label, get(outputs, "reasoning_tokens")
        ),
    )


def embeddings_usage(where: str, usage: object) -> Usage:
    """``CreateEmbeddingResponse.usage``: prompt tokens only."""
    usage = usage_object(where, usage)
    prompt_tokens = count(where, "usage.prompt_tokens", get(usage, "prompt_tokens"), required=True)
    return checked_usage(where, input_tokens=prompt_tokens, output_tokens=0)


def _extracted(response: object, usage: Usage, operation: str) -> ExtractedUsage:
    return ExtractedUsage(
        usage=usage,
        model=text_of(get(response, "model")),
        provider=PROVIDER,
        operation=operation,
        response_id=text_of(get(response, "id")),
        provider_cost_nanos=usage_cost(get(response, "usage")),  # OpenRouter's usage.cost
    )


def from_chat_completion(response: object) -> ExtractedUsage:
    """A ``ChatCompletion`` (or the final ``ChatCompletionChunk`` carrying usage)."""
    usage = chat_usage("openai chat.completion", get(response, "usage"))
    return _extracted(response, usage, "chat")


def from_completion(response: object) -> ExtractedUsage:
    """A legacy ``Completion`` (``object: "text_completion"``)."""
    usage = chat_usage("openai text_completion", get(response, "usage"))
    return _extracted(response, usage, "text_completion")


def from_embeddings(response: object) -> ExtractedUsage:
    """A ``CreateEmbeddingResponse`` (``object: "list"``); it has no id."""
    usage = embeddings_usage("openai embeddings", get(response, "usage"))
    model = text_of(get(response, "model"))
    return ExtractedUsage(usage=usage, model=model, provider=PROVIDER, operation="embeddings")


def from_response(response: object) -> ExtractedUsage:
    """A Responses API ``Response`` (``object: "response"``)."""
    usage = responses_usage("openai response", get(response, "usage"))
    return _extracted(response, usage, "chat")


def chat_text(response: object) -> str:
    """The assistant text of a ChatCompletion (all choices)."""
    parts: list[str] = []
    for choice in as_list(get(response, "choices")):
        content = get(get(choice, "message"), "content")
        if isinstance(content, str):
            parts.append(content)
    return "".join(parts)


def completion_text(response: object) -> str:
    """The text of a legacy Completion (all choices)."""
    return "".join(t for c in as_list(get(response, "choices")) if (t := text_of(get(c, "text"))))


def response_output_text(response: object) -> str:
    """The ``output_text`` items of a Responses API ``Response``."""
    parts: list[str] = []
    for item in as_list(get(response, "output")):
        if get(item, "type") != "message":
            continue
        for content in as_list(get(item, "content")):
            if get(content, "type") == "output_text" and (text := text_of(get(content, "text"))):
                parts.append(text)
    return "".join(parts)


def chunk_text(chunk: object) -> str:
    """The text delta of a ``ChatCompletionChunk`` or a streamed legacy completion."""
    parts: list[str] = []
    for choice in as_list(get(chunk, "choices")):
        delta = get(choice, "delta")
        text = get(delta, "content") if delta is not None else get(choice, "text")
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)
