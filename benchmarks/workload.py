"""One benchmark run against whichever llm_toll is importable (this project or llm-toll 0.13).

Both libraries expose the same public API, so the same code measures both. Prints JSON.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from openai.types.chat import ChatCompletion

import llm_toll
from llm_toll import CostReporter, SQLiteStore, set_reporter, set_store, track_costs

# A real OpenAI SDK response object, as the client returns it.
RESPONSE = ChatCompletion.model_validate(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
)
BUDGET = 1e9  # a budget that is checked on every call but never reached
REPEATS = 5


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    """Median over REPEATS runs of the mean time of one call, in µs."""
    samples = []
    for _ in range(REPEATS):
        gc.collect()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def async_per_call_us(make: Callable[[], Any], calls: int, concurrent: bool) -> float:
    async def run() -> float:
        gc.collect()
        start = time.perf_counter()
        if concurrent:
            await asyncio.gather(*(make() for _ in range(calls)))
        else:
            for _ in range(calls):
                await make()
        return (time.perf_counter() - start) / calls * 1e6

    return statistics.median(asyncio.run(run()) for _ in range(REPEATS))


def longest_loop_stall_ms(make: Callable[[], Any], calls: int) -> float:
    """Median over REPEATS runs of the longest time the event loop was held while
    ``calls`` concurrent calls ran (a ticker that sleeps 1 ms measures the gaps)."""

    async def run() -> float:
        longest = 0.0
        running = True

        async def ticker() -> None:
            nonlocal longest
            last = time.perf_counter()
            while running:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                longest = max(longest, now - last)
                last = now

        gc.collect()
        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await asyncio.gather(*(make() for _ in range(calls)))
        running = False
        await tick
        return longest * 1e3

    return statistics.median(asyncio.run(run()) for _ in range(REPEATS))


def fill_history(db_path: str, rows: int) -> None:
    """Append ``rows`` ledger rows directly, as months of past calls would have."""
    with sqlite3.connect(db_path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(usage_logs)")}
        # This project's ledger has an exact integer cost and an operation column.
        new_schema = "cost_nanos" in columns
        cost_column = "cost_nanos, operation" if new_schema else "cost"
        cost_value = "1, 'chat'" if new_schema else "1"
        conn.executemany(
            f"INSERT INTO usage_logs (project, model, input_tokens, output_tokens, "
            f"{cost_column}, created_at) VALUES ('bench', 'gpt-4o', 10, 5, {cost_value}, "
            "'2026-01-01T00:00:00+00:00')",
            ([] for _ in range(rows)),
        )


def with_sdk_providers(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Install SDK providers (spans and metrics recorded, not exported) and return ``fn``."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    time.sleep(0.2)  # past llm_toll's provider re-check interval
    fn()
    return fn


def main() -> None:
    calls = int(os.environ.get("BENCH_CALLS", "5000"))
    history_rows = int(os.environ.get("BENCH_HISTORY_ROWS", "1000000"))
    tmp = tempfile.mkdtemp()
    db_path = os.path.join(tmp, "bench.db")
    store = SQLiteStore(db_path)
    set_store(store)
    set_reporter(CostReporter(enabled=False))

    def bare() -> ChatCompletion:
        return RESPONSE

    async def abare() -> ChatCompletion:
        return RESPONSE

    tracked = track_costs(project="bench", max_budget=BUDGET)(bare)
    atracked = track_costs(project="bench", max_budget=BUDGET)(abare)
    tracked()  # open the store, warm caches
    asyncio.run(atracked())

    result: dict[str, Any] = {"version": llm_toll.__version__}
    result["sync_bare_us"] = per_call_us(bare, calls)
    result["sync_us"] = per_call_us(tracked, calls) - result["sync_bare_us"]
    result["async_seq_us"] = async_per_call_us(atracked, calls // 2, concurrent=False)
    result["async_gather_1000_us"] = async_per_call_us(atracked, 1000, concurrent=True)
    result["loop_stall_200_ms"] = longest_loop_stall_ms(atracked, 200)

    def check() -> float:
        return store.get_total_cost("bench")

    fill_history(db_path, 10)
    result["check_10_rows_us"] = per_call_us(check, calls)
    result["sync_10_rows_us"] = per_call_us(tracked, calls) - result["sync_bare_us"]
    fill_history(db_path, history_rows - 10)
    result["check_1m_rows_us"] = per_call_us(check, calls)
    result["sync_1m_rows_us"] = per_call_us(tracked, calls) - result["sync_bare_us"]
    result["history_rows"] = history_rows
    if hasattr(llm_toll, "setup_telemetry"):  # this project: the cost of real telemetry
        result["sync_otel_us"] = per_call_us(with_sdk_providers(tracked), calls)
        result["sync_otel_us"] -= result["sync_bare_us"]
    store.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
