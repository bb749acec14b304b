"""Every backend, under load: threads and spawned processes sharing one store, and a forked
child."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.periods import Reset
from llm_toll._budget.records import BudgetSpec
from llm_toll._call.request_gate import DEFAULT_OUTPUT_CAP
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError
from llm_toll.store import BaseStore
from llm_toll.store._time import utc_now
from tests.integration.test_decorated_providers import genai_prices_nanos
from tests.stores.conftest import (
    StoreFactory,
    open_store,
)
from tests.stores.helpers import (
    MONDAY,
    T0,
    all_logs,
    make_call,
)

# -- processes ------------------------------------------------------------------------------


def record_one_in_a_forked_child(store: BaseStore) -> None:
    store.record_call(make_call(10))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_child_uses_connections_of_its_own(store: BaseStore) -> None:
    store.record_call(make_call(1))  # the parent's connections are open across the fork
    child = multiprocessing.get_context("fork").Process(
        target=record_one_in_a_forked_child, args=(store,)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert store.record_call(make_call(100)).spent_nanos == 111  # the parent's still work
    assert store.get_spent("proj", None, MONDAY) == 111
    assert len(all_logs(store)) == 3


# Several processes, each with several threads, writing one database at the same time.


# Workers are spawned, so each opens the (fresh) database on its own, all at once.

PROCESSES = 4
THREADS = 4
CALLS = 150
TOTAL_CALLS = PROCESSES * THREADS * CALLS
COST_NANOS = 1_000_003  # not a round number, so any lost or doubled call shows
LIMIT_NANOS = COST_NANOS * (TOTAL_CALLS // 2)


def record_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's calls; returns the (crossed thresholds, exceeded_now) of each."""
    budget = BudgetSpec(limit_nanos=LIMIT_NANOS, reset="daily")
    results: list[Any] = []
    for n in range(CALLS):
        call = make_call(COST_NANOS, project="shared", response_id=f"{worker}-{n}")
        state = store.record_call(call, budget)
        results.append((state.crossed_thresholds, state.exceeded_now))
    return results


def log_within_budget(store: BaseStore, worker: str) -> list[Any]:
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


