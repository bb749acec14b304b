"""Records the store refuses are kept on disk, then written exactly once: by the same
process when the store takes writes again, or by the next process that uses the store."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import _runtime, track_costs
from llm_toll._budget.journal import SPILL_DIR_ENV, SpillJournal
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import SQLiteStore
from tests.faults.harness import ledger, recorded_by_the_next_process, run, start
from tests.faults.workload import chat


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    run(path, "sync", 1, 1)  # the schema, by a process of its own
    return path


@pytest.fixture
def locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write lock on the database, for the test's duration."""
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield blocker
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


def test_a_process_that_exits_while_the_store_is_locked_leaves_its_records_on_disk(
    db: Path, locked: sqlite3.Connection, spill_dir: Path
) -> None:
    workload = start(db, "sync", 100, 10, busy_timeout=0.05)
    try:
        workload.read_until()
        stderr = workload.finish()
    finally:
        workload.stop()
    journal = SpillJournal(str(db), spill_dir)
    assert journal.count() == 10
    assert f"10 record(s) for {db} wait in the spill journal {journal.path}" in stderr
    assert "kept in the spill journal" in stderr  # the warning at the first refusal

    locked.execute("ROLLBACK")  # the store takes writes again
    assert recorded_by_the_next_process(db, 1000) == [1, *range(100, 110), 1000]
    assert not journal.has_records()


class InProcess:
    """This process's store, a decorated function writing to it, and another connection
    that can take the database's write lock."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.store = SQLiteStore(db, busy_timeout_s=0.05)
        self.blocker = sqlite3.connect(db, isolation_level=None)

        @track_costs(project="faults")
        def ask(n: int) -> dict[str, Any]:
            return chat(n)

        self.ask = ask

    def lock(self) -> None:
        self.blocker.execute("BEGIN EXCLUSIVE")

    def unlock(self) -> None:
        if self.blocker.in_transaction:
            self.blocker.execute("ROLLBACK")


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[InProcess]:
    setup = InProcess(tmp_path / "ledger.db")
    llm_toll.set_store(setup.store)
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    try:
        yield setup
    finally:
        setup.unlock()
        setup.blocker.close()
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)
        setup.store.close()


def test_records_are_written_by_the_same_process_once_the_lock_is_gone(
    in_process: InProcess,
) -> None:
    ask = in_process.ask
    ask(1)
    in_process.lock()
    with pytest.warns(AccountingWarning, match="kept in the spill journal"):
        assert [ask(n)["usage"]["prompt_tokens"] for n in (2, 3, 4)] == [2, 3, 4]
    assert _runtime.writer().pending == 3
    in_process.unlock()
    assert _runtime.writer().force_flush()
    assert _runtime.writer().pending == 0
    ask(5)
    assert ledger(in_process.db) == [1, 2, 3, 4, 5]


def test_a_journal_that_cannot_be_written_keeps_records_in_memory(
    in_process: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setenv(SPILL_DIR_ENV, str(not_a_directory / "spill"))
    in_process.ask(1)
    in_process.lock()
    with pytest.warns(AccountingWarning, match="kept in memory only"):
        in_process.ask(2)
    in_process.unlock()
    assert _runtime.writer().force_flush()
    assert ledger(in_process.db) == [1, 2]


def test_the_spill_directory_is_documented_and_defaults_under_the_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from llm_toll._budget.journal import spill_dir

    monkeypatch.delenv(SPILL_DIR_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert spill_dir() == tmp_path / "llm_toll" / "spill"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert spill_dir() == Path(os.path.expanduser("~/.local/state/llm_toll/spill"))
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert SPILL_DIR_ENV in readme and "~/.local/state/llm_toll/spill" in readme
