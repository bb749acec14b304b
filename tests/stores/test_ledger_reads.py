"""Every backend: spend grouped over a date range, the calls, the projects."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from llm_toll.store import BaseStore, _reports
from llm_toll.usage._base import Usage
from tests.stores.helpers import make_call

UTC = timezone.utc
SPEND_FIGURES = [
    *("calls", "input_tokens", "output_tokens", "cache_read_input_tokens"),
    *("cache_creation_input_tokens", "reasoning_output_tokens", "cost_nanos"),
    *("unpriced_calls", "estimated_calls", "first_at", "last_at"),
]


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def test_spend_by_day_week_and_month_reads_utc_and_iso_weeks(store: BaseStore) -> None:
    # Days where the ISO year is not the calendar year, and a time given at +02:00 that
    # is the day before in UTC (all past: the store takes no time after now).
    days = ["2024-12-30", "2026-01-01", "2021-01-01", "2021-01-04", "2026-11-23"]
    for cost, day in enumerate(days, start=1):
        store.record_call(make_call(cost, at=at(day)))
    local = datetime(2026, 11, 24, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    store.record_call(make_call(100, at=local))

    by_week = store.spend(["week"])
    expected: dict[str, int] = {}
    for cost, day in enumerate(days, start=1):
        week = iso_week(date.fromisoformat(day))
        expected[week] = expected.get(week, 0) + cost
    expected["2026-W48"] += 100
    assert [(row["week"], row["cost_nanos"]) for row in by_week] == sorted(expected.items())
    assert {"2020-W53", "2021-W01", "2025-W01", "2026-W01"} <= set(expected)

    by_day = {row["day"]: row["cost_nanos"] for row in store.spend("day")}
    assert by_day["2026-11-23"] == 5 + 100
    assert list(by_day) == sorted(by_day)
    by_month = {row["month"]: row["calls"] for row in store.spend(["month"])}
    assert by_month == {"2021-01": 2, "2024-12": 1, "2026-01": 1, "2026-11": 2}


def test_spend_sums_every_figure_exactly_per_group(store: BaseStore) -> None:
    usage = Usage(
        input_tokens=100,
        output_tokens=40,
        cache_read_input_tokens=30,
        cache_creation_input_tokens=20,
        reasoning_output_tokens=10,
    )
    first, last = at("2026-11-23", 9), at("2026-11-23", 17)
    store.record_call(make_call(160, model="embed", usage=usage, at=first, provider="openai"))
    store.record_call(make_call(160, model="embed", usage=usage, at=last, provider="openai"))
    store.record_call(make_call(0, model="embed", at=first, price_known=False, provider="openai"))
    store.record_call(make_call(7, model="chat", at=first, estimated=True, budget_key="team"))

    rows = store.spend(["model", "key", "provider"])
    assert [list(row) for row in rows] == [["model", "key", "provider", *SPEND_FIGURES]] * 2
    chat, embed = rows
    assert (chat["model"], chat["key"], chat["provider"]) == ("chat", "team", None)
    assert (chat["calls"], chat["estimated_calls"], chat["unpriced_calls"]) == (1, 1, 0)
    assert embed == {
        "model": "embed",
        "key": None,
        "provider": "openai",
        "calls": 3,
        "input_tokens": 210,
        "output_tokens": 85,
        "cache_read_input_tokens": 60,
        "cache_creation_input_tokens": 40,
        "reasoning_output_tokens": 20,
        "cost_nanos": 320,
        "unpriced_calls": 1,
        "estimated_calls": 0,
        "first_at": first,
        "last_at": last,
    }
    assert all(type(row[name]) is int for row in rows for name in SPEND_FIGURES[:-2])


def test_spend_without_dimensions_is_one_total_and_none_without_calls(
    store: BaseStore,
) -> None:
    assert store.spend([]) == []
    store.record_call(make_call(3, project="a"))
    store.record_call(make_call(4, project="b"))
    [total] = store.spend(())
    assert (total["calls"], total["cost_nanos"]) == (2, 7)
    assert [row["project"] for row in store.spend(["project"])] == ["a", "b"]


def test_spend_reads_since_inclusive_until_exclusive_and_filters(store: BaseStore) -> None:
    for hour in (10, 11, 12):
        store.record_call(make_call(hour, at=at("2026-11-23", hour)))
    store.record_call(make_call(1_000, project="other", at=at("2026-11-23", 11)))
    store.record_call(make_call(2_000, model="mini", at=at("2026-11-23", 11)))
    store.record_call(make_call(3_000, budget_key="k", at=at("2026-11-23", 11)))
    store.record_call(make_call(4_000, provider="openai", at=at("2026-11-23", 11)))

    def cost(**filters: object) -> int:
        return sum(row["cost_nanos"] for row in store.spend([], **filters))  # type: ignore[arg-type]

    since, until = at("2026-11-23", 11), at("2026-11-23", 12)
    assert cost(since=since, until=until, project="proj", model="gpt-4o") == 11 + 3_000 + 4_000
    assert cost(since=at("2026-11-23", 12)) == 12
    assert cost(until=since) == 10
    assert cost(since=since.replace(tzinfo=None), until=until.replace(tzinfo=None)) == (
        11 + 1_000 + 2_000 + 3_000 + 4_000
    )
    assert cost(project="other") == 1_000
    assert cost(key="k") == 3_000
    assert cost(provider="openai") == 4_000


def test_spend_refuses_an_unknown_or_repeated_dimension(store: BaseStore) -> None:
    with pytest.raises(ValueError, match=r"cannot group spend by .year.*day, week, month"):
        store.spend(["day", "year"])
    with pytest.raises(ValueError, match="repeated"):
        store.spend(["model", "model"])


def test_calls_are_newest_first_with_filters_after_id_and_limit(store: BaseStore) -> None:
    for hour in range(8, 14):
        store.record_call(make_call(hour, at=at("2026-11-23", hour), budget_key="k"))
    store.record_call(make_call(99, project="other", at=at("2026-11-23", 9)))

    rows = store.calls(project="proj", since=at("2026-11-23", 9), until=at("2026-11-23", 13))
    assert [row["cost_nanos"] for row in rows] == [12, 11, 10, 9]
    newest = rows[0]
    assert newest["created_at"] == at("2026-11-23", 12)
    assert (newest["budget_key"], type(newest["cost_nanos"])) == ("k", int)
    assert store.calls(limit=2)[1]["cost_nanos"] == 12
    assert len(store.calls(limit=-1)) == 7
    last_seen = store.calls(limit=1, project="proj")[0]["id"]
    store.record_call(make_call(50, at=at("2026-11-23", 7)))
    assert [row["cost_nanos"] for row in store.calls(after_id=last_seen)] == [99, 50]
    assert [row["cost_nanos"] for row in store.calls(key="k", model="gpt-4o", limit=1)] == [13]


def test_iter_calls_reads_every_row_oldest_first_in_batches(
    store: BaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_reports, "BATCH_ROWS", 3)
    for cost in range(1, 11):
        store.record_call(make_call(cost, at=at("2026-11-23", cost)))
    store.record_call(make_call(500, project="other", at=at("2026-11-23", 5)))

    assert [row["cost_nanos"] for row in store.iter_calls()] == [*range(1, 11), 500]
    rows = list(store.iter_calls(project="proj", since=at("2026-11-23", 4)))
    assert [row["cost_nanos"] for row in rows] == list(range(4, 11))
    assert rows[0]["created_at"] == at("2026-11-23", 4)
    assert list(store.iter_calls(until=at("2026-11-23", 1))) == []


def test_projects_are_those_with_calls_sorted(store: BaseStore) -> None:
    assert store.projects() == []
    for project in ("b", "a", "b"):
        store.record_call(make_call(1, project=project))
    assert store.projects() == ["a", "b"]
