"""SQLite: the ledger keeps one index, on (project, created_at), and the reads across
projects it serves return what reading every row would."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from llm_toll.store import SQLiteStore
from llm_toll.store._sqlite_schema import LATEST_VERSION, MIGRATIONS
from llm_toll.store._time import iso_utc, utc_now
from tests.stores.helpers import make_call

UTC = timezone.utc
PROJECTS = ("alpha", "beta", "gamma", "delta")
BY_HAND = "written-by-hand"  # a project with ledger rows only: no running totals


def ledger_indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute("PRAGMA index_list(usage_logs)")}


def ledger_writes(path: Path) -> list[str]:
    """The tables and indexes a ledger insert opens for writing, from its program."""
    with sqlite3.connect(path) as conn:
        names = {
            page: name for name, page in conn.execute("SELECT name, rootpage FROM sqlite_master")
        }
        program = conn.execute(
            "EXPLAIN INSERT INTO usage_logs (project, model, operation, input_tokens, "
            "output_tokens, cost_nanos, created_at) VALUES ('p', 'm', 'chat', 1, 1, 1, 'now')"
        ).fetchall()
    return sorted(names[row[3]] for row in program if row[1] == "OpenWrite")


def test_a_new_ledger_insert_writes_the_table_and_one_index(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SQLiteStore(path) as store:
        store.record_call(make_call(1))
    assert ledger_indexes(path) == {"usage_logs_project_created_at"}
    assert ledger_writes(path) == ["usage_logs", "usage_logs_project_created_at"]


def test_a_version_7_file_loses_the_index_on_created_at_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for _, statements in (step for step in MIGRATIONS if step[0] <= 7):
            for statement in statements:
                conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (7)")
    finally:
        conn.close()
    assert ledger_indexes(path) == {"usage_logs_project_created_at", "usage_logs_created_at"}
    with SQLiteStore(path) as store:
        store.record_call(make_call(5, project="a"))
    assert ledger_indexes(path) == {"usage_logs_project_created_at"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (
            LATEST_VERSION,
        )
    with SQLiteStore(path) as store:
        assert [row["cost_nanos"] for row in store.calls()] == [5]


# -- reads across projects --------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SQLiteStore]:
    """Calls of several projects over the last 10 days, many at the same second (ties are
    ordered by id), and rows inserted by hand for a project llm_toll never recorded."""
    path = tmp_path / "ledger.db"
    chance = random.Random(7)
    now = utc_now().replace(microsecond=0)
    with SQLiteStore(path) as store:
        for n in range(300):
            at = now - timedelta(seconds=chance.randrange(0, 10 * 86_400, 600))
            store.record_call(
                make_call(
                    n + 1,
                    project=chance.choice(PROJECTS),
                    model=chance.choice(("gpt-4o", "claude")),
                    budget_key=chance.choice((None, "team-a", "team-b")),
                    at=at,
                )
            )
    with sqlite3.connect(path) as conn:
        for hours in (1, 30, 100):
            conn.execute(
                "INSERT INTO usage_logs (project, model, operation, input_tokens, "
                "output_tokens, cost_nanos, created_at) VALUES (?, 'gpt-4o', 'chat', 1, 1, ?, ?)",
                (BY_HAND, 1_000 + hours, iso_utc(now - timedelta(hours=hours))),
            )
    store = SQLiteStore(path)
    try:
        yield store
    finally:
        store.close()


def every_row(store: SQLiteStore) -> list[dict[str, Any]]:
    """Every ledger row, read in id order: no index on time involved."""
    return list(store.iter_calls())


def selected(
    rows: list[dict[str, Any]],
    since: datetime | None,
    until: datetime | None,
    model: str | None = None,
    key: str | None = None,
) -> list[dict[str, Any]]:
    return [
        row
        for row in rows
        if (since is None or row["created_at"] >= since)
        and (until is None or row["created_at"] < until)
        and (model is None or row["model"] == model)
        and (key is None or row["budget_key"] == key)
    ]


def newest_ids(rows: list[dict[str, Any]], limit: int) -> list[int]:
    ordered = sorted(rows, key=lambda row: (row["created_at"], row["id"]), reverse=True)
    return [row["id"] for row in (ordered if limit < 0 else ordered[:limit])]


def ago(now: datetime, delta: timedelta | None) -> datetime | None:
    return None if delta is None else now - delta


RANGES = [
    (None, None),
    (timedelta(days=3), None),
    (timedelta(days=8), timedelta(days=2)),
    (None, timedelta(days=5)),
]


@pytest.mark.parametrize(("since_ago", "until_ago"), RANGES)
def test_calls_across_projects_are_the_newest_rows_of_all(
    ledger: SQLiteStore, since_ago: timedelta | None, until_ago: timedelta | None
) -> None:
    now = utc_now()
    since, until = ago(now, since_ago), ago(now, until_ago)
    rows = every_row(ledger)
    for model, key in ((None, None), ("claude", None), (None, "team-b"), ("gpt-4o", "team-a")):
        chosen = selected(rows, since, until, model, key)
        for limit in (1, 7, 50, 1_000, -1):
            got = ledger.calls(since=since, until=until, model=model, key=key, limit=limit)
            assert [row["id"] for row in got] == newest_ids(chosen, limit), (model, key, limit)
    by_hand = ledger.calls(since=now - timedelta(hours=2), limit=-1)
    assert BY_HAND in {row["project"] for row in by_hand}
    logs = ledger.get_usage_logs_filtered(limit=20)
    assert [row["id"] for row in logs] == newest_ids(rows, 20)
    assert logs == [
        {**row, "created_at": iso_utc(row["created_at"])}
        for row in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)[:20]
    ]


@pytest.mark.parametrize(("since_ago", "until_ago"), RANGES)
def test_spend_across_projects_sums_every_row_of_the_range(
    ledger: SQLiteStore, since_ago: timedelta | None, until_ago: timedelta | None
) -> None:
    now = utc_now()
    since, until = ago(now, since_ago), ago(now, until_ago)
    chosen = selected(every_row(ledger), since, until)
    expected_cost: Counter[tuple[str, str]] = Counter()
    expected_calls: Counter[tuple[str, str]] = Counter()
    for row in chosen:
        group = (row["created_at"].strftime("%Y-%m-%d"), row["project"])
        expected_cost[group] += row["cost_nanos"]
        expected_calls[group] += 1
    spend = ledger.spend(["day", "project"], since=since, until=until)
    assert {(r["day"], r["project"]): r["cost_nanos"] for r in spend} == dict(expected_cost)
    assert {(r["day"], r["project"]): r["calls"] for r in spend} == dict(expected_calls)
    (total,) = ledger.spend((), since=since, until=until) or [{"calls": 0}]
    assert total["calls"] == len(chosen)


def test_daily_trends_and_projects_include_every_project(ledger: SQLiteStore) -> None:
    rows = every_row(ledger)

    def expected(cutoff: datetime) -> dict[str, int]:
        days: Counter[str] = Counter()
        for row in selected(rows, cutoff, None):
            days[row["created_at"].strftime("%Y-%m-%d")] += row["cost_nanos"]
        return dict(sorted(days.items()))

    before = expected(utc_now() - timedelta(days=4))
    trends = ledger.get_daily_cost_trends(days=4)
    after = expected(utc_now() - timedelta(days=4))
    # The read takes its own cutoff, between the two.
    assert {r["date"]: r["daily_cost_nanos"] for r in trends} in (before, after)
    assert [r["date"] for r in trends] == sorted(before)
    assert ledger.projects() == sorted({*PROJECTS, BY_HAND})


def test_a_failing_read_across_projects_warns_and_returns_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SQLiteStore(path) as store:
        store.record_call(make_call(1))
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE usage_logs RENAME COLUMN model TO model_name")
    with SQLiteStore(path) as store, pytest.warns(Warning, match="read calls"):
        assert store.calls(limit=5) == []
