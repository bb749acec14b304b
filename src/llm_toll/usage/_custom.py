"""Reading what a user's ``extract_usage(response)`` callback returned."""

from __future__ import annotations

from collections.abc import Mapping

from llm_toll.usage._base import ExtractedUsage, Usage, UsageError

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

    Whatever the shape, every count and name in it is checked as a provider's are: a
    ``Usage`` or ``ExtractedUsage`` can be built by hand with anything inside.
    """
    if value is None:
        return None
    if isinstance(value, ExtractedUsage):
        return _checked_extracted(value)
    if isinstance(value, Usage):
        return ExtractedUsage(_checked_usage(value))
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


def _checked_usage(value: object) -> Usage:
    if not isinstance(value, Usage):
        raise UsageError(f"extract_usage returned usage that is a {type(value).__name__}")
    return value.checked_copy()


def _checked_extracted(value: ExtractedUsage) -> ExtractedUsage:
    """``value`` with its usage checked and its names strings (or None)."""
    if not isinstance(value.estimated, bool):
        kind = type(value.estimated).__name__
        raise UsageError(f"extract_usage returned an estimated flag that is a {kind}, not a bool")
    return ExtractedUsage(
        _checked_usage(value.usage),
        model=_model(value.model),
        provider=_name("provider", value.provider),
        operation=_name("operation", value.operation),
        response_id=_name("response_id", value.response_id),
        estimated=value.estimated,
    )


def _model(value: object) -> str | None:
    return _name("model", value)


def _name(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        kind = type(value).__name__
        raise UsageError(f"extract_usage returned a {field} that is not a string but a {kind}")
    return value or None
