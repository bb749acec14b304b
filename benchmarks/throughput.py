"""Throughput of budget-checked calls against one shared store (this project or llm-toll 0.13).

    python throughput.py threads N LOCATION STRICT SECONDS
        N threads in this process; prints {"calls": ..., "seconds": ...}
    python throughput.py processes N LOCATION STRICT SECONDS
        N processes of one thread each, started together; prints the same JSON
    python throughput.py worker LOCATION STRICT
        one such process: sets up, prints "ready", reads the deadline, prints its count

LOCATION is a SQLite file path or a ``postgresql://`` DSN; every thread and process uses
the same one. STRICT is 0 or 1 (``strict=True`` with a known worst case per call).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import llm_toll
from llm_toll import CostReporter, create_store, set_reporter, set_store, track_costs
from workload import BUDGET, RESPONSE

WORST_CASE_USD = 0.001


def make_call(location: str, strict: bool) -> Callable[[], Any]:
    set_store(create_store(location))
    set_reporter(CostReporter(enabled=False))

    def bare() -> Any:
        return RESPONSE

    options: dict[str, Any] = {"project": "bench", "max_budget": BUDGET}
    if strict:  # only this project has strict budgets
        options.update(strict=True, estimate=lambda *a, **k: WORST_CASE_USD)
    tracked: Callable[[], Any] = track_costs(**options)(bare)
    tracked()  # open the store, create the schema, warm caches
    return tracked


def run_until(call: Callable[[], Any], deadline: float) -> int:
    calls = 0
    while time.monotonic() < deadline:
        call()
        calls += 1
    return calls


def threads(n: int, location: str, strict: bool, seconds: float) -> dict[str, float]:
    call = make_call(location, strict)
    counts = [0] * n
    barrier = threading.Barrier(n + 1)
    deadline = [0.0]

    def worker(i: int) -> None:
        barrier.wait()
        counts[i] = run_until(call, deadline[0])

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in workers:
        thread.start()
    start = time.monotonic()
    deadline[0] = start + seconds
    barrier.wait()
    for thread in workers:
        thread.join()
    return {"calls": sum(counts), "seconds": time.monotonic() - start}


def processes(n: int, location: str, strict: bool, seconds: float) -> dict[str, float]:
    # Create the schema first, as a deployed ledger has it: processes that create it at
    # once on a fresh PostgreSQL database can collide (CREATE TABLE IF NOT EXISTS races).
    make_call(location, strict)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", location, str(int(strict))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    try:
        for proc in procs:  # each has imported, opened the store and made one call
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker process failed to start")
        start = time.time()
        deadline = start + seconds
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{deadline}\n")
            proc.stdin.flush()
        total = 0
        for proc in procs:
            out, _ = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"a worker process failed (exit {proc.returncode})")
            total += int(out)
        return {"calls": total, "seconds": seconds}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def worker(location: str, strict: bool) -> None:
    call = make_call(location, strict)
    print("ready", flush=True)
    deadline = float(sys.stdin.readline())  # wall clock: shared by all the processes
    calls = 0
    while time.time() < deadline:
        call()
        calls += 1
    print(calls, flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "worker":
        worker(sys.argv[2], sys.argv[3] == "1")
        return
    n, location, strict, seconds = (
        int(sys.argv[2]),
        sys.argv[3],
        sys.argv[4] == "1",
        float(sys.argv[5]),
    )
    run = threads if mode == "threads" else processes
    result: dict[str, Any] = run(n, location, strict, seconds)
    result["version"] = llm_toll.__version__
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
