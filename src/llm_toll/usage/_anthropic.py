"""Anthropic: the Messages API, whole and streamed.

Anthropic's ``input_tokens`` *excludes* the tokens read from and written to the prompt
cache; :class:`~llm_toll.usage._base.Usage` counts them in, so they are added here.
``output_tokens`` already includes thinking tokens (``output_tokens_details.thinking_tokens``).

Further priced units (genai-prices' usage keys): the cache writes kept one hour
(``cache_creation.ephemeral_1h_input_tokens``, dearer than the default five minutes, which
are the rest of the cache writes) and the server-side web searches
(``server_tool_use.web_search_requests``; web fetches are not billed per call). The usage's
``service_tier`` (``batch``) and ``speed`` (``fast``) are its price context.

Every function accepts the SDK object or the same JSON as a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from llm_toll.usage._base import NO_CONTEXT, ExtractedUsage, Usage, UsageError
from llm_toll.usage._fields import (
    add_unit,
    as_list,
    checked_usage,
    count,
    extra,
    frozen_units,
    get,
    is_zero,
    plain_counts,
    text_of,
    usage_object,
)

PROVIDER = "anthropic"


def message_usage(where: str, usage: object, delta: object = None) -> Usage:
    """A Message's ``usage`` as a Usage.

    ``delta`` is the usage of the last ``message_delta`` event of a stream, whose counts are
    cumulative: each count it carries replaces the one from ``message_start``.
    """
    usage = usage_object(where, usage)

    def field(name: str) -> object:
        value = get(delta, name) if delta is not None else None
        return get(usage, name) if value is None else value

    uncached = count(where, "usage.input_tokens", field("input_tokens"), required=True)
    cache_read = count(where, "usage.cache_read_input_tokens", field("cache_read_input_tokens"))
    cache_creation = count(
        where, "usage.cache_creation_input_tokens", field("cache_creation_input_tokens")
    )
    units: dict[str, int] = {}
    if cache_creation:
        # Declared by Message's Usage only, not by a stream's MessageDeltaUsage.
        split = extra(delta, "cache_creation") if delta is not None else None
        add_unit(
            units,
            where,
            "usage.cache_creation.ephemeral_1h_input_tokens",
            "cache_write_1h_tokens",
            value=get(
                get(usage, "cache_creation") if split is None else split,
                "ephemeral_1h_input_tokens",
            ),
        )
    add_unit(
        units,
        where,
        "usage.server_tool_use.web_search_requests",
        "web_searches",
        value=get(field("server_tool_use"), "web_search_requests"),
    )
    return checked_usage(
        where,
        input_tokens=uncached + cache_read + cache_creation,
        output_tokens=count(where, "usage.output_tokens", field("output_tokens"), required=True),
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
        reasoning_output_tokens=count(
            where,
            "usage.output_tokens_details.thinking_tokens",
            get(field("output_tokens_details"), "thinking_tokens"),
        ),
        units=frozen_units(units),
    )


def _plain_message_usage(usage: Any) -> Usage | None:
    """The usual ``Usage`` of the anthropic SDK's ``Message``, read in a few attribute
    reads: plain counts, no one-hour cache writes, no web searches. None for anything else
    (a dict, a unit to add, a count to reject...), which :func:`message_usage` reads field
    by field and whose errors it names.

    This runs on every tracked call: the declared fields of a pydantic model are plain
    instance attributes, while :func:`message_usage` costs a dozen generic reads and checks.
    """
    try:
        uncached = usage.input_tokens
        read = usage.cache_read_input_tokens
        written = usage.cache_creation_input_tokens
        output = usage.output_tokens
        details = usage.output_tokens_details
        thinking = None if details is None else details.thinking_tokens
        tools = usage.server_tool_use
        searches = None if tools is None else tools.web_search_requests
        one_hour = None
        if written:  # as in message_usage, the split is only read for cache writes
            split = usage.cache_creation
            one_hour = None if split is None else split.ephemeral_1h_input_tokens
    except AttributeError:  # not an SDK model, or an older SDK's: read field by field
        return None
    # Absent cache and thinking counts are 0, as in message_usage.
    read = 0 if read is None else read
    written = 0 if written is None else written
    thinking = 0 if thinking is None else thinking
    if not (
        plain_counts(uncached, read, written, output, thinking)
        and is_zero(searches)
        and is_zero(one_hour)
    ):
        return None
    try:  # the upper bounds and the checks across counts
        return Usage.from_counts(
            uncached + read + written,
            output,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=written,
            reasoning_output_tokens=thinking,
        )
    except UsageError:
        return None


_BATCH: Mapping[str, str] = MappingProxyType({"processing": "batch"})
_FAST: Mapping[str, str] = MappingProxyType({"speed": "fast"})
_FAST_BATCH: Mapping[str, str] = MappingProxyType({"processing": "batch", "speed": "fast"})


def price_context(usage: object) -> Mapping[str, str]:
    """What a Message's ``usage`` says decides its price: ``service_tier: batch`` (a Message
    Batches result) and ``speed: fast`` (fast mode). The ``priority`` tier is billed by
    commitment, not per token, and changes no price."""
    if usage is None or isinstance(usage, (str, int, float, list)):
        return NO_CONTEXT
    return _context(get(usage, "service_tier"), get(usage, "speed"))


def _context(service_tier: object, speed: object) -> Mapping[str, str]:
    batch = service_tier == "batch"
    fast = speed == "fast"
    if batch:
        return _FAST_BATCH if fast else _BATCH
    return _FAST if fast else NO_CONTEXT


def from_message(message: object) -> ExtractedUsage:
    """A ``Message`` (``type: "message"``), also ``BetaMessage`` and ``ParsedMessage``."""
    usage = get(message, "usage")
    return ExtractedUsage(
        usage=message_usage("anthropic message", usage),
        model=text_of(get(message, "model")),
        provider=PROVIDER,
        operation="chat",
        response_id=text_of(get(message, "id")),
        price_context=price_context(usage),
    )


def from_message_model(message: Any) -> ExtractedUsage:
    """:func:`from_message` for the anthropic SDK's ``Message`` (or ``BetaMessage``...), its
    usual usage read by attribute (:func:`_plain_message_usage`), anything else as
    :func:`from_message` reads it."""
    try:
        usage = message.usage
        found = _plain_message_usage(usage)
        if found is None:
            return from_message(message)
        model = message.model
        response_id = message.id
        context = _context(usage.service_tier, usage.speed)
    except AttributeError:
        return from_message(message)
    return ExtractedUsage(
        usage=found,
        model=text_of(model),
        provider=PROVIDER,
        operation="chat",
        response_id=text_of(response_id),
        price_context=context,
    )


def message_text(message: object) -> str:
    """The text blocks of a Message (thinking and tool blocks left out)."""
    return "".join(
        text
        for block in as_list(get(message, "content"))
        if get(block, "type") == "text" and (text := text_of(get(block, "text")))
    )
