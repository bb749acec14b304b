"""A process whose wall clock the test steps, making decorated calls under a shared rate limit.

    python -m tests.faults.clock_workload MODE

MODE is ``sync`` or ``async``. Commands, one per line on standard input:

- ``call N``: one call reporting N input tokens; prints ``returned N``, or
  ``refused N RETRY_AFTER`` when the rate limit refuses it;
- ``step S``: the wall clock jumps by S seconds (negative: back), as an NTP correction
  steps it; the monotonic clock does not move; prints ``stepped``.

The process exits when its standard input closes. The store is ``LLM_TOLL_STORE_URL``; every
process shares the rate window (``shared_limits=True``) of ``RPM`` requests a minute.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import time_machine

import llm_toll
from llm_toll import LocalRateLimitError, track_costs
from tests.faults.workload import chat, say

RPM = 5


@track_costs(project="faults", max_budget=100.0, rate_limit=RPM, shared_limits=True)
def ask(n: int) -> dict[str, Any]:
    return chat(n)


@track_costs(project="faults", max_budget=100.0, rate_limit=RPM, shared_limits=True)
async def ask_async(n: int) -> dict[str, Any]:
    return chat(n)


def call(mode: str, n: int) -> str:
    try:
        reply = ask(n) if mode == "sync" else asyncio.run(ask_async(n))
    except LocalRateLimitError as refused:
        return f"refused {n} {refused.retry_after!r}"
    return f"returned {reply['usage']['prompt_tokens']}"


def main() -> None:
    mode = sys.argv[1]
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    # The real time, ticking: only the steps the test asks for move the wall clock.
    clock = time_machine.travel(time.time(), tick=True).start()
    for line in sys.stdin:
        command, argument = line.split()
        if command == "call":
            say(call(mode, int(argument)))
        elif command == "step":
            clock.shift(float(argument))
            say("stepped")


if __name__ == "__main__":
    main()
