"""``llm-toll export`` of a large SQLite ledger: wall time and peak memory, CSV and JSON Lines,
this checkout against the export as it was before it streamed.

The ledger (``BENCH_EXPORT_ROWS`` calls, default 1,000,000, 30 s apart, 4 projects, 6 models,
some budget keys, costs down to one nano-USD) is built once with ``executemany`` and kept
outside the checkout, under ``${LLM_TOLL_CACHE:-~/.cache/llm-toll}/``, named by its row count
and the schema version, so a schema change builds a new one.

"Before" is the ``export`` of commit ``BEFORE`` (the integration branch just before the
streamed export): its ``src/`` is extracted once with ``git archive`` into the same cache and
run with this project's interpreter and dependencies. It read every row into a list, then
wrote CSV (6 columns) or, with ``--json``, one JSON array; its JSON is the closest it had
to JSON Lines. Without git history (an sdist) that row is left out.

Each export runs in a child process writing to /dev/null; its peak memory is the child's
``ru_maxrss`` (from ``wait4``), its time the wall time from start to exit, interpreter start-up
included. ``python benchmarks/export.py`` prints the table; ``make bench`` runs it too.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from llm_toll.store._time import iso_utc

REPO = Path(__file__).resolve().parent.parent
BEFORE = "9dc2b2b2dd109e3734691ddf7a303f750e7be7a0"
ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))
_CLI = "import sys; from llm_toll.cli import main; sys.exit(main(sys.argv[1:]))"
_START = datetime(2025, 12, 1, tzinfo=timezone.utc)


def cache_dir() -> Path:
    root = os.environ.get("LLM_TOLL_CACHE") or Path.home() / ".cache" / "llm-toll"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def ledger(rows: int) -> Path:
    """A SQLite ledger of ``rows`` calls in the current schema, built once."""
    from llm_toll.store import SQLiteStore
    from llm_toll.store._ledger import INSERT
    from llm_toll.store._sqlite_schema import LATEST_VERSION

    path = cache_dir() / f"bench-ledger-{rows}-schema{LATEST_VERSION}.db"
    if path.exists():
        return path
    building = path.with_suffix(f".{os.getpid()}.building")
    with SQLiteStore(building) as store:
        store.upgrade_schema()  # the schema, as the library creates it
    conn = sqlite3.connect(building)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        batch = 50_000
        for first in range(0, rows, batch):
            conn.executemany(INSERT, (_row(i) for i in range(first, min(first + batch, rows))))
        conn.commit()
    finally:
        conn.close()
    building.rename(path)  # complete: a killed build leaves no file that looks done
    return path


def _row(i: int) -> tuple[object, ...]:
    """Call ``i``, in the order of ``_ledger.COLUMNS``; the same for a given ``i``."""
    pick = random.Random(i)
    model, provider = pick.choice(_MODELS)
    inp, out = pick.randrange(1, 20_000), pick.randrange(0, 2_000)
    cached = pick.randrange(0, inp) if pick.random() < 0.3 else 0
    reasoning = pick.randrange(0, out) if out and pick.random() < 0.2 else 0
    at = _START + timedelta(seconds=i * 30)  # a million calls span about a year
    known = pick.random() > 0.01
    return (
        *(pick.choice(_PROJECTS), model, provider, "chat"),
        *(inp, out, cached, 0, reasoning),
        pick.randrange(1, 50_000_000) if known else 0,  # nano-USD: $0.000000001 up to $0.05
        *(known, pick.random() < 0.02),
        pick.choice(_KEYS),
        f"resp-{i}",
        pick.random() * 5,
        iso_utc(at),
        *(None, None),  # usage units, price context
        *("genai-prices" if known else "unknown", "0.2.3" if known else None),
        *(None, "local" if known else "unknown", None),
    )


_PROJECTS = ("chatbot", "research", "search", "batch-jobs")
_MODELS = (
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4", "anthropic"),
    ("gemini-2.5-pro", "gcp.gemini"),
    ("text-embedding-3-small", "openai"),
    ("ollama/llama3", None),
)
_KEYS = (None, None, "tenant-a", "tenant-b", "tenant-c")


def before_src() -> Path | None:
    """``src/`` of commit BEFORE, extracted once; None without the git history."""
    target = cache_dir() / f"bench-export-before-{BEFORE[:12]}"
    if (target / "src").is_dir():
        return target / "src"
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BEFORE, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    partial = target.with_suffix(f".{os.getpid()}")
    partial.mkdir()
    subprocess.run(["tar", "-x", "-C", str(partial)], input=archive.stdout, check=True)
    partial.rename(target)
    return target / "src"


def measure(argv: list[str], src: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MB of ``llm-toll argv`` run from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", _CLI, *argv], env=env, stdout=subprocess.DEVNULL, cwd=src
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"llm-toll {' '.join(argv)} failed (exit {child.returncode})")
    return seconds, usage.ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    started = time.perf_counter()
    db = ledger(ROWS)
    built = time.perf_counter() - started
    old = before_src()
    print()
    print(f"export of a {ROWS:,}-row SQLite ledger (ready in {built:.1f} s), to /dev/null")
    print(f"{'':40} {'seconds':>9} {'peak MB':>9} {'before s':>9} {'before MB':>9}")
    cases = [
        ("CSV, every column", ["export"], ["export"]),
        ("JSON Lines (before: --json, one array)", ["export", "--json"], ["--json", "export"]),
    ]
    for label, new_args, old_args in cases:
        seconds, peak = measure(["--db", str(db), *new_args, "--output", "/dev/null"], REPO / "src")
        line = f"{label:40} {seconds:9.2f} {peak:9.0f}"
        if old is not None:
            old_s, old_mb = measure(["--db", str(db), *old_args, "--output", "/dev/null"], old)
            line += f" {old_s:9.2f} {old_mb:9.0f}"
        print(line)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
