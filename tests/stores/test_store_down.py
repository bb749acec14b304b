"""A store whose database is down fails at once, is tried again with back-off, and works
again at the first recheck after the database is back; a busy database is not down.

PostgreSQL: a server of the test's own, stopped and started again, behind a loopback proxy
that counts every connection the store makes. The breaker's clock is the test's
(``freeze_breaker_clock``): a recheck comes when the test moves it, so what is counted
between two rechecks is what the calls themselves tried.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_toll._budget.records import BudgetSpec
from llm_toll.store import SQLiteStore, StoreError, StoreWarning
from llm_toll.store._breaker import BreakerState
from tests.stores.conftest import PostgresServer, open_store, start_postgres_server
from tests.stores.helpers import DAILY, MONDAY, T0, TTL_S, all_logs, make_call
from tests.support.breaker_clock import BreakerClock, freeze_breaker_clock
from tests.support.tcp_proxy import CountingProxy

DOWN = "treated as down"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> BreakerClock:
    return freeze_breaker_clock(monkeypatch)


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start again."""
    server = start_postgres_server()
    try:
        yield server
    finally:
        server.remove()


def breaker_of(store: Any) -> BreakerState:
    if isinstance(store, SQLiteStore):
        return store._breaker.state()  # white box: what the store knows
    return store._connections.breaker.state()  # type: ignore[no-any-return]


def every_operation(store: Any) -> list[Callable[[], object]]:
    """One of each kind of store operation: the hot path's, strict, rate limits, 0.13's."""
    return [
        lambda: store.record_call(make_call(7), DAILY),
        lambda: store.get_spent("proj", "daily", MONDAY),
        lambda: store.reserve(
            "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=1, ttl_s=TTL_S
        ),
        lambda: store.acquire_rate("proj:f", rpm=10, tpm=None, estimated_tokens=0, now=T0),
    ]


@pytest.mark.postgres
def test_postgres_down_is_known_at_once_rechecked_with_back_off_and_back_at_once(
    own_server: PostgresServer, clock: BreakerClock
) -> None:
    direct = own_server.create_database()
    with CountingProxy(own_server.port) as proxy:
        dsn = direct.replace(f":{own_server.port}/", f":{proxy.port}/")
        # pool_timeout_s far beyond the test's own timeout: an operation that waited for the
        # pool anywhere in this test would fail it.
        store = open_store("postgres", dsn, pool_timeout_s=3600)
        try:
            assert store.record_call(make_call(1)).spent_nanos == 1
            own_server.stop()
            proxy.wait_dropped()  # the pool's connections are closed, as the server left them

            # Found down by the first operation: the pool's connection died with the server,
            # and the server, asked directly, refuses.
            with pytest.raises(StoreError, match="the server does not accept connections"):
                store.record_call(make_call(10))
            state = breaker_of(store)
            assert (state.down, state.failures, state.retry_in) == (True, 1, 0.5)
            tried = proxy.connects

            # Until the recheck, every operation fails at once: not one connection attempt.
            for _ in range(5):
                for operation in every_operation(store):
                    with pytest.raises(StoreError, match=DOWN) as failure:
                        operation()
                    assert "the server does not accept connections" in str(failure.value)
            with pytest.warns(StoreWarning, match=DOWN):
                assert store.get_total_cost("proj") == 0.0
            with pytest.warns(StoreWarning, match=DOWN):
                assert store.get_usage_logs("proj") == []
            assert proxy.connects == tried

            # The recheck: one connection attempt; refused, so it backs off twice as long.
            clock.advance(state.retry_in)
            with pytest.raises(StoreError, match="the server does not accept connections"):
                store.get_spent("proj", "daily", MONDAY)
            assert proxy.connects == tried + 1
            state = breaker_of(store)
            assert (state.failures, state.retry_in) == (2, 1.0)
            with pytest.raises(StoreError, match=DOWN):
                store.get_spent("proj", "daily", MONDAY)
            assert proxy.connects == tried + 1

            own_server.start()  # same port, same data
            # Back, but not tried before the next recheck: calls still fail at once.
            with pytest.raises(StoreError, match=DOWN):
                store.record_call(make_call(100))
            assert proxy.connects == tried + 1

            # The recheck finds it back: a new pool; the call records normally.
            clock.advance(state.retry_in)
            assert store.record_call(make_call(100)).spent_nanos == 101
            assert breaker_of(store).down is False
            assert store.record_call(make_call(1_000), DAILY).spent_nanos == 1_000
            assert store.get_spent("proj", None, MONDAY) == 1_101
            assert len(all_logs(store)) == 3  # the failed calls left nothing
        finally:
            store.close()


