"""Bad input and failing parts: clear warnings, the call's result returned, nothing lost."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import _runtime, track_costs
from llm_toll._worker import worker
from llm_toll.exceptions import AccountingWarning, UsageWarning
from llm_toll.store import SQLiteStore
from llm_toll.usage import Usage
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import AsyncClosableStream, chat, chunks


def boom(response: Any) -> Any:
    raise RuntimeError("extractor bug")


@pytest.mark.parametrize(
    "extractor",
    [boom, lambda r: "garbage", lambda r: ("gpt-4o", -1, 5), lambda r: {"tokens": 3}],
    ids=["raises", "wrong-type", "negative", "unknown-keys"],
)
def test_broken_extract_usage_falls_back_to_detection(store: SQLiteStore, extractor: Any) -> None:
    @track_costs(project="robust-extract", extract_usage=extractor)
    def ask() -> dict[str, Any]:
        return chat(30, 7)

    with pytest.warns(UsageWarning, match="extract_usage"):
        assert ask() == chat(30, 7)
    [row] = store.get_usage_logs("robust-extract")
    assert (row["input_tokens"], row["output_tokens"]) == (30, 7)  # auto-detected instead


def test_a_raising_extract_usage_is_warned_about_in_013_words(store: SQLiteStore) -> None:
    @track_costs(project="robust-raise", extract_usage=boom)
    def ask() -> dict[str, Any]:
        return chat(30, 7)

    # llm-toll 0.13's wording, which warning filters written for it match
    with pytest.warns(UsageWarning, match="extract_usage callback raised an exception"):
        ask()


@pytest.mark.parametrize(
    "returned",
    [("my-model", 11, 4), {"input_tokens": 11, "output_tokens": 4, "model": "my-model"},
     Usage(11, 4)],
    ids=["tuple-0.13", "dict", "usage"],
)  # fmt: skip
def test_extract_usage_wins_over_detection(store: SQLiteStore, returned: Any) -> None:
    @track_costs(project="robust-custom", extract_usage=lambda response: returned)
    def ask() -> dict[str, Any]:
        return chat(999, 999)

    ask()
    [row] = store.get_usage_logs("robust-custom")
    assert (row["input_tokens"], row["output_tokens"]) == (11, 4)


def test_model_override_prices_and_names(store: SQLiteStore, telemetry: Telemetry) -> None:
    @track_costs(project="robust-model", model="gpt-4o-mini")
    def ask() -> dict[str, Any]:
        return chat(1000, 0, model="my-finetune-xyz")

    ask()
    [row] = store.get_usage_logs("robust-model")
    assert row["model"] == "gpt-4o-mini"
    assert row["cost_nanos"] == 150_000  # gpt-4o-mini: $0.15 per million input tokens
    assert telemetry.span().name == "chat gpt-4o-mini"


def test_result_without_usage_warns_and_records_nothing(store: SQLiteStore) -> None:
    @track_costs(project="robust-none")
    def ask() -> int:
        return 42

    with pytest.warns(UsageWarning, match="extract_usage="):
        assert ask() == 42
    assert store.get_usage_logs("robust-none") == []


def test_text_result_is_estimated(store: SQLiteStore) -> None:
    @track_costs(project="robust-text", model="gpt-4o")
    def ask(prompt: str) -> str:
        return "A reply of a few words."

    with pytest.warns(UsageWarning, match="estimated"):
        ask("What is the answer to everything?")
    [row] = store.get_usage_logs("robust-text")
    assert row["estimated"] and row["input_tokens"] > 0 and row["output_tokens"] > 0


def test_locked_database_keeps_records_until_writable(tmp_path: Path) -> None:
    db_path = tmp_path / "locked.db"
    store = SQLiteStore(db_path, busy_timeout_s=0.05)
    llm_toll.set_store(store)
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:

        @track_costs(project="robust-locked")
        def ask(n: int) -> dict[str, Any]:
            return chat(10 + n, 1)

        ask(0)  # creates the schema
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.warns(AccountingWarning, match="kept in the spill journal"):
            assert ask(1)["usage"]["prompt_tokens"] == 11  # the app is not broken
        ask(2)
        assert _runtime.writer().pending == 2
        blocker.execute("ROLLBACK")
        assert _runtime.writer().force_flush()  # the journal is written to the store now
        assert _runtime.writer().pending == 0
        ask(3)
        rows = store.get_usage_logs("robust-locked")
        assert sorted(r["input_tokens"] for r in rows) == [10, 11, 12, 13]
    finally:
        if blocker.in_transaction:  # a failed assert: the lock goes, the records with it
            blocker.execute("ROLLBACK")
            _runtime.writer().force_flush()
        blocker.close()
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)
        store.close()


async def handed_over(backlog: int) -> None:
    """Until one more job waits in the (blocked) worker: the call's write. The worker's
    queue has no event to await, so each turn of the loop looks once."""
    while worker.backlog == backlog:  # noqa: ASYNC110
        await asyncio.sleep(0)


async def test_cancelled_caller_does_not_lose_the_record(store: SQLiteStore) -> None:
    @track_costs(project="robust-cancel")
    async def ask(tokens: int) -> dict[str, Any]:
        return chat(tokens, 2)

    await ask(20)  # prices loaded: the next call's one job in the worker is its write
    hold = threading.Event()
    worker.submit(hold.wait)  # a busy worker: the call's write waits in its queue
    try:
        before = worker.backlog
        task = asyncio.create_task(ask(21))
        await handed_over(before)
        assert not task.done()  # the caller waits for its record to be durable...
        task.cancel()  # ...and is cancelled while waiting: the write still happens
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        hold.set()
    assert worker.drain(10)
    rows = store.get_usage_logs("robust-cancel")
    assert sorted((r["input_tokens"], r["output_tokens"]) for r in rows) == [(20, 2), (21, 2)]


async def test_writes_in_flight_land_in_the_store_of_their_call(
    store: SQLiteStore, tmp_path: Path
) -> None:
    @track_costs(project="robust-switch")
    async def ask(tokens: int) -> dict[str, Any]:
        return chat(tokens, 2)

    await ask(20)  # prices loaded: the next call's one job in the worker is its write
    hold = threading.Event()
    worker.submit(hold.wait)  # a busy worker: the call's write waits in its queue
    other = SQLiteStore(tmp_path / "other.db")
    try:
        before = worker.backlog
        task = asyncio.create_task(ask(21))
        await handed_over(before)
        llm_toll.set_store(other)  # while the write of the call is still queued
        hold.set()
        await task
        assert other.get_usage_logs("robust-switch") == []
        rows = store.get_usage_logs("robust-switch")
        assert sorted(r["input_tokens"] for r in rows) == [20, 21]
    finally:
        hold.set()
        llm_toll.set_store(store)
        other.close()


async def test_reads_after_an_async_call_see_it(store: SQLiteStore) -> None:
    @track_costs(project="robust-ryw")
    async def ask(n: int) -> dict[str, Any]:
        return chat(n, 1)

    for n in range(1, 51):
        await ask(n)
        # The write went to the worker thread; a read waits for it.
        assert len(store.get_usage_logs("robust-ryw", limit=100)) == n


async def test_async_stream_dropped_unread_is_settled(store: SQLiteStore) -> None:
    @track_costs(project="robust-agc")
    async def get_stream() -> AsyncClosableStream:
        return AsyncClosableStream(chunks())

    streams = [await get_stream()]

    def drop_unread() -> None:
        streams.clear()
        gc.collect()
        assert worker.drain(10)  # the finaliser hands settling to the worker

    with pytest.warns(UsageWarning, match="did not report usage"):
        drop_unread()
    assert len(store.get_usage_logs("robust-agc")) == 1


def test_prompt_text_never_reaches_telemetry(store: SQLiteStore, telemetry: Telemetry) -> None:
    secret = "my-very-private-prompt-text"

    @track_costs(project="robust-private")
    def ask(prompt: str) -> dict[str, Any]:
        response = chat()
        response["choices"][0]["message"]["content"] = secret
        return response

    ask(secret)
    for span in telemetry.spans():
        values = [*(span.attributes or {}).values(), span.name]
        values += [v for event in span.events for v in (event.attributes or {}).values()]
        assert all(secret not in str(value) for value in values)
