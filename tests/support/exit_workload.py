"""A program that makes decorated calls, sync and async, and exits at once: what the exit
tests (tests/integration/test_exit_bound.py) and ``make bench`` (benchmarks/exit_time.py) run.

``python exit_workload.py LEDGER_DB``: the calls return plain OpenAI chat responses (no
network besides the export the ``OTEL_*`` variables ask for), their ledger goes to
LEDGER_DB, and ``calls done`` is printed on stdout when the program's own work is done.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from llm_toll import CostReporter, SQLiteStore, set_reporter, set_store, track_costs

SYNC, ASYNC = 6, 6
PROJECT = "exit"
DONE = "calls done"


def response(i: int) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "model": "gpt-4o",
        "id": f"c{i}",
        "choices": [],
        "usage": {"prompt_tokens": 100 + i, "completion_tokens": 5},
    }


@track_costs(project=PROJECT, max_budget=100.0)
def ask(i: int) -> dict[str, Any]:
    return response(i)


@track_costs(project=PROJECT, max_budget=100.0)
async def ask_async(i: int) -> dict[str, Any]:
    return response(i)


async def gather() -> None:
    await asyncio.gather(*(ask_async(i) for i in range(SYNC, SYNC + ASYNC)))


def main(ledger: str) -> None:
    set_store(SQLiteStore(ledger))
    set_reporter(CostReporter(enabled=False))
    for i in range(SYNC):
        ask(i)
    asyncio.run(gather())  # then exit at once: async writes may still be queued
    print(DONE, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
