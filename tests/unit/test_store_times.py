"""The text of times in the SQLite file: what ``datetime.isoformat`` writes, in UTC."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from llm_toll.store._time import iso_utc, parse_time


def test_iso_utc_writes_isoformats_text_across_seconds_and_zones() -> None:
    rng = random.Random(7)
    base = datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc)  # a year ends
    india = timezone(timedelta(hours=5, minutes=30))
    for _ in range(20_000):
        # Seconds far apart (more than the text of seconds kept) and close together.
        spread = 600_000_000 if rng.random() < 0.5 else 3_000_000
        at = base + timedelta(microseconds=rng.randrange(-spread, spread))
        if rng.random() < 0.2:
            at = at.astimezone(india)
        text = iso_utc(at)
        assert text == at.astimezone(timezone.utc).isoformat(timespec="microseconds")
        assert parse_time(text) == at


def test_iso_utc_keeps_whole_seconds_and_microseconds_apart() -> None:
    whole = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert iso_utc(whole) == "2026-01-02T03:04:05.000000+00:00"
    assert iso_utc(whole + timedelta(microseconds=999_999)) == "2026-01-02T03:04:05.999999+00:00"
    assert iso_utc(whole + timedelta(seconds=1)) == "2026-01-02T03:04:06.000000+00:00"


def test_a_runs_times_in_ns_are_its_datetimes_to_the_microsecond() -> None:
    """A run's end hands over ``time.time_ns()`` figures; its row has their datetimes."""
    from llm_toll._budget.records import ns_of, utc_of_ns

    rng = random.Random(11)
    for _ in range(20_000):
        ns = rng.randrange(0, 4_102_444_800 * 10**9)  # to 2100
        at = utc_of_ns(ns)
        assert at == datetime.fromtimestamp(ns // 1000 / 1e6, timezone.utc)
        assert ns_of(at) == ns // 1000 * 1000
