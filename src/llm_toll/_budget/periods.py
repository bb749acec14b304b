"""Budget periods and thresholds: pure logic, no I/O."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Final, Literal

Reset = Literal["daily", "weekly", "monthly"]
"""How often a budget starts again, on the UTC calendar; ``None`` where a ``Reset | None``
is taken means never (the budget covers the whole history)."""

THRESHOLDS: Final = (50, 80, 100)
LIFETIME: Final = "all"
"""The period key of totals that never reset, as stored (see :func:`shown_period`)."""
LIFETIME_SHOWN: Final = "lifetime"
"""What the period that never resets is called wherever it is shown: spans, metrics, the
command line; the same word as the ``reset`` cadence label of spans and metrics."""


def validate_reset(reset: object) -> Reset | None:
    if reset is None or reset == "daily" or reset == "weekly" or reset == "monthly":
        return reset
    raise ValueError(f"reset must be one of None, 'daily', 'weekly', 'monthly'; got {reset!r}")


def period_key(reset: Reset | None, at: datetime) -> str:
    """The UTC calendar period that ``at`` falls in, as a sortable key.

    Weeks are ISO weeks (Monday to Sunday), keyed by their Monday so keys sort by time.
    Runs on every call, twice: formatted by hand (``strftime`` costs several times more).
    """
    if reset is None:
        return LIFETIME
    if at.tzinfo is not timezone.utc:
        at = at.astimezone(timezone.utc)
    if reset == "daily":
        return f"{at.year:04d}-{at.month:02d}-{at.day:02d}"
    if reset == "weekly":
        monday = at.date() - timedelta(days=at.weekday())
        return f"W{monday.isoformat()}"
    if reset == "monthly":
        return f"{at.year:04d}-{at.month:02d}"
    raise ValueError(f"unknown reset period {reset!r}")


def period_end(reset: Reset | None, at: datetime) -> datetime | None:
    """When the UTC calendar period of ``reset`` that ``at`` falls in ends (the next one
    starts); None for a budget that never resets."""
    if reset is None:
        return None
    at = at.astimezone(timezone.utc)
    day = datetime(at.year, at.month, at.day, tzinfo=timezone.utc)
    if reset == "daily":
        return day + timedelta(days=1)
    if reset == "weekly":
        return day + timedelta(days=7 - at.weekday())
    if reset == "monthly":
        return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=timezone.utc)
    raise ValueError(f"unknown reset period {reset!r}")


def shown_period(key: str) -> str:
    """A stored period key as it is shown: ``lifetime`` for ``all``, an ISO week
    (``2026-W49``) for a week's ``W2026-11-30`` (its Monday); days and months as they are.

    The stored keys stay as they are: llm-toll 0.13's shared files and processes of earlier
    releases write them, and a renamed key would split a period's running total in two.
    """
    if key == LIFETIME:
        return LIFETIME_SHOWN
    if key.startswith("W"):
        try:
            year, week, _ = date.fromisoformat(key[1:]).isocalendar()
        except ValueError:
            return key
        return f"{year:04d}-W{week:02d}"
    return key


def stored_period(shown: str) -> str:
    """The stored key of a period as :func:`shown_period` shows it (or as stored)."""
    if shown == LIFETIME_SHOWN:
        return LIFETIME
    year, sep, week = shown.partition("-W")
    if sep and year.isdigit() and week.isdigit():
        try:
            monday = date.fromisocalendar(int(year), int(week), 1)
        except ValueError:
            raise ValueError(f"no ISO week {shown!r}") from None
        return f"W{monday.isoformat()}"
    return shown


def thresholds_crossed(spent: int, limit: int, already: int) -> tuple[int, ...]:
    """Thresholds (in %) that ``spent`` has reached and that are not yet in ``already``.

    ``already`` is a bit mask over THRESHOLDS of those fired earlier in the period.
    """
    if limit <= 0 or spent * 100 < THRESHOLDS[0] * limit:
        return ()  # the usual write, under the lowest threshold: one comparison
    return tuple(
        pct
        for bit, pct in enumerate(THRESHOLDS)
        if not already & (1 << bit) and spent * 100 >= pct * limit
    )


def threshold_mask(thresholds: tuple[int, ...]) -> int:
    return sum(1 << THRESHOLDS.index(pct) for pct in thresholds)
