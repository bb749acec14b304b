"""Records replayed from a spill journal, on every backend: each written once, with the
reservation it settles, however often the replay runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_toll._budget.journal import ReplayStopped, SpillJournal
from llm_toll._budget.records import BudgetSpec, PendingWrite
from llm_toll.store import BaseStore, StoreError
from llm_toll.store._sql import SQLStore
from tests.stores.helpers import MONDAY, all_logs, make_call

DAILY = BudgetSpec(10_000, "daily")


def journal_of(store: BaseStore, tmp_path: Path) -> SpillJournal:
    assert isinstance(store, SQLStore)
    return SpillJournal(store.location, tmp_path / "spill")


def test_a_replay_cut_short_after_its_commits_writes_nothing_twice(
    store: BaseStore, tmp_path: Path
) -> None:
    assert isinstance(store, SQLStore)
    journal = journal_of(store, tmp_path)
    journal.append([PendingWrite(make_call(100 + n), DAILY) for n in range(5)])
    before = journal.path.read_bytes()

    first = journal.replay(store)
    assert (first.written, first.already, first.left) == (5, 0, 0)
    assert not journal.has_records()
    # A process killed after its commits but before the journal was emptied: the same
    # records are found again by the next replay.
    journal.path.write_bytes(before)
    second = journal.replay(store)
    assert (second.written, second.already) == (0, 5)

    assert sorted(row["cost_nanos"] for row in all_logs(store)) == [100, 101, 102, 103, 104]
    assert store.get_spent("proj", "daily", MONDAY) == 510


def test_a_replayed_strict_call_settles_its_reservation(store: BaseStore, tmp_path: Path) -> None:
    assert isinstance(store, SQLStore)
    reservation = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=4_000, ttl_s=60
    )
    assert reservation is not None
    journal = journal_of(store, tmp_path)
    journal.append([PendingWrite(make_call(300), DAILY, reservation=reservation)])
    journal.replay(store)
    assert store.get_spent("proj", "daily", MONDAY) == 300
    assert store.get_reserved("proj", "daily", MONDAY) == 0  # released with the record


class Refusing:
    """A store that takes ``accepts`` records, then refuses as a locked database does."""

    def __init__(self, store: SQLStore, accepts: int) -> None:
        self.store = store
        self.accepts = accepts
        self.location = store.location

    def replay_spilled(self, write: PendingWrite, record_id: str) -> object:
        if self.accepts == 0:
            raise StoreError("database is locked")
        self.accepts -= 1
        return self.store.replay_spilled(write, record_id)


def test_a_store_that_refuses_mid_replay_keeps_the_rest_for_later(
    store: BaseStore, tmp_path: Path
) -> None:
    assert isinstance(store, SQLStore)
    journal = journal_of(store, tmp_path)
    journal.append([PendingWrite(make_call(100 + n), None) for n in range(4)])
    with pytest.raises(ReplayStopped) as stopped:
        journal.replay(Refusing(store, accepts=2))  # type: ignore[arg-type]
    assert (stopped.value.replayed.written, stopped.value.replayed.left) == (2, 2)
    assert journal.count() == 4  # emptied only once every record is in
    done = journal.replay(store)
    assert (done.written, done.already) == (2, 2)
    assert sorted(row["cost_nanos"] for row in all_logs(store)) == [100, 101, 102, 103]


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_others_replayed(
    store: BaseStore, tmp_path: Path
) -> None:
    assert isinstance(store, SQLStore)
    journal = journal_of(store, tmp_path)
    journal.append([PendingWrite(make_call(1), None), PendingWrite(make_call(2), None)])
    whole = journal.path.read_bytes()
    journal.append([PendingWrite(make_call(3), None)])
    # The process died in the middle of writing its third line.
    journal.path.write_bytes(journal.path.read_bytes()[: len(whole) + 40])
    replayed = journal.replay(store)
    assert (replayed.written, replayed.damaged) == (2, 1)
    assert sorted(row["cost_nanos"] for row in all_logs(store)) == [1, 2]


def test_the_journal_is_the_owners_only(store: BaseStore, tmp_path: Path) -> None:
    journal = journal_of(store, tmp_path)
    journal.append([PendingWrite(make_call(1), None)])
    assert journal.path.stat().st_mode & 0o777 == 0o600
    assert journal.path.parent.stat().st_mode & 0o777 == 0o700
