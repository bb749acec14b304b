"""A process making decorated calls, saying on stdout which have returned.

    python -m tests.faults.workload MODE FIRST COUNT [--busy-timeout S]

MODE ``sync`` makes COUNT calls one by one; ``async`` makes them in ``asyncio.gather`` groups
of 20. Call ``n`` (FIRST <= n < FIRST + COUNT) reports ``n`` input tokens, so the ledger
tells which calls it holds. Each returned call prints ``returned n``; then the process
prints ``done`` and waits for its standard input to close, so a test can kill it at a
moment of its choosing. The store is ``LLM_TOLL_STORE_URL`` (a SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import llm_toll
from llm_toll import track_costs
from llm_toll.store import SQLiteStore

GROUP = 20


def chat(n: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": n, "completion_tokens": 1, "total_tokens": n + 1},
    }  # fmt: skip


@track_costs(project="faults")
def ask(n: int) -> dict[str, Any]:
    return chat(n)


@track_costs(project="faults")
async def ask_async(n: int) -> dict[str, Any]:
    return chat(n)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_async(first: int, count: int) -> None:
    for start in range(first, first + count, GROUP):
        group = range(start, min(start + GROUP, first + count))
        replies = await asyncio.gather(*(ask_async(n) for n in group))
        for reply in replies:
            say(f"returned {reply['usage']['prompt_tokens']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("sync", "async"))
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--busy-timeout", type=float, default=None)
    args = parser.parse_args()
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    if args.busy_timeout is not None:
        store = SQLiteStore(os.environ["LLM_TOLL_STORE_URL"], busy_timeout_s=args.busy_timeout)
        llm_toll.set_store(store)
    if args.mode == "sync":
        for n in range(args.first, args.first + args.count):
            say(f"returned {ask(n)['usage']['prompt_tokens']}")
    else:
        asyncio.run(run_async(args.first, args.count))
    say("done")
    sys.stdin.read()


if __name__ == "__main__":
    main()