@pytest.mark.postgres
def test_postgres_server_that_was_never_up_is_down_from_the_first_operation(
    clock: BreakerClock,
) -> None:
    from tests.stores.conftest import free_port

    with CountingProxy(free_port()) as proxy:  # nothing listens behind it
        dsn = f"postgresql://postgres@127.0.0.1:{proxy.port}/nowhere"
        store = open_store("postgres", dsn, pool_timeout_s=3600)
        try:
            with pytest.raises(StoreError, match="the server does not accept connections"):
                store.record_call(make_call())
            assert proxy.connects == 1
            for _ in range(20):
                with pytest.raises(StoreError, match=DOWN):
                    store.get_spent("proj", None, MONDAY)
            assert proxy.connects == 1
            assert proxy.refused == 1
        finally:
            store.close()


def test_sqlite_file_that_cannot_be_opened_is_down_until_a_recheck_opens_it(
    tmp_path: Path, clock: BreakerClock
) -> None:
    folder = tmp_path / "ledgers"
    folder.write_text("a file, where the database's directory should be")
    db_path = folder / "ledger.db"
    with SQLiteStore(db_path) as store:
        with pytest.raises(StoreError, match="could not open: ") as failure:
            store.record_call(make_call(1))
        reason = str(failure.value).partition("could not open: ")[2]
        state = breaker_of(store)
        assert (state.down, state.failures, state.reason) == (True, 1, reason)

        folder.unlink()
        folder.mkdir()  # it could be opened now, but is not tried before the recheck
        for operation in every_operation(store):
            with pytest.raises(StoreError, match=DOWN) as failure:
                operation()
            assert reason in str(failure.value)
        with pytest.warns(StoreWarning, match=DOWN):
            store.log_usage("proj", "m", 1, 1, 0.5)
        assert not db_path.exists()  # opening it would have created it

        clock.advance(state.retry_in)
        assert store.record_call(make_call(5)).spent_nanos == 5
        assert breaker_of(store).down is False
    assert db_path.exists()


def test_sqlite_corrupt_file_is_down_and_says_why(tmp_path: Path, clock: BreakerClock) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database, just text " * 100)
    with SQLiteStore(path) as store:
        with pytest.raises(StoreError, match="not a database"):
            store.record_call(make_call())
        with pytest.raises(StoreError, match=f"not a database.*{DOWN}"):
            store.get_spent("proj", None, MONDAY)
        assert breaker_of(store).failures == 1


def test_sqlite_locked_database_is_waited_for_never_down(
    tmp_path: Path, clock: BreakerClock
) -> None:
    db_path = tmp_path / "ledger.db"
    with SQLiteStore(db_path) as store:
        store.record_call(make_call(1))
    other = sqlite3.connect(db_path, isolation_level=None)
    opened_while_locked = SQLiteStore(db_path, busy_timeout_s=0.05)
    in_use = SQLiteStore(db_path, busy_timeout_s=0.05)
    try:
        in_use.record_call(make_call(10))  # opened before the lock is taken
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match="locked"):
            opened_while_locked.record_call(make_call(100))
        with pytest.raises(StoreError, match="locked"):
            in_use.record_call(make_call(100), BudgetSpec(None, "daily"))
        other.execute("ROLLBACK")
        # Not down: with the breaker's clock standing still, the very next call goes through.
        for store in (opened_while_locked, in_use):
            assert breaker_of(store).down is False
        assert opened_while_locked.record_call(make_call(100)).spent_nanos == 111
        assert in_use.record_call(make_call(1_000)).spent_nanos == 1_111
    finally:
        other.close()
        opened_while_locked.close()
        in_use.close()
