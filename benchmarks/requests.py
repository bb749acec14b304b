"""Real SDK requests to the loopback replay server, with and without llm_toll around them.

Runs under either library (this project or llm-toll 0.13) against a server started by
``run.py`` (``BENCH_REPLAY_URL``). Each way of making a request is timed in rounds that
alternate with the others, so drift of a loaded machine falls on all of them alike; the
figure of each is the median of its rounds. Prints JSON, µs per request.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import openai

import llm_toll
from llm_toll import CostReporter, SQLiteStore, set_reporter, set_store, track_costs

MESSAGES: list[Any] = [{"role": "user", "content": "Name three primary colours."}]
BUDGET = 1e9  # checked on every request, never reached


Way = tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]
"""(set-up, one call, tear-down): the set-up and tear-down run around each round, untimed."""


def nothing() -> None:
    pass


def timed_rounds(ways: dict[str, Way], rounds: int, calls: int) -> dict[str, float]:
    """µs per call of each way: the median over ``rounds`` of the mean of ``calls`` calls,
    the ways taking turns within each round."""
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, (set_up, call, tear_down) in ways.items():
            set_up()
            gc.collect()
            start = time.perf_counter()
            for _ in range(calls):
                call()
            samples[name].append((time.perf_counter() - start) / calls * 1e6)
            tear_down()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    rounds = int(os.environ.get("BENCH_REQUEST_ROUNDS", "30"))
    calls = int(os.environ.get("BENCH_REQUEST_CALLS", "40"))
    set_store(SQLiteStore(os.path.join(tempfile.mkdtemp(), "bench.db")))
    set_reporter(CostReporter(enabled=False))
    client = openai.OpenAI(
        base_url=os.environ["BENCH_REPLAY_URL"] + "/v1", api_key="bench", max_retries=0
    )

    def request() -> Any:
        return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    @track_costs(project="bench", max_budget=BUDGET)
    def decorated() -> Any:  # llm-toll 0.13 prices the returned response; llm_toll the request
        return request()

    ways: dict[str, Way] = {
        "sdk": (nothing, request, nothing),
        "decorated": (nothing, decorated, nothing),
    }
    if hasattr(llm_toll, "instrument"):  # this project: hooks and runs
        scope = llm_toll.run("bench", max_budget=BUDGET)
        ways = {
            "sdk": (llm_toll.uninstrument, request, llm_toll.instrument),  # no hooks at all
            "outside_run": (nothing, request, nothing),  # hooked, outside any run
            "in_run": (scope.__enter__, request, lambda: scope.__exit__(None, None, None)),
            "decorated": (nothing, decorated, nothing),
        }
    for set_up, call, tear_down in ways.values():  # connections open, prices loaded
        set_up()
        call()
        tear_down()
    result: dict[str, Any] = timed_rounds(ways, rounds, calls)
    result["version"] = llm_toll.__version__
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
