"""Several processes, each with several threads, writing one SQLite file at the same time.

Workers are started with the spawn context, so each opens the (fresh) file on its own, and
run this module's functions; their results come back through a queue.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llm_toll.exceptions import BudgetExceededError
from llm_toll.money import usd_to_nanos
from llm_toll.records import BudgetSpec, CallRecord
from llm_toll.store import SQLiteStore
from llm_toll.usage.base import Usage

PROCESSES = 4
THREADS = 4
CALLS = 150
TOTAL_CALLS = PROCESSES * THREADS * CALLS
AT = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
COST_NANOS = 1_000_003  # not a round number, so any lost or doubled call shows
LIMIT_NANOS = COST_NANOS * (TOTAL_CALLS // 2)


def record_calls(store: SQLiteStore, worker: str) -> list[Any]:
    """One thread's calls; returns the (crossed thresholds, exceeded_now) of each."""
    budget = BudgetSpec(limit_nanos=LIMIT_NANOS, reset="daily")
    results: list[Any] = []
    for n in range(CALLS):
        call = CallRecord(
            project="shared",
            model="gpt-4o",
            usage=Usage(input_tokens=3, output_tokens=2),
            cost_nanos=COST_NANOS,
            started_at=AT,
            response_id=f"{worker}-{n}",
        )
        state = store.record_call(call, budget)
        results.append((state.crossed_thresholds, state.exceeded_now))
    return results


def log_within_budget(store: SQLiteStore, worker: str) -> list[Any]:
    """One thread's llm-toll 0.13 calls; returns ("ok" | "refused", total in nano-USD)."""
    results: list[Any] = []
    cost = COST_NANOS / 1e9
    max_budget = LIMIT_NANOS / 1e9
    for _ in range(CALLS):
        try:
            total = store.log_usage_if_within_budget("legacy", "gpt-4o", 3, 2, cost, max_budget)
            results.append(("ok", usd_to_nanos(total)))
        except BudgetExceededError as refused:
            results.append(("refused", usd_to_nanos(refused.current_cost or 0)))
    return results


WORKLOADS = {"record_calls": record_calls, "log_within_budget": log_within_budget}


def process_main(path: str, workload: str, index: int, start: Any, results: Any) -> None:
    """A spawned process: THREADS threads share one store, all start together."""
    store = SQLiteStore(path)
    go = threading.Barrier(THREADS)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def thread_main(thread_index: int) -> None:
        go.wait()
        try:
            outcome = WORKLOADS[workload](store, f"{index}.{thread_index}")
        except BaseException as exc:  # reported to the parent, which fails the test
            outcome = [("error", repr(exc))]
        with lock:
            outcomes.extend(outcome)

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(THREADS)]
    start.wait()  # every process opens the fresh file at the same moment
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    results.put(outcomes)


def run_processes(path: Path, workload: str) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=process_main, args=(str(path), workload, i, start, results))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes: list[Any] = []
    for _ in processes:
        outcomes.extend(results.get(timeout=240))
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert [o for o in outcomes if o[0] == "error"] == []
    return outcomes


def test_concurrent_record_call_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    outcomes = run_processes(path, "record_calls")
    assert len(outcomes) == TOTAL_CALLS

    with SQLiteStore(path) as store:
        assert store.get_spent("shared", "daily", AT) == COST_NANOS * TOTAL_CALLS
        assert store.get_spent("shared", None, AT) == COST_NANOS * TOTAL_CALLS
        rows = store.get_usage_logs_filtered(project="shared", limit=0)
    assert len(rows) == TOTAL_CALLS
    assert len({row["response_id"] for row in rows}) == TOTAL_CALLS  # each call exactly once

    # Totals are serialised: exactly one call crossed the limit, each threshold fired once.
    assert sum(exceeded for _, exceeded in outcomes) == 1
    fired = Counter(pct for crossed, _ in outcomes for pct in crossed)
    assert fired == {50: 1, 80: 1, 100: 1}


def test_concurrent_log_usage_if_within_budget_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    outcomes = run_processes(path, "log_within_budget")

    # Every call was recorded and saw its own total: the totals are exactly 1..N calls.
    totals = sorted(total for _, total in outcomes)
    assert totals == [COST_NANOS * n for n in range(1, TOTAL_CALLS + 1)]
    # Refused are exactly the calls that found the budget already spent.
    refused = sorted(total for outcome, total in outcomes if outcome == "refused")
    assert refused == [COST_NANOS * n for n in range(TOTAL_CALLS // 2 + 1, TOTAL_CALLS + 1)]

    with SQLiteStore(path) as store:
        assert usd_to_nanos(store.get_total_cost("legacy")) == COST_NANOS * TOTAL_CALLS
        assert len(store.get_usage_logs("legacy", limit=-1)) == TOTAL_CALLS
