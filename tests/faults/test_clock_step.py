"""The wall clock stepped back and forward under processes sharing a rate window: no call that
returned is missing from the ledger or its running total, and no one is asked to wait more
than the window (a window of rows stamped an hour ahead used to ask for 3,660 s)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llm_toll.rate_limiter import WINDOW_SECONDS
from llm_toll.store import SQLiteStore
from llm_toll.store._time import utc_now
from tests.faults.clock_workload import RPM
from tests.faults.harness import HANG_GUARD_S, ROOT, ledger

HOUR = 3600.0


class Host:
    """A clock_workload process: its calls, and the steps of its wall clock."""

    def __init__(self, db: Path, mode: str) -> None:
        # A file, not a pipe: a pipe nobody reads while the test talks to the process
        # could fill up and block it.
        self.errors = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.clock_workload", mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            env=dict(os.environ, LLM_TOLL_STORE_URL=str(db), PYTHONPATH=str(ROOT)),
            text=True,
            cwd=ROOT,
        )
        self.returned: list[int] = []
        self.waits: list[float] = []

    def ask(self, command: str) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self.process.wait(HANG_GUARD_S)
            raise AssertionError(f"the workload ended early:\n{self.stderr()}")
        return answer.split()

    def call(self, n: int) -> bool:
        """Whether call ``n`` returned; a refusal's ``retry_after`` goes to ``waits``."""
        answer = self.ask(f"call {n}")
        if answer[0] == "returned":
            self.returned.append(int(answer[1]))
            return True
        self.waits.append(float(answer[2]))
        return False

    def step(self, seconds: float) -> None:
        assert self.ask(f"step {seconds}") == ["stepped"]

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read()


@contextmanager
def host(db: Path, mode: str) -> Iterator[Host]:
    """A Host that exits normally at the end of the block, or is killed if the test failed."""
    started = Host(db, mode)
    try:
        yield started
        assert started.process.stdin is not None
        started.process.stdin.close()
        assert started.process.wait(HANG_GUARD_S) == 0, started.stderr()
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait(HANG_GUARD_S)
        for stream in (started.process.stdin, started.process.stdout, started.errors):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_clock_step_loses_no_call_and_asks_no_one_to_wait_beyond_the_window(
    tmp_path: Path, mode: str
) -> None:
    db = tmp_path / "ledger.db"
    with host(db, mode) as stepped:
        assert all(stepped.call(n) for n in range(1, RPM + 1))  # the window is full
        stepped.step(-HOUR)  # an NTP correction steps the wall clock back an hour
        assert not stepped.call(100)  # the window's rows, now in the future, count as now
        stepped.step(WINDOW_SECONDS)  # the caller waits as long as it was told...
        assert stepped.call(101)  # ...and is let through, not refused for another hour
        stepped.step(2 * HOUR)  # then an hour ahead of the true time: the window empties
        assert all(stepped.call(n) for n in range(200, 200 + RPM))  # one window's worth more
        assert not stepped.call(300)
    # A host with the true clock shares the window of the one that ran an hour ahead.
    with host(db, mode) as true_clock:
        assert not true_clock.call(400)
        true_clock.step(WINDOW_SECONDS)
        assert true_clock.call(401)

    waits = stepped.waits + true_clock.waits
    assert len(waits) == 3
    assert all(0 < wait <= WINDOW_SECONDS for wait in waits), waits
    returned = stepped.returned + true_clock.returned
    assert ledger(db) == sorted(returned)  # every call that returned, once; no refused one
    with SQLiteStore(db) as store:  # and the running total the budget is checked against
        rows = store.get_usage_logs("faults", limit=-1)
        assert store.get_spent("faults", None, utc_now()) == sum(r["cost_nanos"] for r in rows)
