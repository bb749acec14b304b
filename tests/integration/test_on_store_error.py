"""``on_store_error=``: what a call does when the budget store is down before it, through
every entry point (``@track_costs`` sync and async, ``llm_toll.run``, ``instrument``, the
framework callbacks, strict requests), with real SDK requests to the replay server.

A down SQLite store is a file that cannot be opened; a down PostgreSQL store is a real server
of the test's own, stopped and started again behind a proxy that counts connections. The
stores' breaker runs on the test's clock, so a recheck comes when the test moves it.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.callbacks import CallbackManager

import llm_toll
from llm_toll import (
    BudgetExceededError,
    LangChainCallback,
    LiteLLMCallback,
    _runtime,
    track_costs,
)
from llm_toll._warnings import forget_warnings
from llm_toll._worker import worker
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import BaseStore, SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES
from tests.stores.conftest import PostgresServer, open_store, start_postgres_server
from tests.support.breaker_clock import BreakerClock, freeze_breaker_clock
from tests.support.otel import Telemetry
from tests.support.tcp_proxy import CountingProxy

ALLOWED = "the call is allowed without a budget check"
REFUSED = "on_store_error='refuse'"
A_DAY = 86_400.0  # moves the breaker's clock past any back-off


@dataclass
class DownStore:
    """The process's store, on a file that cannot be opened until ``repair()``."""

    store: SQLiteStore
    folder: Path
    clock: BreakerClock

    def repair(self) -> None:
        if self.folder.is_file():
            self.folder.unlink()
            self.folder.mkdir()
        self.clock.advance(A_DAY)  # the next operation rechecks


@pytest.fixture
def down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DownStore]:
    clock = freeze_breaker_clock(monkeypatch)
    folder = tmp_path / "ledgers"
    folder.write_text("a file, where the database's directory should be")
    store = SQLiteStore(folder / "ledger.db")
    llm_toll.set_store(store)
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    forget_warnings()
    down = DownStore(store, folder, clock)
    try:
        yield down
    finally:
        # Records kept while it was down are written now: none is left to later tests.
        worker.wait_idle()
        down.repair()
        flushed = _runtime.writer().force_flush()
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)
        store.close()
        assert flushed


def ask(client: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def assert_store_refusal(error: BudgetExceededError, project: str) -> None:
    assert error.scope == "store"
    assert error.project == project
    assert REFUSED in str(error)
    assert "File exists" in str(error)  # the store's own reason


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["deny", "ALLOW", "", 1, True])
def test_a_wrong_value_is_refused_where_it_is_given(value: Any) -> None:
    message = f"on_store_error must be 'allow' or 'refuse', got {value!r}"
    with pytest.raises(ValueError, match=message):
        track_costs(project="p", on_store_error=value)
    with pytest.raises(ValueError, match=message):
        llm_toll.run("p", on_store_error=value)
    with pytest.raises(ValueError, match=message):
        llm_toll.instrument("p", on_store_error=value)
    with pytest.raises(ValueError, match=message):
        LiteLLMCallback(project="p", on_store_error=value)
    with pytest.raises(ValueError, match=message):
        LangChainCallback(project="p", on_store_error=value)


# -- a down store, each entry point ---------------------------------------------------------


def test_allow_goes_ahead_unchecked_and_loses_nothing(
    down: DownStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="down-allow", max_budget=1.0)  # on_store_error="allow": the default
    def answer() -> str:
        return str(ask(openai_client).choices[0].message.content)

    with pytest.warns(AccountingWarning, match=f"read the budget of 'down-allow'.*{ALLOWED}"):
        answers = [answer() for _ in range(3)]
    assert all(answers)
    assert len(replay.requests) == 3
    down.repair()
    answer()  # the store is back: this call's record, and the three kept, are written
    assert _runtime.writer().force_flush()
    assert len(down.store.get_usage_logs("down-allow")) == 4


