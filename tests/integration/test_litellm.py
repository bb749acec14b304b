"""LiteLLMCallback through LiteLLM's front door: registered in ``litellm.callbacks`` and
called by ``litellm.completion`` / ``acompletion`` against the loopback replay server.

LiteLLM calls success callbacks from a thread or task of its own: the tests wait for them
on events, never by sleeping."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll._budget.money import nanos_to_usd, usd_to_nanos
from llm_toll._worker import worker
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import BudgetExceededError
from llm_toll.store import SQLiteStore
from llm_toll.store._time import utc_now
from tests.integration.test_alerts import Received, delivered
from tests.integration.test_decorated_providers import MESSAGES, genai_prices_nanos
from tests.integration.test_hooks import run_program
from tests.integration.test_strict_requests import LONG_REPLY
from tests.support.alert_receiver import AlertReceiver, fields
from tests.support.otel import Telemetry


class Callback(llm_toll.LiteLLMCallback):
    """Counts LiteLLM's success calls (after the record), so a test can wait for them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.done = threading.Semaphore(0)

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        try:
            super().log_success_event(kwargs, response_obj, start_time, end_time)
        finally:
            self.done.release()

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        try:
            await super().async_log_success_event(kwargs, response_obj, start_time, end_time)
        finally:
            self.done.release()

    def wait(self) -> None:
        assert self.done.acquire(timeout=60), "LiteLLM never called the callback"


@pytest.fixture
def litellm() -> Iterator[Any]:
    """litellm (its bundled price map, tests/conftest.py), its callbacks restored after."""
    module = pytest.importorskip("litellm")
    # LiteLLM keeps the callbacks it has seen in lists of its own: start and end clean.
    module.logging_callback_manager._reset_all_callbacks()
    yield module
    module.logging_callback_manager._reset_all_callbacks()


def request(replay: ReplayServer, **extra: Any) -> dict[str, Any]:
    """A request's keywords; a stream asks for its usage (else LiteLLM estimates it)."""
    if extra.get("stream"):
        extra["stream_options"] = {"include_usage": True}
    return {
        "model": "openai/gpt-4o",
        "messages": MESSAGES,
        "api_base": replay.base_url + "/v1",
        "api_key": "test",
        "max_retries": 0,
        **extra,
    }


