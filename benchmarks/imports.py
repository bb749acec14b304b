"""Import cost of llm_toll and of llm-toll 0.13.0: what ``-X importtime`` attributes to the
statement beyond the interpreter's own start-up, and the wall time of ``llm-toll --help``.

Each figure is the median of RUNS fresh interpreters.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
STATEMENTS = {
    "import_us": "import llm_toll",
    "import_decorator_us": "from llm_toll import track_costs",
}


def import_us(python: Path | str, statement: str, env: dict[str, str]) -> float:
    """µs of the imports ``statement`` makes: the cumulative times of the top-level modules
    it imports, as ``python -X importtime`` reports them (start-up imports left out)."""
    samples = []
    for _ in range(RUNS):
        done = subprocess.run(
            [str(python), "-X", "importtime", "-c", statement],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        samples.append(float(sum(_top_level(done.stderr, after="-c"))))
    return statistics.median(samples)


def _top_level(report: str, after: str) -> list[int]:
    """Cumulative µs of the outermost imports in ``report``; those of the interpreter's
    start-up (``site`` and what it imports) come first and are skipped."""
    totals: list[int] = []
    started = False
    for line in report.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.strip() == "site":
            started = True  # the last start-up import: the statement's come after it
            totals.clear()
            continue
        if started and not name.startswith("  "):
            totals.append(int(cumulative))
    del after
    return totals


def help_ms(script: Path, env: dict[str, str]) -> float:
    """Wall time of ``llm-toll --help``, interpreter start-up included."""
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([str(script), "--help"], capture_output=True, check=True, env=env)
        samples.append((time.perf_counter() - started) * 1e3)
    return statistics.median(samples)


def measure(python: Path | str, env: dict[str, str]) -> dict[str, float]:
    result = {key: import_us(python, code, env) for key, code in STATEMENTS.items()}
    result["cli_help_ms"] = help_ms(Path(python).parent / "llm-toll", env)
    return result


if __name__ == "__main__":
    print(measure(sys.executable, dict(os.environ)))