def test_refuse_raises_before_anything_is_sent(
    down: DownStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    @track_costs(project="down-refuse", max_budget=1.0, on_store_error="refuse")
    def answer() -> str:
        return str(ask(openai_client).choices[0].message.content)

    for _ in range(3):
        with pytest.raises(BudgetExceededError) as refused:
            answer()
        assert_store_refusal(refused.value, "down-refuse")
    assert replay.requests == []
    spans = telemetry.requests()
    assert len(spans) == 3
    for span in spans:
        assert (span.attributes or {})["error.type"] == "BudgetExceededError"
        assert span.events == ()  # not a spent budget: no llm_toll.budget.exceeded event
    down.repair()
    assert answer()  # back: checked and recorded as usual
    assert len(down.store.get_usage_logs("down-refuse")) == 1


async def test_async_calls_follow_the_option(
    down: DownStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    @track_costs(project="down-async-refuse", max_budget=1.0, on_store_error="refuse")
    async def refused() -> Any:
        return await ask(async_openai_client)

    @track_costs(project="down-async-allow", max_budget=1.0)
    async def allowed() -> Any:
        return await ask(async_openai_client)

    outcomes = await asyncio.gather(*(refused() for _ in range(8)), return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, BudgetExceededError)
        assert_store_refusal(outcome, "down-async-refuse")
    assert replay.requests == []
    with pytest.warns(AccountingWarning, match=ALLOWED):
        answers = await asyncio.gather(*(allowed() for _ in range(8)))
    assert len(answers) == len(replay.requests) == 8
    down.repair()
    await allowed()
    worker.wait_idle()
    assert _runtime.writer().force_flush()
    assert len(down.store.get_usage_logs("down-async-allow")) == 9


def test_a_run_block_and_instrument_follow_the_option(
    down: DownStore, replay: ReplayServer, openai_client: Any
) -> None:
    refusing = llm_toll.run("down-run", max_budget=1.0, on_store_error="refuse")
    with pytest.raises(BudgetExceededError) as refused, refusing:
        ask(openai_client)
    assert_store_refusal(refused.value, "down-run")
    llm_toll.instrument("down-instrument", max_budget=1.0, on_store_error="refuse")
    try:
        with pytest.raises(BudgetExceededError) as refused:
            ask(openai_client)  # outside any run: the process's
        assert_store_refusal(refused.value, "down-instrument")
    finally:
        llm_toll.uninstrument()
        llm_toll.instrument()  # the hooks back on, for the tests that follow
    assert replay.requests == []
    with pytest.warns(AccountingWarning, match=ALLOWED), llm_toll.run("down-run-2", max_budget=1.0):
        ask(openai_client)
    assert len(replay.requests) == 1


def test_the_framework_callbacks_follow_the_option(down: DownStore) -> None:
    refusing = LangChainCallback(project="down-lc", max_budget=1.0, on_store_error="refuse")
    manager = CallbackManager(handlers=[refusing])
    with pytest.raises(BudgetExceededError) as refused:
        manager.on_llm_start({"name": "fake"}, ["hello"], run_id=uuid4())
    assert_store_refusal(refused.value, "down-lc")
    litellm = LiteLLMCallback(project="down-litellm", max_budget=1.0, on_store_error="refuse")
    with pytest.raises(BudgetExceededError) as refused:
        litellm.log_pre_api_call("gpt-4o", MESSAGES, {})
    assert_store_refusal(refused.value, "down-litellm")
    allowing = LiteLLMCallback(project="down-litellm-allow", max_budget=1.0)
    with pytest.warns(AccountingWarning, match=ALLOWED):
        allowing.log_pre_api_call("gpt-4o", MESSAGES, {})


def test_strict_refuses_by_default_and_sends_unreserved_when_allowed(
    down: DownStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    @track_costs(project="down-strict", max_budget=1.0, strict=True)
    def strict_default() -> Any:
        return ask(openai_client)

    @track_costs(project="down-strict-allow", max_budget=1.0, strict=True, on_store_error="allow")
    def strict_allowed() -> Any:
        return ask(openai_client)

    with pytest.raises(BudgetExceededError) as refused:
        strict_default()
    assert_store_refusal(refused.value, "down-strict")
    assert replay.requests == []
    with pytest.warns(AccountingWarning, match="reserve budget for 'down-strict-allow'"):
        strict_allowed()
    assert len(replay.requests) == 1
    [span] = telemetry.requests()[-1:]
    assert (span.attributes or {})["llm_toll.strict.reserved"] == 0.0  # nothing was reserved
    down.repair()
    strict_allowed()
    assert _runtime.writer().force_flush()
    assert len(down.store.get_usage_logs("down-strict-allow")) == 2


# -- PostgreSQL stopped and started again ------------------------------------------------------


@dataclass
class Fleet:
    """The process's store on a PostgreSQL server of the test's own, behind a proxy."""

    server: PostgresServer
    proxy: CountingProxy
    store: BaseStore
    clock: BreakerClock


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    clock = freeze_breaker_clock(monkeypatch)
    server = start_postgres_server()
    proxy: CountingProxy | None = None
    store: BaseStore | None = None
    try:
        direct = server.create_database()
        proxy = CountingProxy(server.port)
        dsn = direct.replace(f":{server.port}/", f":{proxy.port}/")
        store = open_store("postgres", dsn, pool_timeout_s=3600)  # never waited for here
        llm_toll.set_store(store)
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
        forget_warnings()
        yield Fleet(server, proxy, store, clock)
    finally:
        worker.wait_idle()
        if server.process is None:
            server.start()
        clock.advance(A_DAY)
        flushed = _runtime.writer().force_flush()
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)
        if store is not None:
            store.close()
        if proxy is not None:
            proxy.close()
        server.remove()
        assert flushed


@pytest.mark.postgres
@pytest.mark.parametrize("policy", ["allow", "refuse"])
async def test_postgres_stopped_calls_are_not_kept_waiting_and_back_at_the_recheck(
    fleet: Fleet,
    replay: ReplayServer,
    openai_client: Any,
    async_openai_client: Any,
    policy: str,
) -> None:
    project = f"pg-down-{policy}"

    option: Any = policy

    @track_costs(project=project, max_budget=1.0, on_store_error=option)
    def sync_call() -> Any:
        return ask(openai_client)

    @track_costs(project=project, max_budget=1.0, on_store_error=option)
    async def async_call() -> Any:
        return await ask(async_openai_client)

    @track_costs(project=f"{project}-warm-up")
    def warm_up() -> Any:
        return ask(openai_client)

    # The pool has its connections. (Another project: a call of this one would have its
    # budget's total from the last second, and would not read the store.)
    await asyncio.to_thread(warm_up)
    fleet.server.stop()
    fleet.proxy.wait_dropped()

    def outage_calls() -> list[object]:
        outcomes: list[object] = []
        for _ in range(3):
            try:
                outcomes.append(sync_call())
            except BudgetExceededError as refused:
                outcomes.append(refused)
        return outcomes

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        first = await asyncio.to_thread(outage_calls)  # finds the server down
        tried = fleet.proxy.connects
        later = await asyncio.to_thread(outage_calls)
        later += await asyncio.gather(*(async_call() for _ in range(5)), return_exceptions=True)
        worker.wait_idle()
    # Found down once; then no call, nor its record, tried to connect before the recheck.
    assert fleet.proxy.connects == tried
    state = fleet.store._connections.breaker.state()  # type: ignore[attr-defined]
    assert state.down and state.failures == 1
    outcomes = first + later
    if policy == "refuse":
        for outcome in outcomes:
            assert isinstance(outcome, BudgetExceededError)
            assert outcome.scope == "store" and "does not accept connections" in str(outcome)
        assert len(replay.requests) == 1  # the call before the outage
    else:
        assert not any(isinstance(outcome, BaseException) for outcome in outcomes)
        assert len(replay.requests) == 12
        assert any(ALLOWED in str(w.message) for w in warned)
    assert _runtime.writer().force_flush() is (policy == "refuse")  # records kept, if any

    fleet.server.start()
    fleet.clock.advance(A_DAY)  # the next call rechecks
    sync_call()
    assert fleet.store._connections.breaker.state().down is False  # type: ignore[attr-defined]
    assert _runtime.writer().force_flush()
    made = 1 if policy == "refuse" else 1 + 11
    assert len(fleet.store.get_usage_logs(project, limit=100)) == made
    assert len(fleet.store.get_usage_logs(f"{project}-warm-up")) == 1
