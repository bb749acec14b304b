"""Google Gemini (google-genai): ``generate_content``, whole and streamed.

``prompt_token_count`` already includes ``cached_content_token_count``; tool results fed
back to the model (``tool_use_prompt_token_count``) and thoughts (``thoughts_token_count``)
are counted *apart* from the prompt and the candidates, so they are added to input and
output here (``total_token_count`` is the sum of all four).

Further priced units (genai-prices' usage keys, read as genai-prices' own Google extractor
reads them): the prompt, cached and candidate tokens of each modality other than text
(``promptTokensDetails`` -> ``input_audio_tokens``..., ``cacheTokensDetails`` ->
``cache_audio_read_tokens``..., ``candidatesTokensDetails`` -> ``output_image_tokens``...;
a DOCUMENT is billed as IMAGE), and the tool-use prompt (``input_tool_tokens``, its
modalities counted in the prompt's too). Text tokens are the rest of each count.

Every function accepts the SDK object, its ``model_dump()`` (snake_case) or the REST JSON
(camelCase).
"""

from __future__ import annotations

from typing import Any

from llm_toll.usage._base import NO_CONTEXT, ExtractedUsage, Usage, UsageError
from llm_toll.usage._fields import (
    add_unit,
    as_list,
    checked_usage,
    count,
    frozen_units,
    get,
    get2,
    plain_counts,
    text_of,
    usage_object,
)

PROVIDER = "gcp.gemini"
OPERATION = "generate_content"
_WHERE = "gcp.gemini generate_content"

# The priced modality of a ``MediaModality``; TEXT (the rest) and unspecified are left out.
_MODALITIES = {"AUDIO": "audio", "IMAGE": "image", "VIDEO": "video", "DOCUMENT": "image"}

# (snake_case field, camelCase key, error label, usage keys by modality): one list of
# ModalityTokenCount each.
_DETAILS = (
    (
        "prompt_tokens_details",
        "promptTokensDetails",
        "usage_metadata.prompt_tokens_details",
        {m: (f"input_{m}_tokens",) for m in _MODALITIES.values()},
    ),
    (
        "cache_tokens_details",
        "cacheTokensDetails",
        "usage_metadata.cache_tokens_details",
        {m: (f"cache_{m}_read_tokens",) for m in _MODALITIES.values()},
    ),
    (
        "candidates_tokens_details",
        "candidatesTokensDetails",
        "usage_metadata.candidates_tokens_details",
        {m: (f"output_{m}_tokens",) for m in _MODALITIES.values()},
    ),
    (
        "tool_use_prompt_tokens_details",
        "toolUsePromptTokensDetails",
        "usage_metadata.tool_use_prompt_tokens_details",
        {m: (f"input_{m}_tokens", f"input_{m}_tool_tokens") for m in _MODALITIES.values()},
    ),
)


def _modality_units(where: str, metadata: object, units: dict[str, int]) -> None:
    for name, camel, label, keys in _DETAILS:
        for entry in as_list(get2(metadata, name, camel)):
            modality = get(entry, "modality")
            modality = getattr(modality, "value", modality)  # the SDK's MediaModality enum
            kind = _MODALITIES.get(modality) if isinstance(modality, str) else None
            if kind is None:
                continue
            tokens = get2(entry, "token_count", "tokenCount")
            for key in keys[kind]:
                add_unit(units, where, f"{label}.{kind}", key, value=tokens)


def usage_metadata(metadata: object, where: str = _WHERE) -> Usage:
    """``GenerateContentResponseUsageMetadata`` as a Usage."""
    metadata = usage_object(where, metadata)
    prompt = count(
        where,
        "usage_metadata.prompt_token_count",
        get2(metadata, "prompt_token_count", "promptTokenCount"),
        required=True,
    )
    tool_prompt = count(
        where,
        "usage_metadata.tool_use_prompt_token_count",
        get2(metadata, "tool_use_prompt_token_count", "toolUsePromptTokenCount"),
    )
    # Absent when the model produced no candidates (e.g. a blocked prompt): 0, not missing.
    candidates = count(
        where,
        "usage_metadata.candidates_token_count",
        get2(metadata, "candidates_token_count", "candidatesTokenCount"),
    )
    thoughts = count(
        where,
        "usage_metadata.thoughts_token_count",
        get2(metadata, "thoughts_token_count", "thoughtsTokenCount"),
    )
    units: dict[str, int] = {"input_tool_tokens": tool_prompt} if tool_prompt else {}
    _modality_units(where, metadata, units)
    return checked_usage(
        where,
        input_tokens=prompt + tool_prompt,
        output_tokens=candidates + thoughts,
        cache_read_input_tokens=count(
            where,
            "usage_metadata.cached_content_token_count",
            get2(metadata, "cached_content_token_count", "cachedContentTokenCount"),
        ),
        reasoning_output_tokens=thoughts,
        units=frozen_units(units),
    )


