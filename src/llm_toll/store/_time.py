"""Times in the stores: always UTC, so that a row and its budget period agree."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC, converted as ``period_key`` does."""
    return at if at.tzinfo is timezone.utc else at.astimezone(timezone.utc)


def iso_utc(at: datetime) -> str:
    """``at`` as ISO 8601 UTC text, the form of every time in the SQLite file."""
    return as_utc(at).isoformat(timespec="microseconds")


def parse_time(value: object) -> datetime:
    """A time as a store returns it (a datetime from PostgreSQL, ISO 8601 text from SQLite),
    as an aware UTC datetime."""
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value)))
