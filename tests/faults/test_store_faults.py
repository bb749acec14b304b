"""The fault matrix of the store: whatever happens to the process or to its database,
no call that returned is missing from the ledger once the store takes writes again."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import ledger, recorded_by_the_next_process, run, start

MARKER = 1_000_000  # the call of the process that comes next


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_process_killed_mid_workload_loses_no_call_that_returned(
    tmp_path: Path, mode: str, signum: signal.Signals
) -> None:
    db = tmp_path / "ledger.db"
    workload = start(db, mode, 1, 5_000)
    try:
        workload.read_until(60)
        workload.kill(signum)  # while calls are still being made
    finally:
        workload.stop()
    assert not workload.done
    recorded = ledger(db)
    assert set(workload.returned) <= set(recorded)
    assert len(recorded) == len(set(recorded))  # and none twice


def test_a_gather_that_returned_under_another_process_lock_then_killed_loses_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.db"
    run(db, "sync", 1, 1)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    workload = start(db, "async", 100, 100, busy_timeout=0.05)
    try:
        workload.read_until()  # all 100 returned while the lock was held...
        workload.kill(signal.SIGKILL)  # ...and the process dies at once
    finally:
        workload.stop()
        blocker.execute("ROLLBACK")
        blocker.close()
    assert sorted(workload.returned) == list(range(100, 200))
    assert recorded_by_the_next_process(db, MARKER) == [1, *range(100, 200), MARKER]


def test_a_corrupt_database_keeps_every_record_until_it_is_restored(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    run(db, "sync", 1, 3)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db) as source, sqlite3.connect(backup) as target:
        source.backup(target)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 200)
    run(db, "sync", 100, 5)  # every call returns; the store refuses every record
    shutil.copyfile(backup, db)  # the operator restores the database
    assert recorded_by_the_next_process(db, MARKER) == [1, 2, 3, *range(100, 105), MARKER]


# -- faults of the file system (a tmpfs of this test's own: root) ---------------------------


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "mnt"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.root
def test_a_read_only_file_system_keeps_every_record_until_it_is_writable(mount: Path) -> None:
    db = mount / "ledger.db"
    run(db, "sync", 1, 3)
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    run(db, "sync", 100, 5)
    subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
    assert recorded_by_the_next_process(db, MARKER) == [1, 2, 3, *range(100, 105), MARKER]


@pytest.mark.root
def test_a_full_disk_keeps_every_record_until_there_is_room(mount: Path) -> None:
    db = mount / "ledger.db"
    run(db, "sync", 1, 3)
    filler = mount / "filler"
    with open(filler, "wb") as out:  # take every free byte of the file system
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    run(db, "sync", 100, 300, busy_timeout=0.05)
    filler.unlink()
    recorded = recorded_by_the_next_process(db, MARKER)
    assert recorded == [1, 2, 3, *range(100, 400), MARKER]
