"""Reading usage fields the same way from SDK objects and from plain JSON dicts.

Every SDK response type is a pydantic model whose declared fields live in the instance
``__dict__``, so ``getattr`` on a declared field is a plain attribute read. Reading a field
that is *not* declared goes through pydantic's ``__getattr__`` and costs ~1.5 µs, so the
extractors only ever ask for fields the SDK type declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from llm_toll.usage._base import NO_UNITS, Usage, UsageError, _count

# Values that can never be a usage object (a JSON scalar or array where an object belongs).
_NOT_AN_OBJECT = (str, bytes, int, float, list, tuple)


def get(obj: object, name: str) -> object:
    """``obj[name]`` for a dict, ``obj.name`` for anything else; None when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def get2(obj: object, name: str, camel: str) -> object:
    """Like :func:`get`, also accepting the camelCase key of a JSON dict (Gemini's wire form)."""
    if isinstance(obj, dict):
        value = obj.get(name)
        return obj.get(camel) if value is None else value
    return getattr(obj, name, None)


def extra(obj: object, name: str) -> object:
    """A field the SDK type does *not* declare but the provider may send: ``obj[name]`` for
    a dict, else the value pydantic kept among the object's extra fields (a dict read, not
    pydantic's ``__getattr__``); None when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    fields = getattr(obj, "__pydantic_extra__", None)
    return fields.get(name) if isinstance(fields, dict) else None


def text_of(value: object) -> str | None:
    """``value`` if it is a str, else None."""
    return value if isinstance(value, str) else None


def as_list(value: object) -> list[object]:
    """``value`` if it is a list (JSON array), else an empty list."""
    return value if isinstance(value, list) else []


def usage_object(where: str, usage: object) -> object:
    """``usage`` itself, or a UsageError naming ``where`` if it is missing or not an object."""
    if usage is None:
        raise UsageError(f"{where}: usage is missing")
    if isinstance(usage, _NOT_AN_OBJECT):
        raise UsageError(f"{where}: usage is not an object: {usage!r}")
    return usage


def count(
    where: str,
    label: str,
    value: object,
    *,
    required: bool = False,
) -> int:
    """A validated token count; the error names the provider context and the field."""
    try:
        return _count(label, value, required=required)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def plain_counts(*values: object) -> bool:
    """True when every value is a plain int >= 0: a count the hot paths may take as it is.

    Anything else (None, a bool, an int subclass, a float, a negative number...) is for
    :func:`count` to convert or reject with an error naming the field; the caller reads the
    whole usage field by field then. Upper bounds are left to ``Usage.from_counts``.
    """
    for value in values:  # noqa: SIM110 - all() over a generator costs twice this
        if type(value) is not int or value < 0:
            return False
    return True


def is_zero(value: object) -> bool:
    """True when ``value`` is a unit :func:`add_unit` would add nothing for, without error:
    None or a plain 0 (anything else is for :func:`add_unit` to check and add)."""
    return value is None or (type(value) is int and value == 0)


def add_unit(units: dict[str, int], where: str, label: str, key: str, *, value: object) -> None:
    """Add the checked count ``value`` (named ``label`` in errors) to ``units[key]``, unless 0."""
    number = count(where, label, value)
    if number:
        units[key] = units.get(key, 0) + number


def frozen_units(units: dict[str, int]) -> Mapping[str, int]:
    """``units`` as the read-only mapping a Usage holds."""
    return MappingProxyType(units) if units else NO_UNITS


def checked_usage(
    where: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    reasoning_output_tokens: int = 0,
    units: Mapping[str, int] = NO_UNITS,
) -> Usage:
    """``Usage.from_counts`` (cross-field checks, e.g. cached <= input; the counts were
    checked one by one by :func:`count`) naming ``where`` on error."""
    try:
        return Usage.from_counts(
            input_tokens,
            output_tokens,
            cache_read_input_tokens=cache_read_input_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
            reasoning_output_tokens=reasoning_output_tokens,
            units=units,
        )
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