def _plain_usage_metadata(metadata: Any) -> Usage | None:
    """The usage metadata of the google-genai SDK's response with plain counts, its counts
    read in a few attribute reads. None for anything else (a dict, a count to reject...),
    which :func:`usage_metadata` reads field by field and whose errors it names.

    This runs on every tracked call: the declared fields of a pydantic model are plain
    instance attributes, while :func:`usage_metadata` costs a dozen generic reads and checks.
    """
    try:
        prompt = metadata.prompt_token_count
        tool_prompt = metadata.tool_use_prompt_token_count
        candidates = metadata.candidates_token_count
        thoughts = metadata.thoughts_token_count
        cached = metadata.cached_content_token_count
    except AttributeError:  # not an SDK model: read field by field
        return None
    # Absent counts but the prompt's are 0, as in usage_metadata.
    tool_prompt = 0 if tool_prompt is None else tool_prompt
    candidates = 0 if candidates is None else candidates
    thoughts = 0 if thoughts is None else thoughts
    cached = 0 if cached is None else cached
    if not plain_counts(prompt, tool_prompt, candidates, thoughts, cached):
        return None
    units: dict[str, int] = {"input_tool_tokens": tool_prompt} if tool_prompt else {}
    # With every count valid, usage_metadata would read (and reject) the modalities next.
    _modality_units(_WHERE, metadata, units)
    try:  # the upper bounds and the checks across counts
        return Usage.from_counts(
            prompt + tool_prompt,
            candidates + thoughts,
            cache_read_input_tokens=cached,
            reasoning_output_tokens=thoughts,
            units=frozen_units(units),
        )
    except UsageError:
        return None


def model_version(response: object) -> str | None:
    return text_of(get2(response, "model_version", "modelVersion"))


def response_id(response: object) -> str | None:
    return text_of(get2(response, "response_id", "responseId"))


def metadata_of(response: object) -> object:
    """The usage metadata of a response or stream chunk, None when it has none."""
    return get2(response, "usage_metadata", "usageMetadata")


def is_finished(chunk: object) -> bool:
    """True for the last chunk of a stream: a candidate carries a finish reason."""
    return any(
        get2(candidate, "finish_reason", "finishReason") is not None
        for candidate in as_list(get(chunk, "candidates"))
    )


def from_generate_content(response: object) -> ExtractedUsage:
    """A ``GenerateContentResponse``, or one chunk of a stream."""
    return ExtractedUsage(
        usage=usage_metadata(metadata_of(response)),
        model=model_version(response),
        provider=PROVIDER,
        operation=OPERATION,
        response_id=response_id(response),
    )


def from_generate_content_model(response: Any) -> ExtractedUsage:
    """:func:`from_generate_content` for the google-genai SDK's ``GenerateContentResponse``,
    its usual usage read by attribute (:func:`_plain_usage_metadata`), anything else as
    :func:`from_generate_content` reads it."""
    try:
        usage = _plain_usage_metadata(response.usage_metadata)
        if usage is None:
            return from_generate_content(response)
        model = response.model_version
        found_id = response.response_id
    except AttributeError:
        return from_generate_content(response)
    return ExtractedUsage(
        usage=usage,
        model=text_of(model),
        provider=PROVIDER,
        operation=OPERATION,
        response_id=text_of(found_id),
        price_context=NO_CONTEXT,  # given, not left to the field's default factory
    )


def candidate_text(response: object) -> str:
    """The text parts of the first candidate, thoughts left out (as ``response.text`` does)."""
    candidates = as_list(get(response, "candidates"))
    if not candidates:
        return ""
    parts = as_list(get(get(candidates[0], "content"), "parts"))
    return "".join(
        text
        for part in parts
        if (text := text_of(get(part, "text"))) and get(part, "thought") is not True
    )
