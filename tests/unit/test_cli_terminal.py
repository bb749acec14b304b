"""The installed ``llm-toll`` console script as a shell runs it: into a pipe closed early
(``| head``), and on a terminal (a pseudo-terminal), where its tables are coloured."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llm_toll._budget.records import CallRecord
from llm_toll.store import SQLiteStore
from llm_toll.usage._base import Usage

PIPE_BUFFER = 65_536  # Linux's default: more output than this must block on a full pipe
CALLS = 1_000


@pytest.fixture(scope="module")
def console_script() -> str:
    path = shutil.which("llm-toll", path=str(Path(sys.executable).parent))
    assert path is not None, "the llm-toll console script is not installed beside python"
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("terminal") / "usage.db"
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    with SQLiteStore(path) as store:
        for n in range(CALLS):
            call = CallRecord(
                project="a-project-with-a-rather-long-name",
                model="text-embedding-3-small",
                usage=Usage(10, 0),
                cost_nanos=160,
                started_at=start + timedelta(minutes=n),
            )
            store.record_call(call)
    return path


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.pop("CLICOLOR_FORCE", None)
    env.update(extra)
    return env


def test_a_pipe_closed_early_ends_quietly(console_script: str, db: Path) -> None:
    process = subprocess.Popen(
        [console_script, "--db", str(db), "logs", "--limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        # What `| head -2` does: read two lines, then close the pipe. The output is larger
        # than the pipe's buffer, so the command is still writing when the pipe closes.
        head = [process.stdout.readline() for _ in range(2)]
        process.stdout.close()
        err = process.stderr.read()
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert head[0].startswith(b"Time (UTC)")
    assert (code, err) == (0, b"")


def test_the_output_piped_early_is_larger_than_the_pipe(console_script: str, db: Path) -> None:
    # The premise of the test above: otherwise the whole output fits in the pipe.
    done = subprocess.run(
        [console_script, "--db", str(db), "logs", "--limit", "0"],
        capture_output=True,
        env=environment(),
        check=True,
    )
    assert len(done.stdout) > PIPE_BUFFER


def on_a_terminal(argv: list[str], **env: str) -> tuple[int, str]:
    """Run ``argv`` with its stdout on a pseudo-terminal; its exit code and what it showed."""
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            argv, stdout=secondary, stderr=subprocess.PIPE, env=environment(**env)
        )
    finally:
        os.close(secondary)
    shown = bytearray()
    try:
        for chunk in _read_until_closed(primary):
            shown += chunk
        code = process.wait()
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, shown.decode()


def _read_until_closed(fd: int) -> Iterator[bytes]:
    while True:
        try:
            chunk = os.read(fd, 65_536)
        except OSError:  # EIO: every writer of the terminal has closed it
            return
        if not chunk:
            return
        yield chunk


def test_tables_are_coloured_on_a_terminal(console_script: str, db: Path) -> None:
    code, shown = on_a_terminal([console_script, "--db", str(db), "models"])
    assert code == 0
    assert "\x1b[" in shown
    assert "$0.00016" in shown  # a thousand calls of 160 nano-USD, exactly


def test_no_color_keeps_a_terminal_plain(console_script: str, db: Path) -> None:
    code, shown = on_a_terminal([console_script, "--db", str(db), "models"], NO_COLOR="1")
    assert code == 0
    assert "\x1b[" not in shown
    assert "TOTAL" in shown and "$0.00016" in shown


def test_budget_list_is_the_same_table_coloured_or_piped(
    console_script: str, tmp_path: Path
) -> None:
    path = tmp_path / "limits.db"
    with SQLiteStore(path) as store:
        store.set_budget_limit("support-bot", 1_500_000_000, reset="daily", set_by="ops")
        store.set_budget_limit("support-bot", 2_000, budget_key="tenant-7", set_by="ops")
    argv = [console_script, "--db", str(path), "budget", "list"]
    code, shown = on_a_terminal(argv)
    assert code == 0
    assert "\x1b[" in shown
    piped = subprocess.run(argv, capture_output=True, text=True, env=environment(), check=True)
    assert "\x1b[" not in piped.stdout
    header, rule, *rows = piped.stdout.splitlines()
    assert header.split() == ["Project", "Key", "Reset", "Limit", "Set", "by", "Set", "at", "(UTC)"]
    assert set(rule) <= {"-", " "}
    cells = [row.split() for row in rows]
    assert [(c[0], c[1], c[2], c[3], c[4]) for c in cells] == [
        ("support-bot", "-", "daily", "$1.5000", "ops"),
        ("support-bot", "tenant-7", "lifetime", "$0.000002", "ops"),
    ]
    for shown_money in ("$1.5000", "$0.000002"):  # the same figures on the terminal
        assert shown_money in shown
