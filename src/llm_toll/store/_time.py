"""Times in the stores: always UTC, so that a row and its budget period agree."""

from __future__ import annotations

from datetime import datetime, timezone

_seconds: dict[tuple[int, int, int, int, int, int], str] = {}
"""Whole seconds written lately, as text: a call writes the second it started in and the
second it ended in, and the calls around it mostly the same ones."""
_SECONDS_KEPT = 256


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC, converted as ``period_key`` does."""
    return at if at.tzinfo is timezone.utc else at.astimezone(timezone.utc)


def iso_utc(at: datetime) -> str:
    """``at`` as ISO 8601 UTC text, the form of every time in the SQLite file:
    ``isoformat(timespec="microseconds")``'s text, in half its time."""
    if at.tzinfo is not timezone.utc:
        at = at.astimezone(timezone.utc)
    second = (at.year, at.month, at.day, at.hour, at.minute, at.second)
    text = _seconds.get(second)
    if text is None:
        if len(_seconds) >= _SECONDS_KEPT:
            _seconds.clear()
        text = _seconds[second] = at.replace(microsecond=0, tzinfo=None).isoformat()
    return f"{text}.{at.microsecond:06d}+00:00"


def parse_time(value: object) -> datetime:
    """A time as a store returns it (a datetime from PostgreSQL, ISO 8601 text from SQLite),
    as an aware UTC datetime."""
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value)))