KEYS = 4
KEY_LIMIT_NANOS = COST_NANOS * (TOTAL_CALLS // KEYS // 2)


def record_keyed_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's calls spread over KEYS budget keys; returns each call's key and states."""
    budget = BudgetSpec(limit_nanos=LIMIT_NANOS, reset="daily")
    key_budget = BudgetSpec(limit_nanos=KEY_LIMIT_NANOS, reset="daily")
    results: list[Any] = []
    for n in range(CALLS):
        key = f"k{n % KEYS}"
        call = make_call(COST_NANOS, project="keyed", response_id=f"{worker}-{n}", budget_key=key)
        state = store.record_call(call, budget, key_budget)
        assert state.key_state is not None
        key_state = state.key_state
        results.append(
            (
                key,
                state.crossed_thresholds,
                state.exceeded_now,
                key_state.crossed_thresholds,
                key_state.exceeded_now,
            )
        )
    return results


# Strict budgets through the decorator: each call reserves its worst case, then settles to
# its actual cost, which varies from call to call and never exceeds the worst case.
STRICT_MODEL = "strict-load-model"
STRICT_CALLS = 20
STRICT_WORST_USD = 0.3  # 100 input tokens at $1/1k + up to 100 output tokens at $2/1k
STRICT_LIMIT_NANOS = usd_to_nanos(25.0)  # room for about half of the calls


def strict_decorated(store: BaseStore) -> Callable[..., Any]:
    import llm_toll
    from llm_toll import _runtime

    if _runtime._store is not store:
        llm_toll.set_store(store)
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    llm_toll.default_registry.register_model(STRICT_MODEL, 0.001, 0.002)

    @llm_toll.track_costs(
        project="strict",
        max_budget=STRICT_LIMIT_NANOS / 1e9,
        strict=True,
        estimate=lambda call_id, output_tokens: STRICT_WORST_USD,
    )
    def ask(call_id: str, output_tokens: int) -> dict[str, Any]:
        return strict_response(call_id, output_tokens)

    return ask


def strict_response(call_id: str, output_tokens: int) -> dict[str, Any]:
    return {
        "id": call_id,
        "object": "chat.completion",
        "model": STRICT_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": output_tokens,
                  "total_tokens": 100 + output_tokens},
    }  # fmt: skip


def ask_every_call(ask: Callable[[str, int], Any], worker: str) -> list[Any]:
    """One thread's calls of ``ask``: ("ok", id) or ("refused", id) each."""
    results: list[Any] = []
    for n in range(STRICT_CALLS):
        call_id = f"{worker}-{n}"
        try:
            ask(call_id, (n * 37) % 101)
        except BudgetExceededError:
            results.append(("refused", call_id))
        else:
            results.append(("ok", call_id))
    return results


def strict_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's strict calls through the decorator; returns ("ok", id) or ("refused",)."""
    ask = strict_decorated(store)
    return ask_every_call(ask, worker)


def strict_stored_limit_calls(store: BaseStore, worker: str) -> list[Any]:
    """``strict_calls`` under a lifetime limit in code ten times the daily limit kept in the
    store (``STRICT_STORED_PROJECT``): the stored one binds."""
    import llm_toll

    strict_decorated(store)  # the store and the model's price

    @llm_toll.track_costs(
        project=STRICT_STORED_PROJECT,
        max_budget=10 * STRICT_LIMIT_NANOS / 1e9,
        strict=True,
        estimate=lambda call_id, output_tokens: STRICT_WORST_USD,
    )
    def ask(call_id: str, output_tokens: int) -> dict[str, Any]:
        return strict_response(call_id, output_tokens)

    return ask_every_call(ask, worker)


STRICT_STORED_PROJECT = "strict-stored"


def default_mode_calls(store: BaseStore, worker: str) -> list[Any]:
    """The same calls as ``strict_calls`` without ``strict``: checked, not reserved."""
    import llm_toll

    strict_decorated(store)  # the store and the model's price

    @llm_toll.track_costs(project="default-mode", max_budget=STRICT_LIMIT_NANOS / 1e9)
    def ask(call_id: str, output_tokens: int) -> dict[str, Any]:
        return strict_response(call_id, output_tokens)

    return ask_every_call(ask, worker)


# Strict budgets on real requests: the README's function, which takes only the user's text
# and calls the real openai client (no model or cap in its arguments), against the loopback
# server; each request reserves its own worst case. The budget is worth about 100 calls.
REPLAY_URL_ENV = "LLM_TOLL_TEST_REPLAY_URL"
QUESTION = (
    "Please explain, in a few plain sentences that a curious child could follow, why the sky "
    "looks blue during the day and turns red and orange around sunset, and what dust, "
    "clouds or the height of the sun above the horizon have to do with the colours we see."
)
REQUEST_CALL_NANOS = 360_000  # about what one call costs at gpt-4o's price
REQUEST_BUDGET_NANOS = 100 * REQUEST_CALL_NANOS
REQUEST_TRIES = 25  # per thread: 800 tries for about 100 calls


def strict_request_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's calls of a strict ``answer(question)`` until it is refused; returns
    ("ok", answer) or ("refused", message) for each."""
    import openai

    import llm_toll
    from llm_toll import _runtime

    if _runtime._store is not store:
        llm_toll.set_store(store)
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    client = openai.OpenAI(
        base_url=os.environ[REPLAY_URL_ENV] + "/v1", api_key="test", max_retries=0
    )

    @llm_toll.track_costs(
        project="strict-requests", max_budget=REQUEST_BUDGET_NANOS / 1e9, strict=True
    )
    def answer(question: str) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": question}]
        )
        return str(reply.choices[0].message.content)

    results: list[Any] = []
    with client:
        for n in range(REQUEST_TRIES):
            try:
                results.append(("ok", answer(f"{QUESTION} ({worker}-{n})")))
            except BudgetExceededError as refused:
                results.append(("refused", str(refused)))
                break
    return results


RATE_N = 37
RATE_CALLS = 10  # per thread: 160 tries for 37 places


def shared_rate_calls(store: BaseStore, worker: str) -> list[Any]:
    """One thread's calls through ``@track_costs(rate_limit=RATE_N, shared_limits=True)`` at
    one controlled instant; returns ("ok",) or ("refused", retry_after) for each."""
    import llm_toll
    from llm_toll import _runtime
    from llm_toll._call import admission

    if _runtime._store is not store:
        llm_toll.set_store(store)
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    admission._wall_clock = lambda: T0  # every process and thread asks at the same instant

    @llm_toll.track_costs(project="rate", rate_limit=RATE_N, shared_limits=True)
    def ask(call_id: str) -> dict[str, Any]:
        return strict_response(call_id, 1)

    results: list[Any] = []
    for n in range(RATE_CALLS):
        try:
            ask(f"{worker}-{n}")
        except LocalRateLimitError as refused:
            results.append(("refused", refused.retry_after))
        else:
            results.append(("ok",))
    return results


WORKLOADS = {
    "strict_request_calls": strict_request_calls,
    "shared_rate_calls": shared_rate_calls,
    "strict_calls": strict_calls,
    "strict_stored_limit_calls": strict_stored_limit_calls,
    "default_mode_calls": default_mode_calls,
    "record_calls": record_calls,
    "log_within_budget": log_within_budget,
    "record_keyed_calls": record_keyed_calls,
}


def process_main(
    backend: str, location: str, workload: str, index: int, start: Any, results: Any
) -> None:
    """A spawned process: THREADS threads share one store, all start together."""
    store = open_store(backend, location)
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
    start.wait()  # every process opens the fresh database at the same moment
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    results.put(outcomes)


def run_processes(factory: StoreFactory, workload: str, processes: int = PROCESSES) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    spawned = [
        context.Process(
            target=process_main,
            args=(factory.backend, factory.location, workload, i, start, results),
        )
        for i in range(processes)
    ]
    for process in spawned:
        process.start()
    try:
        outcomes: list[Any] = []
        for _ in spawned:
            outcomes.extend(results.get(timeout=120))
        for process in spawned:
            process.join(timeout=60)
            assert process.exitcode == 0
    finally:
        for process in spawned:
            if process.is_alive():
                process.kill()
                process.join()
    assert [o for o in outcomes if o[0] == "error"] == []
    return outcomes


@pytest.mark.filterwarnings("ignore::UserWarning")  # the model has no price
def test_shared_rate_limit_holds_across_processes(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "shared_rate_calls")
    assert len(outcomes) == PROCESSES * THREADS * RATE_CALLS
    assert Counter(o[0] for o in outcomes)["ok"] == RATE_N  # exactly N, across processes
    assert {o[1] for o in outcomes if o[0] == "refused"} == {60.0}
    with store_factory() as store:
        scope = "rate:shared_rate_calls.<locals>.ask"
        admission = store.acquire_rate(scope, rpm=RATE_N, tpm=None, estimated_tokens=0, now=T0)
        assert not admission.admitted


def test_concurrent_record_call_loses_nothing(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "record_calls")
    assert len(outcomes) == TOTAL_CALLS

    with store_factory() as store:
        assert store.get_spent("shared", "daily", MONDAY) == COST_NANOS * TOTAL_CALLS
        assert store.get_spent("shared", None, MONDAY) == COST_NANOS * TOTAL_CALLS
        rows = store.get_usage_logs_filtered(project="shared", limit=0)
    assert len(rows) == TOTAL_CALLS
    assert len({row["response_id"] for row in rows}) == TOTAL_CALLS  # each call exactly once

    # Totals are serialised: exactly one call crossed the limit, each threshold fired once.
    assert sum(exceeded for _, exceeded in outcomes) == 1
    fired = Counter(pct for crossed, _ in outcomes for pct in crossed)
    assert fired == {50: 1, 80: 1, 100: 1}


def test_concurrent_record_call_with_budget_keys_is_exact(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "record_keyed_calls")
    assert len(outcomes) == TOTAL_CALLS
    calls_per_key = Counter(o[0] for o in outcomes)
    assert len(calls_per_key) == KEYS

    with store_factory() as store:
        assert store.get_spent("keyed", "daily", MONDAY) == COST_NANOS * TOTAL_CALLS
        for key, calls in calls_per_key.items():
            for reset in ("daily", None):
                spent = store.get_spent("keyed", reset, MONDAY, budget_key=key)
                assert spent == COST_NANOS * calls
        rows = store.get_usage_logs_filtered(project="keyed", limit=0)
    assert len({row["response_id"] for row in rows}) == TOTAL_CALLS
    assert Counter(row["budget_key"] for row in rows) == calls_per_key
    # The project's and every key's totals are serialised: one crossing call each, and each
    # threshold fired once per scope.
    assert sum(o[2] for o in outcomes) == 1
    assert Counter(pct for o in outcomes for pct in o[1]) == {50: 1, 80: 1, 100: 1}
    for k in range(KEYS):
        of_key = [o for o in outcomes if o[0] == f"k{k}"]
        assert sum(o[4] for o in of_key) == 1
        assert Counter(pct for o in of_key for pct in o[3]) == {50: 1, 80: 1, 100: 1}


def test_concurrent_log_usage_if_within_budget_is_atomic(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "log_within_budget")

    # Every call was recorded and saw its own total: the totals are exactly 1..N calls.
    totals = sorted(total for _, total in outcomes)
    assert totals == [COST_NANOS * n for n in range(1, TOTAL_CALLS + 1)]
    # Refused are exactly the calls that found the budget already spent.
    refused = sorted(total for outcome, total in outcomes if outcome == "refused")
    assert refused == [COST_NANOS * n for n in range(TOTAL_CALLS // 2 + 1, TOTAL_CALLS + 1)]

    with store_factory() as store:
        assert usd_to_nanos(store.get_total_cost("legacy")) == COST_NANOS * TOTAL_CALLS
        assert len(store.get_usage_logs("legacy", limit=-1)) == TOTAL_CALLS


def check_strict_outcomes(
    store: BaseStore, outcomes: list[Any], project: str = "strict", reset: Reset | None = None
) -> None:
    """The calls of ``project`` spent at most ``STRICT_LIMIT_NANOS`` over ``reset``'s
    period, used most of it, and were each recorded once."""
    ok = {call_id for outcome, call_id in outcomes if outcome == "ok"}
    refused = [call_id for outcome, call_id in outcomes if outcome == "refused"]
    assert ok and refused
    rows = store.get_usage_logs_filtered(project=project, limit=0)
    ids = [row["response_id"] for row in rows]
    assert len(ids) == len(set(ids)) and set(ids) == ok  # every successful call, exactly once
    spent = store.get_spent(project, reset, utc_now())
    assert spent == sum(row["cost_nanos"] for row in rows)
    assert spent <= STRICT_LIMIT_NANOS  # never over the budget, whatever the concurrency
    assert spent > STRICT_LIMIT_NANOS // 2  # and the budget was used, not refused wholesale
    for period in (None, reset):
        assert store.get_reserved(project, period, utc_now()) == 0  # no reservation left


def test_concurrent_strict_calls_never_overspend(store_factory: StoreFactory) -> None:
    outcomes = run_processes(store_factory, "strict_calls", processes=8)
    assert len(outcomes) == 8 * THREADS * STRICT_CALLS
    with store_factory() as store:
        check_strict_outcomes(store, outcomes)


def test_strict_calls_never_pass_a_stored_limit_over_another_period(
    store_factory: StoreFactory,
) -> None:
    """The code's limit is lifetime; the daily limit kept in the store is reserved against
    too, so calls in flight in many processes cannot pass it together."""
    with store_factory() as store:
        store.set_budget_limit(STRICT_STORED_PROJECT, STRICT_LIMIT_NANOS, reset="daily")
    outcomes = run_processes(store_factory, "strict_stored_limit_calls", processes=8)
    assert len(outcomes) == 8 * THREADS * STRICT_CALLS
    with store_factory() as store:
        check_strict_outcomes(store, outcomes, STRICT_STORED_PROJECT, "daily")


def test_default_mode_overspends_within_the_stated_bound(store_factory: StoreFactory) -> None:
    """README: without strict, the overspend is at most the calls in flight (one per
    thread) plus, per process, one call started on a total at most a second old."""
    processes = 8
    outcomes = run_processes(store_factory, "default_mode_calls", processes=processes)
    ok = {call_id for outcome, call_id in outcomes if outcome == "ok"}
    assert ok and len(ok) < len(outcomes)  # the budget ran out and later calls were refused
    with store_factory() as store:
        rows = store.get_usage_logs_filtered(project="default-mode", limit=0)
        ids = [row["response_id"] for row in rows]
        assert len(ids) == len(set(ids)) and set(ids) == ok  # every success, exactly once
        spent = store.get_spent("default-mode", None, utc_now())
    bound = (processes * THREADS + processes) * usd_to_nanos(STRICT_WORST_USD)
    assert STRICT_LIMIT_NANOS <= spent <= STRICT_LIMIT_NANOS + bound


def test_concurrent_async_strict_calls_never_overspend(store_factory: StoreFactory) -> None:
    import asyncio

    import llm_toll

    store = store_factory()
    strict_decorated(store)  # the store and the model's price

    @llm_toll.track_costs(
        project="strict",
        max_budget=STRICT_LIMIT_NANOS / 1e9,
        strict=True,
        estimate=lambda call_id, output_tokens: STRICT_WORST_USD,
    )
    async def ask(call_id: str, output_tokens: int) -> dict[str, Any]:
        await asyncio.sleep(0)
        return strict_response(call_id, output_tokens)

    async def one(n: int) -> tuple[str, str]:
        call_id = f"async-{n}"
        try:
            await ask(call_id, (n * 37) % 101)
        except BudgetExceededError:
            return ("refused", call_id)
        return ("ok", call_id)

    async def main() -> list[tuple[str, str]]:
        return await asyncio.gather(*(one(n) for n in range(300)))

    try:
        outcomes = asyncio.run(main())
        check_strict_outcomes(store, outcomes)
    finally:
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)


def test_strict_requests_of_many_processes_never_overspend_and_use_the_budget(
    store_factory: StoreFactory, replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 processes x 4 threads call the README's strict function until each is refused."""
    monkeypatch.setenv(REPLAY_URL_ENV, replay.base_url)
    outcomes = run_processes(store_factory, "strict_request_calls", processes=8)
    refusals = [message for outcome, message in outcomes if outcome == "refused"]
    assert len(refusals) == 8 * THREADS  # every thread ran until the budget was spent
    assert all("Budget exceeded" in message for message in refusals), refusals[:3]
    with store_factory() as store:
        rows = store.get_usage_logs_filtered(project="strict-requests", limit=0)
        spent = store.get_spent("strict-requests", None, utc_now())
        reserved = store.get_reserved("strict-requests", None, utc_now())
    answered = {str(e.response_id): e for e in replay.requests if e.tokens is not None}
    assert len(answered) == len(replay.requests)  # every request sent was answered
    assert sorted(str(row["response_id"]) for row in rows) == sorted(answered)  # each once
    for row in rows:  # priced exactly as the server counted
        tokens = answered[row["response_id"]].tokens
        assert tokens is not None
        assert (row["input_tokens"], row["output_tokens"]) == (
            tokens.input_tokens,
            tokens.output_tokens,
        )
        assert row["cost_nanos"] == genai_prices_nanos(tokens, "gpt-4o", "openai")
    assert spent == sum(row["cost_nanos"] for row in rows)
    assert spent <= REQUEST_BUDGET_NANOS  # never over the budget
    assert spent >= 0.9 * REQUEST_BUDGET_NANOS  # and no needless refusals
    assert reserved == 0
    # The function sets no cap: every request was sent with the one its reservation paid
    # for, lowered below the default as the budget ran out.
    caps = [exchange.body["max_completion_tokens"] for exchange in replay.requests]
    assert all(0 < cap <= DEFAULT_OUTPUT_CAP for cap in caps)
    assert min(caps) < max(caps)
