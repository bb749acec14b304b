"""Workload processes (``workload.py``) started, watched and killed by the fault tests, and
the ledger they leave."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
# A guard against a hung child only: no test asserts on time.
HANG_GUARD_S = 300


@dataclass
class Workload:
    process: subprocess.Popen[str]
    stderr: IO[str]
    returned: list[int] = field(default_factory=list)
    done: bool = False

    def read_until(self, count: int | None = None) -> None:
        """Read ``returned`` lines until ``count`` calls have returned (None: all, "done")."""
        assert self.process.stdout is not None
        while count is None or len(self.returned) < count:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"the workload ended early:\n{self.errors()}")
            if line.startswith("returned "):
                self.returned.append(int(line.split()[1]))
            elif line.strip() == "done":
                self.done = True
                return

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Kill the process; calls that printed ``returned`` before it died count too."""
        os.kill(self.process.pid, signum)
        self.process.wait(HANG_GUARD_S)
        assert self.process.stdout is not None
        for line in self.process.stdout.read().splitlines():
            if line.startswith("returned "):
                self.returned.append(int(line.split()[1]))

    def finish(self) -> str:
        """Let a process that printed ``done`` exit normally; its standard error."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(HANG_GUARD_S) == 0, self.errors()
        return self.errors()

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> None:
        """Cleanup: whatever state the test left the process in."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(HANG_GUARD_S)
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                stream.close()


def start(
    db: Path, mode: str, first: int, count: int, *, busy_timeout: float | None = None
) -> Workload:
    argv = [sys.executable, "-m", "tests.faults.workload", mode, str(first), str(count)]
    if busy_timeout is not None:
        argv += ["--busy-timeout", str(busy_timeout)]
    env = dict(os.environ, LLM_TOLL_STORE_URL=str(db), PYTHONPATH=str(ROOT))
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        text=True,
        cwd=ROOT,
    )
    return Workload(process, stderr)


def run(db: Path, mode: str, first: int, count: int, **options: float) -> Workload:
    """A workload run to its end and exited normally."""
    workload = start(db, mode, first, count, **options)
    try:
        workload.read_until()
        workload.finish()
    finally:
        workload.stop()
    return workload


def ledger(db: Path) -> list[int]:
    """The calls the ledger holds (their input tokens), sorted, duplicates kept."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT input_tokens FROM usage_logs WHERE project = 'faults'"
        ).fetchall()
    finally:
        conn.close()
    return sorted(n for (n,) in rows)


def recorded_by_the_next_process(db: Path, marker: int) -> list[int]:
    """The ledger after one more process made one call (call ``marker``): its first write
    replays what earlier processes left in the journal."""
    run(db, "sync", marker, 1)
    return ledger(db)