def test_a_completion_is_recorded_at_its_exact_cost_and_time(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, telemetry: Telemetry
) -> None:
    callback = Callback(project="litellm-sync")
    litellm.callbacks = [callback]
    replay.script(cached_tokens=1024, reasoning_tokens=7)
    t0 = time.perf_counter()
    response = litellm.completion(**request(replay))
    wall = time.perf_counter() - t0
    callback.wait()

    [row] = store.get_usage_logs("litellm-sync")
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    assert row["cost_nanos"] == usd_to_nanos(response._hidden_params["response_cost"])
    span = telemetry.span()
    attributes = span.attributes or {}
    assert attributes["gen_ai.usage.cost.source"] == "provider"
    local = genai_prices_nanos(sent, "gpt-4o", "openai")  # cache reads priced as such
    assert local < genai_prices_nanos(replace(sent, cache_read_input_tokens=0), "gpt-4o", "openai")
    assert attributes["llm_toll.cost.local"] == pytest.approx(nanos_to_usd(local))
    assert 0 < row["duration_s"] <= wall
    assert span.start_time is not None and span.end_time is not None
    assert 0 < (span.end_time - span.start_time) / 1e9 <= wall


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_spent_budget_refuses_before_any_request(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    callback = Callback(project="litellm-spent", max_budget=1e-9)
    litellm.callbacks = [callback]
    litellm.completion(**request(replay))
    callback.wait()
    assert len(replay.requests) == 1

    with pytest.raises(BudgetExceededError):
        litellm.completion(**request(replay, stream=stream))

    async def asynchronous() -> None:
        with pytest.raises(BudgetExceededError):
            await litellm.acompletion(**request(replay, stream=stream))

    asyncio.run(asynchronous())
    assert len(replay.requests) == 1
    assert len(store.get_usage_logs("litellm-spent")) == 1


def test_a_stream_is_recorded_once(litellm: Any, replay: ReplayServer, store: SQLiteStore) -> None:
    callback = Callback(project="litellm-stream")
    litellm.callbacks = [callback]
    t0 = time.perf_counter()
    chunks = list(litellm.completion(**request(replay, stream=True)))
    callback.wait()
    # LiteLLM stamps a stream's end when it logs it, just after the last chunk: within the
    # time until the callback was called.
    wall = time.perf_counter() - t0

    assert chunks
    [row] = store.get_usage_logs("litellm-stream")
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    assert 0 < row["duration_s"] <= wall


class BlockingStore(SQLiteStore):
    """A store whose writes wait until the test lets them through."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.entered = threading.Event()
        self.release = threading.Event()

    def record_call(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.release.wait(60)
        return super().record_call(*args, **kwargs)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_acompletion_records_off_the_event_loop(
    litellm: Any, replay: ReplayServer, tmp_path: Path, stream: bool
) -> None:
    blocking = BlockingStore(tmp_path / "ledger.db")
    callback = Callback(project="litellm-async", store=blocking)
    litellm.callbacks = [callback]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    try:
        t0 = time.perf_counter()
        response = await litellm.acompletion(**request(replay, stream=stream))
        if stream:
            async for _ in response:
                pass
        wall = time.perf_counter() - t0
        assert await asyncio.to_thread(blocking.entered.wait, 60)
        # The write is blocked in the store: the loop keeps running meanwhile.
        seen = ticks
        for _ in range(100):
            await asyncio.sleep(0)
        assert ticks > seen
        assert not blocking.release.is_set()
        blocking.release.set()
        await asyncio.to_thread(callback.wait)
    finally:
        blocking.release.set()
        ticking.cancel()

    [row] = blocking.get_usage_logs("litellm-async")
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    if stream:
        # LiteLLM stamps an async stream's end when its logging task runs, just after the
        # last chunk: within the time until the callback was called.
        wall = time.perf_counter() - t0
    assert 0 < row["duration_s"] <= wall


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_inside_a_run_each_request_is_recorded_once(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    """LiteLLM calls the openai SDK, which llm_toll's hooks record inside a run: the
    callback's record of the same response is dropped."""
    callback = Callback(project="litellm-callback")
    litellm.callbacks = [callback]
    with llm_toll.run("litellm-run"):
        response = litellm.completion(**request(replay, stream=stream))
        if stream:
            list(response)
    callback.wait()

    rows = store.get_usage_logs("litellm-run")  # the hook's record, made as it arrived
    assert store.get_usage_logs("litellm-callback") == []
    assert len(rows) == 1 == len(replay.requests)
    sent = replay.last.tokens
    assert sent is not None
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (
        sent.input_tokens,
        sent.output_tokens,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_run_gates_and_records_litellms_requests_without_a_callback(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    """LiteLLM sends through the openai client's low-level ``post()``, not ``create()``:
    the hooks see its requests, sync and async, gate them under the run's cap before they
    are sent (the refusal raised as it is, not wrapped in LiteLLM's errors), and record
    each from its real usage."""

    async def both() -> None:
        response = litellm.completion(**request(replay, stream=stream))
        if stream:
            list(response)
        response = await litellm.acompletion(**request(replay, stream=stream))
        if stream:
            async for _ in response:
                pass

    async with llm_toll.run("litellm-hooked"):
        await both()
    rows = store.get_usage_logs("litellm-hooked", limit=10)
    answered = [exchange.tokens for exchange in replay.requests]
    assert len(rows) == len(answered) == 2
    for row, sent in zip(sorted(rows, key=lambda row: row["id"]), answered, strict=True):
        assert sent is not None
        assert (row["model"], row["provider"]) == ("gpt-4o", "openai")
        assert (row["input_tokens"], row["output_tokens"]) == (
            sent.input_tokens,
            sent.output_tokens,
        )
        assert row["cost_nanos"] == genai_prices_nanos(sent, "gpt-4o", "openai")

    replay.reset()
    async with llm_toll.run("litellm-capped", max_cost=1e-9):
        spends_the_cap = litellm.completion(**request(replay, stream=stream))
        if stream:
            list(spends_the_cap)
        with pytest.raises(BudgetExceededError) as refused:
            litellm.completion(**request(replay, stream=stream))
        with pytest.raises(BudgetExceededError):
            await litellm.acompletion(**request(replay, stream=stream))
    assert refused.value.scope == "run"
    assert len(replay.requests) == 1  # the refused request never reached the server
    assert len(store.get_usage_logs("litellm-capped")) == 1


def test_a_retried_completion_is_recorded_once(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    """The failed attempt is not billed; the response that came back is, once."""
    callback = Callback(project="litellm-retry")
    litellm.callbacks = [callback]
    replay.script(status=500)
    litellm.completion(**request(replay, num_retries=1))
    callback.wait()

    assert [exchange.status for exchange in replay.requests] == [500, 200]
    [row] = store.get_usage_logs("litellm-retry")
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)


# -- retries and router fallbacks -----------------------------------------------------------


def deployment(replay: ReplayServer, name: str, model: str) -> dict[str, Any]:
    """A Router deployment on the replay server; the openai SDK's own retries off, so every
    attempt is the Router's and reaches the server."""
    params = {"model": f"openai/{model}", "api_base": replay.base_url + "/v1", "api_key": "test",
              "max_retries": 0}  # fmt: skip
    return {"model_name": name, "litellm_params": params}


def router_with_a_failing_main(litellm: Any, replay: ReplayServer, status: int) -> Any:
    """A Router whose ``main`` deployment answers ``status`` to every attempt (retried),
    then falls back to ``backup``, which answers."""
    replay.fail("gpt-4o", status)
    replay.script(cached_tokens=1024)  # for the one request that gets an answer
    return litellm.Router(
        model_list=[
            deployment(replay, "main", "gpt-4o"),
            deployment(replay, "backup", "gpt-4o-mini"),
        ],
        fallbacks=[{"main": ["backup"]}],
        num_retries=2,
    )


def assert_only_the_answer_recorded(
    replay: ReplayServer, store: SQLiteStore, project: str, status: int, response: Any
) -> None:
    """Only the request that came back is recorded, once, at LiteLLM's cost of it; the
    failed attempts cost nothing."""
    failed = [e for e in replay.requests if e.status != 200]
    [served] = [e for e in replay.requests if e.status == 200]
    assert failed and all((e.model, e.status) == ("gpt-4o", status) for e in failed)
    assert replay.requests[-1] is served and served.model == "gpt-4o-mini"
    [row] = store.get_usage_logs(project)
    sent = served.tokens
    assert sent is not None
    assert (row["model"], row["response_id"]) == ("gpt-4o-mini", served.response_id)
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    assert row["cache_read_input_tokens"] == 1024
    assert row["cost_nanos"] == usd_to_nanos(response._hidden_params["response_cost"]) > 0
    assert store.get_total_cost(project) == pytest.approx(row["cost_nanos"] / 1e9)


@pytest.mark.parametrize("status", [500, 429])
def test_a_router_fallback_records_the_request_that_answered(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, status: int
) -> None:
    callback = Callback(project="litellm-router")
    litellm.callbacks = [callback]
    router = router_with_a_failing_main(litellm, replay, status)
    response = router.completion(model="main", messages=MESSAGES)
    callback.wait()
    assert_only_the_answer_recorded(replay, store, "litellm-router", status, response)


@pytest.mark.parametrize("status", [500, 429])
async def test_an_async_router_fallback_records_the_request_that_answered(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, status: int
) -> None:
    callback = Callback(project="litellm-arouter")
    litellm.callbacks = [callback]
    router = router_with_a_failing_main(litellm, replay, status)
    response = await router.acompletion(model="main", messages=MESSAGES)
    await asyncio.to_thread(callback.wait)
    assert_only_the_answer_recorded(replay, store, "litellm-arouter", status, response)


def test_a_router_does_not_retry_a_refusal(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    """A Router retries a failed request ``num_retries`` times, with a backoff between: a
    refusal of llm_toll is raised at once, sync and async, each request gated once (the
    refusals the store counts), never sent."""
    router = litellm.Router(model_list=[deployment(replay, "main", "gpt-4o")], num_retries=2)

    async def refused_async() -> None:
        with pytest.raises(BudgetExceededError):
            await router.acompletion(model="main", messages=MESSAGES)

    with llm_toll.run("litellm-router-capped", max_cost=1e-9):
        router.completion(model="main", messages=MESSAGES)  # spends the cap
        with pytest.raises(BudgetExceededError) as refused:
            router.completion(model="main", messages=MESSAGES)
        asyncio.run(refused_async())
    assert refused.value.scope == "run"
    assert len(replay.requests) == 1
    [counted] = store.refusals(project="litellm-router-capped")
    assert counted["count"] == 2  # once per request: no retry was gated again


# -- per-call callbacks and several callbacks -----------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_per_call_callback_records_and_refuses(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    """``completion(..., callbacks=[...])``: recorded, and a spent budget refuses the next
    call of either kind before it is sent."""
    callback = Callback(project="litellm-per-call", max_budget=1e-9)
    litellm.completion(**request(replay), callbacks=[callback])
    callback.wait()
    assert len(replay.requests) == 1

    with pytest.raises(BudgetExceededError) as refused:
        litellm.completion(**request(replay, stream=stream), callbacks=[callback])
    assert refused.value.project == "litellm-per-call"

    async def asynchronous() -> None:
        with pytest.raises(BudgetExceededError):
            await litellm.acompletion(**request(replay, stream=stream), callbacks=[callback])

    asyncio.run(asynchronous())
    assert len(replay.requests) == 1
    [row] = store.get_usage_logs("litellm-per-call")
    assert row["response_id"] == replay.requests[0].response_id


def test_two_projects_each_record_and_refuse_for_their_own(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    spent = Callback(project="litellm-a", max_budget=1e-9)
    roomy = Callback(project="litellm-b", max_budget=1.0)
    litellm.callbacks = [spent, roomy]
    litellm.completion(**request(replay))
    spent.wait()
    roomy.wait()
    [a] = store.get_usage_logs("litellm-a")
    [b] = store.get_usage_logs("litellm-b")
    assert a["response_id"] == b["response_id"] == replay.last.response_id
    assert a["cost_nanos"] == b["cost_nanos"] > 0

    with pytest.raises(BudgetExceededError) as refused:
        litellm.completion(**request(replay))
    assert refused.value.project == "litellm-a"  # its budget, not the other one's
    assert len(replay.requests) == 1


def test_one_project_with_two_budgets_records_each_call_once(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    """Both callbacks are kept (LiteLLM drops a second logger that looks the same): the
    lower budget refuses, and the project's ledger holds each call once."""
    roomy = Callback(project="litellm-shared", max_budget=1.0)
    tight = Callback(project="litellm-shared", max_budget=1e-9)
    litellm.callbacks = [roomy, tight]
    litellm.completion(**request(replay))
    roomy.wait()
    tight.wait()
    [row] = store.get_usage_logs("litellm-shared")
    assert row["response_id"] == replay.last.response_id

    with pytest.raises(BudgetExceededError) as refused:
        litellm.completion(**request(replay))
    assert refused.value.max_budget == pytest.approx(1e-9)
    assert len(replay.requests) == 1


def test_the_callback_raises_the_budgets_alerts(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    thresholds, exceeded = Received(), Received()
    with AlertReceiver() as receiver:
        callback = Callback(
            project="litellm-alerts",
            max_budget=1e-9,
            on_threshold=thresholds,
            on_exceeded=exceeded,
            alert_webhook=receiver.url,
        )
        litellm.callbacks = [callback]
        litellm.completion(**request(replay))  # crosses every threshold, then the limit
        callback.wait()
        with pytest.raises(BudgetExceededError):
            litellm.completion(**request(replay))
        bodies = receiver.wait_for(4)
        delivered()
    [row] = store.get_usage_logs("litellm-alerts")
    spent = Decimal(row["cost_nanos"]).scaleb(-9)
    assert [(a.threshold, a.spent) for a in thresholds.alerts] == [
        (50, spent),
        (80, spent),
        (100, spent),
    ]
    assert [(a.kind, a.refused) for a in exceeded.alerts] == [
        ("exceeded", False),
        ("exceeded", True),
    ]
    assert {a.project for a in thresholds.alerts + exceeded.alerts} == {"litellm-alerts"}
    assert [fields(body)["kind"] for body in bodies] == [
        "threshold",
        "threshold",
        "exceeded",
        "refused",
    ]


# -- LiteLLM's calls imported by name before the hooks ---------------------------------------

IMPORTED_FIRST = """
import asyncio
import os
import sys

# Bound before llm_toll hooks anything: these names keep LiteLLM's own functions.
from litellm import acompletion, aembedding, aresponses, atext_completion, completion
from litellm import embedding, responses, text_completion

import llm_toll
from llm_toll._hooks import installed

server = {"api_base": os.environ["OPENAI_BASE_URL"], "api_key": "test", "max_retries": 0}
chat = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **server}
usage = {"stream_options": {"include_usage": True}}
text = {"model": "openai/gpt-3.5-turbo-instruct", "prompt": "Hi", **server}
vectors = {"model": "openai/text-embedding-3-small", "input": ["Hi"], **server}
ask = {"model": "openai/gpt-4o", "input": "Hi", "api_base": server["api_base"], "api_key": "test"}
calls = {
    "completion": lambda: completion(**chat),
    "completion stream": lambda: list(completion(**chat, stream=True, **usage)),
    "text_completion": lambda: text_completion(**text),
    "embedding": lambda: embedding(**vectors),
    "responses": lambda: responses(**ask),
    "responses stream": lambda: list(responses(**ask, stream=True)),
}


async def drained(stream):
    return [chunk async for chunk in await stream]


async_calls = {
    "acompletion": lambda: acompletion(**chat),
    "acompletion stream": lambda: drained(acompletion(**chat, stream=True, **usage)),
    "atext_completion": lambda: atext_completion(**text),
    "aembedding": lambda: aembedding(**vectors),
    "aresponses": lambda: aresponses(**ask),
    "aresponses stream": lambda: drained(aresponses(**ask, stream=True)),
}


def raised(call):
    try:
        call()
    except Exception as error:
        return type(error).__name__
    return "nothing"


async def raised_async(call):
    try:
        await call()
    except Exception as error:
        return type(error).__name__
    return "nothing"


async def main():
    for name, call in async_calls.items():
        print(name, await raised_async(call))


with llm_toll.run("litellm-spent", max_budget=1e-9):  # the hooks go in here
    completion(**chat)  # sent, recorded: it spends the budget
    for name, call in calls.items():
        print(name, raised(call))
    asyncio.run(main())  # inside the run too

hooked = installed()
llm_toll.instrument()  # again: nothing more
print("reinstalled", installed() == hooked)
llm_toll.uninstrument()
layered = [
    name
    for name, module in list(sys.modules.items())
    if name.split(".")[0] == "litellm"
    and hasattr(getattr(module, "__dict__", {}).get("exception_type"), "__wrapped__")
]
print("left", installed() + layered)
"""


def test_calls_imported_before_the_hooks_raise_a_refusal_as_it_is(
    replay: ReplayServer, tmp_path: Path
) -> None:
    """``from litellm import completion`` before llm_toll hooks anything keeps LiteLLM's own
    function: the hook is where every call of LiteLLM's maps an error, so a refusal still
    comes out as ``BudgetExceededError``, sync, async and streamed, and nothing is sent
    once the first request has spent the budget."""
    lines = run_program(IMPORTED_FIRST, replay, tmp_path, LITELLM_LOCAL_MODEL_COST_MAP="True")

    outcomes = dict(line.rsplit(" ", 1) for line in lines if " " in line)
    calls = ["completion", "completion stream", "text_completion", "embedding"]
    calls += ["responses", "responses stream"]
    calls += ["a" + name for name in calls]
    assert {name: outcomes.get(name) for name in calls} == dict.fromkeys(
        calls, "BudgetExceededError"
    )
    [spent_it] = replay.requests  # the others were refused before they were sent
    with SQLiteStore(str(tmp_path / "ledger.db")) as ledger:
        [row] = ledger.get_usage_logs("litellm-spent")
    assert row["response_id"] == spent_it.response_id
    assert outcomes["reinstalled"] == "True"
    assert lines[-1] == "left []"  # uninstrument() took the hook out of every module


def test_an_error_that_is_no_refusal_is_mapped_as_litellm_maps_it(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    replay.script(status=500)
    with llm_toll.run("litellm-failing"), pytest.raises(litellm.InternalServerError) as failed:
        litellm.completion(**request(replay))
    assert failed.value.status_code == 500
    assert len(replay.requests) == 1


def test_a_stream_cut_mid_way_raises_the_refusal(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    """A strict stream that runs past its reservation is cut by the SDK's hook; LiteLLM's
    stream would raise that as its ``MidStreamFallbackError`` (a Router's cue to spend again
    on another model): it comes out as the refusal, sync and async."""
    cut = request(replay, stream=True, max_tokens=5)
    replay.script(text=LONG_REPLY, ignore_cap=True)  # a provider that ignores the cap
    with (  # the error comes mid-stream, from the loop
        pytest.raises(BudgetExceededError, match="ran past"),
        llm_toll.run("litellm-cut", max_budget=1.0, strict=True),
    ):
        for _ in litellm.completion(**cut):
            pass

    async def asynchronous() -> None:
        replay.script(text=LONG_REPLY, ignore_cap=True)
        with pytest.raises(BudgetExceededError, match="ran past"):  # noqa: PT012 - mid-stream
            async with llm_toll.run("litellm-acut", max_budget=1.0, strict=True):
                async for _ in await litellm.acompletion(**cut):
                    pass

    asyncio.run(asynchronous())
    for project in ("litellm-cut", "litellm-acut"):
        [row] = store.get_usage_logs(project)
        assert row["output_tokens"] > 5  # what came before the cut is recorded


# -- LiteLLM's Responses API, sent with LiteLLM's own HTTP client -----------------------------


def responses_request(replay: ReplayServer, **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o",
        "input": "Name three primary colours.",
        "api_base": replay.base_url + "/v1",
        "api_key": "test",
        **extra,
    }


def read(response: Any, stream: bool) -> None:
    if stream:
        list(response)


async def read_async(response: Any, stream: bool) -> None:
    if stream:
        async for _ in response:
            pass


def assert_recorded_at_exact_cost(store: SQLiteStore, replay: ReplayServer, project: str) -> None:
    """One row per request the server answered, each at its real usage and exact price."""
    rows = sorted(store.get_usage_logs(project, limit=10), key=lambda row: row["id"])
    assert len(rows) == len(replay.requests) > 0
    for row, exchange in zip(rows, replay.requests, strict=True):
        sent = exchange.tokens
        assert sent is not None and exchange.api == "openai.responses"
        assert (row["model"], row["provider"]) == ("gpt-4o", "openai")
        # The provider's id, also where LiteLLM's stream events carry an id of its own.
        assert row["response_id"] == exchange.response_id
        assert (row["input_tokens"], row["output_tokens"]) == (
            sent.input_tokens,
            sent.output_tokens,
        )
        assert row["cost_nanos"] == genai_prices_nanos(sent, "gpt-4o", "openai")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_in_a_run_are_recorded_once_at_their_exact_cost(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    """``litellm.responses()`` sends an OpenAI model's request with LiteLLM's own HTTP
    client, not the openai SDK: its handler is hooked, so the run records it; a callback
    that sees the same responses does not record them again."""
    callback = Callback(project="litellm-responses-callback")
    litellm.callbacks = [callback]
    with llm_toll.run("litellm-responses"):
        read(litellm.responses(**responses_request(replay, stream=stream)), stream)
        read(litellm.responses(**responses_request(replay, stream=stream)), stream)
    callback.wait()
    callback.wait()
    assert store.get_usage_logs("litellm-responses-callback") == []
    assert_recorded_at_exact_cost(store, replay, "litellm-responses")
    assert replay.last.stream is stream


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_aresponses_in_a_tracked_function_are_recorded_once_at_their_exact_cost(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    @llm_toll.track_costs(project="litellm-aresponses")
    async def agent() -> str:
        for _ in range(2):
            response = await litellm.aresponses(**responses_request(replay, stream=stream))
            await read_async(response, stream)
        return "done"  # the requests were recorded: this is not

    assert await agent() == "done"
    assert_recorded_at_exact_cost(store, replay, "litellm-aresponses")
    assert replay.last.stream is stream


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_callback_records_responses_at_their_exact_cost(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    """Outside a run the callback is what records ``responses()`` / ``aresponses()``. LiteLLM
    hands it the ``ResponsesAPIResponse`` with its usage in chat completions' names
    (``prompt_tokens``, ``completion_tokens``): read either way, at the exact price."""
    callback = Callback(project="litellm-responses-cb")
    litellm.callbacks = [callback]
    read(litellm.responses(**responses_request(replay, stream=stream)), stream)
    callback.wait()
    await read_async(await litellm.aresponses(**responses_request(replay, stream=stream)), stream)
    await asyncio.to_thread(callback.wait)  # LiteLLM logs an async call in a task of the loop
    rows = sorted(store.get_usage_logs("litellm-responses-cb", limit=10), key=lambda r: r["id"])
    assert len(rows) == len(replay.requests) == 2
    for row, exchange in zip(rows, replay.requests, strict=True):
        sent = exchange.tokens
        assert sent is not None
        assert (row["model"], row["provider"], row["operation"]) == ("gpt-4o", "openai", "chat")
        assert (row["input_tokens"], row["output_tokens"]) == (
            sent.input_tokens,
            sent.output_tokens,
        )
        assert not row["estimated"]
        assert row["response_id"] == exchange.response_id  # not LiteLLM's encoding of it
        assert row["local_cost_nanos"] == genai_prices_nanos(sent, "gpt-4o", "openai")


def test_responses_outside_a_run_are_neither_gated_nor_recorded(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    llm_toll.instrument()
    litellm.responses(**responses_request(replay))
    assert len(replay.requests) == 1
    assert store.get_all_project_summaries() == []


def test_responses_answered_through_chat_completions_are_recorded_once(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    """LiteLLM answers a Responses call through chat completions when asked to (or when the
    provider has no Responses API): the openai SDK's hook records that request, and the
    Responses hook, never reached, does not record it again."""
    with llm_toll.run("litellm-bridged"):
        litellm.responses(**responses_request(replay, use_chat_completions_api=True))
    [exchange] = replay.requests
    assert exchange.api == "openai.chat"
    [row] = store.get_usage_logs("litellm-bridged")
    assert row["response_id"] == exchange.response_id


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_spent_run_cap_refuses_responses_before_they_are_sent(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    async with llm_toll.run("litellm-responses-capped", max_cost=1e-9):
        read(litellm.responses(**responses_request(replay, stream=stream)), stream)
        with pytest.raises(BudgetExceededError) as refused:
            litellm.responses(**responses_request(replay, stream=stream))
        with pytest.raises(BudgetExceededError):
            await litellm.aresponses(**responses_request(replay, stream=stream))
    assert refused.value.scope == "run"
    assert len(replay.requests) == 1  # the refused requests never reached the server
    assert len(store.get_usage_logs("litellm-responses-capped")) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_strict_lowers_a_responses_cap_to_what_the_budget_pays_for(
    litellm: Any, replay: ReplayServer, store: SQLiteStore, stream: bool
) -> None:
    budget = 0.004  # about 400 output tokens of gpt-4o
    sent_caps = []
    for project, asynchronous in (("litellm-strict", False), ("litellm-astrict", True)):
        replay.script(text=" ".join(f"word{n}" for n in range(1200)))  # more than the cap
        request = responses_request(replay, stream=stream, max_output_tokens=1000)
        async with llm_toll.run(project, max_budget=budget, strict=True):
            if asynchronous:
                await read_async(await litellm.aresponses(**request), stream)
            else:
                read(litellm.responses(**request), stream)
        lowered = replay.last.body["max_output_tokens"]
        tokens = replay.last.tokens
        assert tokens is not None and tokens.output_tokens == lowered  # the server kept to it
        sent_caps.append(lowered)
        [row] = store.get_usage_logs(project)
        assert row["cost_nanos"] == genai_prices_nanos(tokens, "gpt-4o", "openai")
        assert row["cost_nanos"] <= usd_to_nanos(budget)
        assert store.get_reserved(project, None, utc_now()) == 0
    assert all(0 < cap < 1000 for cap in sent_caps)


def test_a_strict_responses_stream_past_its_reservation_is_cut(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    """A provider that ignores the cap: the stream is cut once it runs past what was
    reserved, sync and async, and what came before the cut is recorded."""
    request = responses_request(replay, stream=True, max_output_tokens=5)
    replay.script(text=LONG_REPLY, ignore_cap=True)
    with (  # the error comes mid-stream, from the loop
        pytest.raises(BudgetExceededError, match="ran past"),
        llm_toll.run("litellm-responses-cut", max_budget=1.0, strict=True),
    ):
        for _ in litellm.responses(**request):
            pass

    async def asynchronous() -> None:
        replay.script(text=LONG_REPLY, ignore_cap=True)
        with pytest.raises(BudgetExceededError, match="ran past"):  # noqa: PT012 - mid-stream
            async with llm_toll.run("litellm-responses-acut", max_budget=1.0, strict=True):
                async for _ in await litellm.aresponses(**request):
                    pass

    asyncio.run(asynchronous())
    for project in ("litellm-responses-cut", "litellm-responses-acut"):
        [row] = store.get_usage_logs(project)
        assert row["output_tokens"] > 5


async def test_a_failed_responses_request_is_not_recorded_and_holds_nothing(
    litellm: Any, replay: ReplayServer, store: SQLiteStore
) -> None:
    """The provider's error comes out as LiteLLM maps it; the strict reservation made for
    the request is released, sync and async."""
    for asynchronous in (False, True):
        replay.script(status=500)
        with pytest.raises(litellm.InternalServerError) as failed:  # noqa: PT012
            async with llm_toll.run("litellm-responses-failing", max_budget=1.0, strict=True):
                if asynchronous:
                    await litellm.aresponses(**responses_request(replay))
                else:
                    litellm.responses(**responses_request(replay))
        assert failed.value.status_code == 500
    assert len(replay.requests) == 2
    worker.drain()  # an async request's failure is settled in the worker
    assert store.get_usage_logs("litellm-responses-failing") == []
    assert store.get_reserved("litellm-responses-failing", None, utc_now()) == 0
