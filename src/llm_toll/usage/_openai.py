"""OpenAI: chat completions, legacy completions, embeddings and the Responses API.

OpenAI's ``prompt_tokens`` / ``input_tokens`` already include cached tokens, and its
``completion_tokens`` / ``output_tokens`` already include reasoning tokens: the counts map
one to one onto :class:`~llm_toll.usage._base.Usage`.

Further priced units (genai-prices' usage keys) are read too: audio and image tokens of
the token details, and, for the Responses API, the hosted tools' billed calls (web searches,
file searches). The service tier a response says served it is its price context.

Every function accepts the SDK object or the same JSON as a dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from llm_toll.usage._base import NO_CONTEXT, NO_UNITS, ExtractedUsage, Usage, UsageError
from llm_toll.usage._fields import (
    add_unit,
    as_list,
    checked_usage,
    count,
    extra,
    frozen_units,
    get,
    plain_counts,
    text_of,
    usage_object,
)
from llm_toll.usage._provider_cost import usage_cost

PROVIDER = "openai"


def chat_usage(where: str, usage: object) -> Usage:
    """``CompletionUsage`` (chat and legacy completions) as a Usage."""
    found = _plain_chat_usage(usage)
    return _usage(where, usage, _CHAT_FIELDS) if found is None else found


def _plain_chat_usage(usage: Any) -> Usage | None:
    """The usual ``CompletionUsage`` of the openai SDK, read in a few attribute reads: plain
    counts, no audio or image tokens, no extra fields. None for anything else (a dict, a
    detail to add as a unit, a count to reject...), which :func:`_usage` reads field by
    field and whose errors it names.

    This runs on every tracked call: the declared fields of a pydantic model are plain
    instance attributes, while :func:`_usage` costs a dozen generic reads and checks.
    """
    try:
        if usage.__pydantic_extra__:  # OpenRouter's cost, output image tokens...
            return None
        prompt = usage.prompt_tokens
        completion = usage.completion_tokens
        inputs = usage.prompt_tokens_details
        outputs = usage.completion_tokens_details
        cached = written = reasoning = None
        if inputs is not None:
            if inputs.audio_tokens or inputs.image_tokens:
                return None
            cached = inputs.cached_tokens
            written = inputs.cache_write_tokens
        if outputs is not None:
            if outputs.audio_tokens or outputs.__pydantic_extra__:
                return None
            reasoning = outputs.reasoning_tokens
    except AttributeError:  # not an SDK model, or an older SDK's: read field by field
        return None
    # Absent details count 0, as in _usage.
    cached = 0 if cached is None else cached
    written = 0 if written is None else written
    reasoning = 0 if reasoning is None else reasoning
    if not plain_counts(prompt, completion, cached, written, reasoning):
        return None
    try:  # the upper bounds and the checks across counts
        return Usage.from_counts(
            prompt,
            completion,
            cache_read_input_tokens=cached,
            cache_creation_input_tokens=written,
            reasoning_output_tokens=reasoning,
        )
    except UsageError:
        return None


def responses_usage(where: str, usage: object, tools: Mapping[str, int] = NO_UNITS) -> Usage:
    """Responses API ``ResponseUsage`` as a Usage; ``tools``: the billed hosted-tool calls
    of the response (:func:`tool_units`)."""
    return _usage(where, usage, _RESPONSES_FIELDS, tools)


_Read = Callable[[object, str], object]


class _Detail(NamedTuple):
    """One further priced unit in a token-details object: the field, how to read it (the SDK
    type declares it, or it can only be an extra field), its usage key and error label."""

    name: str
    read: _Read
    key: str
    label: str


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
    input_units: tuple[_Detail, ...]
    output_units: tuple[_Detail, ...]


def _layout(
    input: str,
    output: str,
    input_details: str,
    output_details: str,
    *,
    input_units: tuple[tuple[str, _Read, str], ...],
    output_units: tuple[tuple[str, _Read, str], ...],
) -> _Layout:
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
        tuple(_Detail(n, r, k, f"usage.{input_details}.{n}") for n, r, k in input_units),
        tuple(_Detail(n, r, k, f"usage.{output_details}.{n}") for n, r, k in output_units),
    )


# What ``CompletionUsage`` declares is read as a field; what it does not (output image
# tokens) and all of ``ResponseUsage``'s media details only if the provider sent them.
_CHAT_FIELDS = _layout(
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    input_units=(
        ("audio_tokens", get, "input_audio_tokens"),
        ("image_tokens", get, "input_image_tokens"),
    ),
    output_units=(
        ("audio_tokens", get, "output_audio_tokens"),
        ("image_tokens", extra, "output_image_tokens"),
    ),
)
_RESPONSES_FIELDS = _layout(
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
    input_units=(
        ("audio_tokens", extra, "input_audio_tokens"),
        ("image_tokens", extra, "input_image_tokens"),
    ),
    output_units=(
        ("audio_tokens", extra, "output_audio_tokens"),
        ("image_tokens", extra, "output_image_tokens"),
    ),
)


def _usage(
    where: str, usage: object, layout: _Layout, tools: Mapping[str, int] = NO_UNITS
) -> Usage:
    usage = usage_object(where, usage)
    inputs = get(usage, layout.input_details)
    outputs = get(usage, layout.output_details)
    units = dict(tools)
    # Most answers report these details as 0: only a value that is not is checked and kept.
    if inputs is not None:
        for detail in layout.input_units:
            if value := detail.read(inputs, detail.name):
                add_unit(units, where, detail.label, detail.key, value=value)
    if outputs is not None:
        for detail in layout.output_units:
            if value := detail.read(outputs, detail.name):
                add_unit(units, where, detail.label, detail.key, value=value)
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
        units=frozen_units(units),
    )


def embeddings_usage(where: str, usage: object) -> Usage:
    """``CreateEmbeddingResponse.usage``: prompt tokens only."""
    usage = usage_object(where, usage)
    prompt_tokens = count(where, "usage.prompt_tokens", get(usage, "prompt_tokens"), required=True)
    return checked_usage(where, input_tokens=prompt_tokens, output_tokens=0)


# One read-only context per service tier served, made once.
_TIER_CONTEXTS: dict[str, Mapping[str, str]] = {}


def price_context(response: object) -> Mapping[str, str]:
    """The service tier a ``ChatCompletion``, a chunk or a ``Response`` says served it (never
    the tier requested: ``auto`` is served as ``default``, ``flex`` may be...), as a price
    context."""
    return _tier_context(get(response, "service_tier"))


def _tier_context(tier: object) -> Mapping[str, str]:
    if not isinstance(tier, str) or not tier:
        return NO_CONTEXT
    context = _TIER_CONTEXTS.get(tier)
    if context is None:
        context = MappingProxyType({"service_tier": tier})
        if len(_TIER_CONTEXTS) < 64:  # a provider inventing tiers cannot grow this unbounded
            _TIER_CONTEXTS[tier] = context
    return context


# The hosted tools OpenAI bills per call, by the type of their output item.
_BILLED_CALLS = {"file_search_call": "storage_searches"}


def tool_units(where: str, response: object) -> Mapping[str, int]:
    """The billed hosted-tool calls of a Responses API ``Response``.

    Web searches: ``tool_usage.web_search.num_requests`` (the billable searches) when the
    response reports it, else one per ``web_search_call`` output item whose action is a
    search (opening a page or finding in it is not billed). File searches: one per
    ``file_search_call`` item. Code interpreter calls are billed per container, not per
    call, so none is counted.
    """
    units: dict[str, int] = {}
    searches = get(get(response, "tool_usage"), "web_search")
    reported = searches is not None
    if reported:
        add_unit(
            units,
            where,
            "tool_usage.web_search.num_requests",
            "web_searches",
            value=get(searches, "num_requests"),
        )
    for item in as_list(get(response, "output")):
        kind = get(item, "type")
        if kind == "web_search_call":
            if not reported and get(get(item, "action"), "type") in (None, "search"):
                units["web_searches"] = units.get("web_searches", 0) + 1
        elif isinstance(kind, str) and (key := _BILLED_CALLS.get(kind)) is not None:
            units[key] = units.get(key, 0) + 1
    return units


def _extracted(response: object, usage: Usage, operation: str) -> ExtractedUsage:
    return ExtractedUsage(
        usage=usage,
        model=text_of(get(response, "model")),
        provider=PROVIDER,
        operation=operation,
        response_id=text_of(get(response, "id")),
        price_context=NO_CONTEXT if operation == "text_completion" else price_context(response),
        provider_cost_nanos=usage_cost(get(response, "usage")),  # OpenRouter's usage.cost
    )


def from_chat_completion(response: object) -> ExtractedUsage:
    """A ``ChatCompletion`` (or the final ``ChatCompletionChunk`` carrying usage)."""
    usage = chat_usage("openai chat.completion", get(response, "usage"))
    return _extracted(response, usage, "chat")


def from_chat_model(response: Any) -> ExtractedUsage:
    """:func:`from_chat_completion` for the openai SDK's ``ChatCompletion`` (or a subclass),
    its usual usage read by attribute (:func:`_plain_chat_usage`), anything else as
    :func:`from_chat_completion` reads it."""
    try:
        usage = _plain_chat_usage(response.usage)
        if usage is None:
            return from_chat_completion(response)
        model = response.model
        response_id = response.id
        tier = response.service_tier
    except AttributeError:
        return from_chat_completion(response)
    return ExtractedUsage(
        usage=usage,
        model=text_of(model),
        provider=PROVIDER,
        operation="chat",
        response_id=text_of(response_id),
        price_context=_tier_context(tier),
        provider_cost_nanos=None,  # the usage has no extra fields: no ``cost``
    )


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
    """A Responses API ``Response`` (``object: "response"``). LiteLLM hands its callbacks
    a ``ResponsesAPIResponse`` whose usage it renamed to chat completions' fields
    (``prompt_tokens``, ``completion_tokens``): such usage is read by those names."""
    where = "openai response"
    usage = get(response, "usage")
    chat_named = get(usage, "input_tokens") is None and get(usage, "prompt_tokens") is not None
    layout = _CHAT_FIELDS if chat_named else _RESPONSES_FIELDS
    found = _usage(where, usage, layout, tool_units(where, response))
    return _extracted(response, found, "chat")


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
