"""Reading what a user's ``extract_usage(response)`` callback returned."""

from __future__ import annotations

from collections.abc import Mapping

from llm_toll.usage.base import ExtractedUsage, Usage, UsageError

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
)


def coerce_custom_usage(value: object) -> ExtractedUsage | None:
    """Accept the shapes a callback may return; raise UsageError for anything else.

    - ``None``: the callback found nothing (auto-detection is tried next);
    - ``(model, input_tokens, output_tokens)``: llm-toll 0.13's contract;
    - a ``Usage`` or ``ExtractedUsage``;
    - a mapping with ``input_tokens`` and ``output_tokens`` (optionally ``model`` and the
      cache/reasoning fields of ``Usage``).
    """
    if value is None or isinstance(value, ExtractedUsage):
        return value
    if isinstance(value, Usage):  # built by hand, so its counts were never checked
        return ExtractedUsage(value.checked_copy())
    if isinstance(value, tuple) and len(value) == 3:
        model, input_tokens, output_tokens = value
        return ExtractedUsage(Usage.checked(input_tokens, output_tokens), model=_model(model))
    if isinstance(value, Mapping):
        unknown = set(value) - {*_USAGE_FIELDS, "model"}
        if unknown:
            raise UsageError(f"extract_usage returned unknown keys {sorted(unknown)}")
        usage = Usage.checked(**{key: value.get(key) for key in _USAGE_FIELDS})
        return ExtractedUsage(usage, model=_model(value.get("model")))
    raise UsageError(
        f"extract_usage returned a {type(value).__name__}; expected None, "
        "(model, input_tokens, output_tokens), a dict or a Usage"
    )


def _model(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UsageError(f"extract_usage returned a model that is not a string: {value!r}")
    return value
