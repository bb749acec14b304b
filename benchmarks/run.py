"""`make bench`: llm_toll against llm-toll 0.13.0, measured in the same run on this machine.

llm-toll 0.13.0 is installed once into its own virtualenv under ~/.cache/llm-toll/ (it
shares the import name ``llm_toll``, so it cannot live in this project's venv), by
``tests/support/v013_venv.py``, which the mixed-fleet tests use too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from exit_time import exit_times
from export import main as export_times
from imports import RUNS
from imports import measure as measure_imports

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout, for tests.support

from tests.support.v013_venv import clean_env, old_python, try_psycopg2  # noqa: E402

ROWS = [
    ("sync_us", "sync call overhead, budget checked (µs)"),
    ("async_seq_us", "sequential async call (µs)"),
    ("async_gather_1000_us", "asyncio.gather of 1,000 calls, per call (µs)"),
    ("loop_stall_200_ms", "longest event-loop stall, gather of 200 calls (ms)"),
    ("check_10_rows_us", "budget check, 10 rows of history (µs)"),
    ("check_1m_rows_us", "budget check, 1,000,000 rows of history (µs)"),
    ("sync_10_rows_us", "sync call overhead, 10 rows of history (µs)"),
    ("sync_1m_rows_us", "sync call overhead, 1,000,000 rows of history (µs)"),
    ("sync_otel_us", "sync call overhead, with OTel SDK span + metrics (µs)"),
]


def run_script(
    python: Path | str, script: str, *args: str, env: dict[str, str] | None = None
) -> Any:
    """Run ``script`` of this folder under ``python``; the JSON it prints."""
    done = subprocess.run(
        [str(python), str(HERE / script), *args],
        check=False,
        capture_output=True,
        text=True,
        env={**clean_env(), **(env or {})},
        cwd=HERE,  # not the project root, so the old venv cannot import this project's src
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-5000:])
        raise RuntimeError(f"{script} {' '.join(args)} failed (exit {done.returncode})")
    return json.loads(done.stdout)


def measure(python: Path | str) -> dict[str, float]:
    result: dict[str, float] = run_script(python, "workload.py")
    return result


THROUGHPUT_SECONDS = float(os.environ.get("BENCH_THROUGHPUT_SECONDS", "2"))
CONCURRENCY = [("threads", 1), ("threads", 4), ("threads", 16), ("processes", 1), ("processes", 4)]


def calls_per_s(python: Path | str, mode: str, n: int, location: str, strict: bool) -> float:
    args = [mode, str(n), location, str(int(strict)), str(THROUGHPUT_SECONDS)]
    result = run_script(python, "throughput.py", *args)
    return float(result["calls"]) / float(result["seconds"])


def throughput(old: Path) -> None:
    """Calls per second against one shared store, each on a fresh database."""
    from pgserver import PostgresServer

    scratch = Path(tempfile.mkdtemp(prefix="llm-toll-bench-"))
    files = iter(range(1_000_000))
    server = PostgresServer()
    try:
        server.start()
        old_pg = try_psycopg2(old)
        print()
        print(f"throughput, calls/s, {THROUGHPUT_SECONDS:g} s each, one shared store")
        print(f"{'':52} {'llm_toll':>10} {'0.13.0':>10} {'ratio':>7}")
        for backend in ("sqlite", "postgres"):
            for strict in (False, True):
                for mode, n in CONCURRENCY:

                    def location(backend: str = backend) -> str:
                        if backend == "sqlite":
                            return str(scratch / f"ledger-{next(files)}.db")
                        return server.create_database()

                    new_rate = calls_per_s(sys.executable, mode, n, location(), strict)
                    old_rate = None
                    if not strict and (backend == "sqlite" or old_pg):
                        old_rate = calls_per_s(old, mode, n, location(), strict)
                    unit = "thread" if mode == "threads" else "process"
                    label = f"{backend}, {'strict' if strict else 'default'}, {n} {unit}"
                    label += "s" if n > 1 and mode == "threads" else "es" if n > 1 else ""
                    if old_rate is None:
                        print(f"{label:52} {new_rate:10.0f} {'—':>10} {'':>7}")
                    else:
                        ratio = new_rate / old_rate
                        print(f"{label:52} {new_rate:10.0f} {old_rate:10.0f} {ratio:7.2f}")
                    sys.stdout.flush()
    finally:
        server.remove()
        shutil.rmtree(scratch, ignore_errors=True)


IMPORT_ROWS = [
    ("import_us", "import llm_toll (ms, -X importtime)", 1e-3),
    ("import_decorator_us", "from llm_toll import track_costs (ms, -X importtime)", 1e-3),
    ("cli_help_ms", "llm-toll --help, wall time with start-up (ms)", 1.0),
]


def import_costs(old_py: Path) -> None:
    """What importing costs, each library in its own interpreter (benchmarks/imports.py)."""
    new = measure_imports(sys.executable, clean_env())
    old = measure_imports(old_py, clean_env())
    print()
    print(f"import cost, median of {RUNS} fresh interpreters")
    print(f"{'':52} {'llm_toll':>10} {'0.13.0':>10} {'ratio':>7}")
    for key, label, scale in IMPORT_ROWS:
        ratio = new[key] / old[key]
        print(f"{label:52} {new[key] * scale:10.1f} {old[key] * scale:10.1f} {ratio:7.2f}")
    sys.stdout.flush()


def measure_requests(python: Path | str, url: str) -> dict[str, float]:
    result: dict[str, float] = run_script(python, "requests.py", env={"BENCH_REPLAY_URL": url})
    return result


def request_overheads(old_py: Path) -> None:
    """Real openai SDK requests to the loopback replay server: what llm_toll adds to one."""
    from llm_toll.demo.replay import ReplayServer

    with ReplayServer() as server:
        new = measure_requests(sys.executable, server.base_url)
        old = measure_requests(old_py, server.base_url)
    sdk = new["sdk"]
    print()
    print("openai SDK requests to a loopback server, µs per request (median of rounds)")
    print(f"{'':52} {'llm_toll':>10} {'0.13.0':>10} {'ratio':>7}")
    print(f"{'the bare SDK call (no hooks)':52} {sdk:10.0f} {old['sdk']:10.0f} {'':>7}")
    for key, label in (
        ("outside_run", "hooked request outside any run, overhead"),
        ("in_run", "hooked request inside a run, overhead"),
    ):
        print(f"{label:52} {new[key] - sdk:10.0f} {'—':>10} {'':>7}")
    new_decorated = new["decorated"] - sdk
    old_decorated = old["decorated"] - old["sdk"]
    ratio = new_decorated / old_decorated if old_decorated > 0 else float("nan")
    label = "decorated function making it, overhead"
    print(f"{label:52} {new_decorated:10.0f} {old_decorated:10.0f} {ratio:7.2f}")
    sys.stdout.flush()


STORE_DOWN_ROWS = [
    ("down_allow_s", "three calls, on_store_error='allow' (the default)"),
    ("down_allow_first_s", "  of which the first, which finds it down"),
    ("down_refuse_s", "three more, on_store_error='refuse'"),
    ("back_after_s", "restarted: calls reach the store again after"),
    ("first_call_back_s", "  the first of them (the recheck)"),
]


def store_down() -> None:
    """Decorated calls with the PostgreSQL store stopped, then started again."""
    result = run_script(sys.executable, "store_down.py")
    print()
    print("PostgreSQL store stopped, then started again (pool_timeout_s 30 s), seconds")
    for key, label in STORE_DOWN_ROWS:
        print(f"{label:52} {result[key]:10.3f}")
    sys.stdout.flush()


def main() -> None:
    old_py = old_python()
    request_overheads(old_py)
    import_costs(old_py)
    exit_times(clean_env())
    old = measure(old_py)
    new = measure(sys.executable)
    print(f"llm_toll {new['version']} vs llm-toll {old['version']}, same machine, same run")
    print(f"{'':52} {'llm_toll':>10} {'0.13.0':>10} {'ratio':>7}")
    for key, label in ROWS:
        if key not in old:  # llm-toll 0.13 has no telemetry to compare with
            print(f"{label:52} {new[key]:10.1f} {'—':>10} {'':>7}")
            continue
        ratio = new[key] / old[key] if old[key] else float("nan")
        print(f"{label:52} {new[key]:10.1f} {old[key]:10.1f} {ratio:7.2f}")
    growth_new = new["check_1m_rows_us"] / new["check_10_rows_us"]
    growth_old = old["check_1m_rows_us"] / old["check_10_rows_us"]
    print(f"budget check 1M rows / 10 rows: llm_toll {growth_new:.2f}, 0.13.0 {growth_old:.2f}")
    sys.stdout.flush()
    store_down()
    throughput(old_py)
    export_times()


if __name__ == "__main__":
    main()
