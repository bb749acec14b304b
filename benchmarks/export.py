"""``llm-toll export`` of a large SQLite ledger: wall time and peak memory, CSV and JSON Lines,
this checkout against the export as it was before it streamed.

The ledger (``BENCH_EXPORT_ROWS`` calls, default 1,000,000) is the read benchmarks' own
(``ledger.py``): built once with ``executemany`` and kept outside the checkout.

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

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ledger import CACHE, cached_ledger

REPO = Path(__file__).resolve().parent.parent
BEFORE = "9dc2b2b2dd109e3734691ddf7a303f750e7be7a0"
ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))
_CLI = "import sys; from llm_toll.cli import main; sys.exit(main(sys.argv[1:]))"


def before_src() -> Path | None:
    """``src/`` of commit BEFORE, extracted once; None without the git history."""
    target = CACHE / f"bench-export-before-{BEFORE[:12]}"
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


def before_ledger(db: Path) -> Path:
    """``db`` as the schema of BEFORE (step 6) reads it: the same rows, without what later
    steps added (BEFORE refuses a newer schema). Made once, next to ``db``."""
    path = db.with_name(db.stem + "-schema6.db")
    if path.exists():
        return path
    partial = path.with_suffix(f".{os.getpid()}")
    shutil.copyfile(db, partial)
    with contextlib.closing(sqlite3.connect(partial)) as conn, conn:
        conn.execute("DROP TABLE budget_limits")
        conn.execute("DROP INDEX IF EXISTS usage_logs_created_at")  # gone since step 8
        conn.execute("UPDATE schema_version SET version = 6")
    partial.rename(path)
    return path


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
    db = cached_ledger(ROWS)
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
            old_db = before_ledger(db)
            old_s, old_mb = measure(["--db", str(old_db), *old_args, "--output", "/dev/null"], old)
            line += f" {old_s:9.2f} {old_mb:9.0f}"
        print(line)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
