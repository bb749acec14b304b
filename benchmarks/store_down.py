"""Decorated calls while the PostgreSQL store is down, and right after it is back.

    python store_down.py        prints JSON (seconds)

A private server (pgserver.py) and the store with its defaults (``pool_timeout_s`` 30 s).
With the server stopped: three calls with ``on_store_error="allow"`` (the default: each goes
ahead unchecked, its record kept in memory), then three with ``"refuse"``. Then the server
is started again on the same port and a call is made every 10 ms until one reaches the
store (the breaker's recheck): how long after the restart that was, and how long that call
took.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

from llm_toll import BudgetExceededError, CostReporter, set_reporter, set_store, track_costs
from llm_toll.store import create_store
from pgserver import PostgresServer
from workload import BUDGET, RESPONSE

CALLS = 3
RECHECK_POLL_S = 0.01


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    with contextlib.suppress(BudgetExceededError):
        call()
    return time.perf_counter() - start


def main() -> None:
    warnings.simplefilter("ignore")  # the AccountingWarnings of the outage
    server = PostgresServer()
    try:
        server.start()
        store = create_store(server.create_database())
        set_store(store)
        set_reporter(CostReporter(enabled=False))

        @track_costs(project="bench-down", max_budget=BUDGET)
        def allowed() -> Any:
            return RESPONSE

        @track_costs(project="bench-down", max_budget=BUDGET, on_store_error="refuse")
        def refused() -> Any:
            return RESPONSE

        for _ in range(CALLS):
            allowed()
        server.stop()
        set_store(store)  # forgets the totals it wrote: the next calls ask the store
        down_allow = [timed(allowed) for _ in range(CALLS)]
        down_refuse = [timed(refused) for _ in range(CALLS)]

        breaker = store._connections.breaker  # type: ignore[attr-defined]
        server.start()
        restarted = time.perf_counter()
        while True:
            duration = timed(allowed)
            if not breaker.down:
                break
            time.sleep(RECHECK_POLL_S)
        back_after = time.perf_counter() - restarted
        recorded = len(store.get_usage_logs("bench-down", limit=1000))
        store.close()
        set_store(None)
    finally:
        server.remove()
    print(
        json.dumps(
            {
                "down_allow_s": sum(down_allow),
                "down_allow_first_s": down_allow[0],
                "down_refuse_s": sum(down_refuse),
                "back_after_s": back_after,
                "first_call_back_s": duration,
                "recorded": recorded,
            }
        )
    )


if __name__ == "__main__":
    main()
