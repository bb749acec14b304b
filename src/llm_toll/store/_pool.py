"""The PostgreSQL store's connections: a ``psycopg_pool`` pool per process, opened on first use
after the schema was brought up to date over one connection of its own (so an unreachable
server is reported with libpq's own reason), dead connections replaced, and a clear reason
when none can be had.

A server that refuses connections is known within a second: a checkout that finds no
connection within ``_ASK_SERVER_AFTER_S`` asks the server directly. Then the store's breaker
(``_breaker``) fails every operation at once, the pool (whose connections died) is closed,
and a new one is opened by the first recheck the server answers."""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from llm_toll.store._breaker import Breaker
from llm_toll.store._errors import SchemaError, StoreError

Connection = psycopg.Connection[Any]
Pool = ConnectionPool[Connection]

_PROBE_CONNECT_TIMEOUT_S = 2  # libpq's minimum
_POOL_CLOSE_TIMEOUT_S = 5.0
# A checkout that has had no connection for this long asks the server whether it is up.
_ASK_SERVER_AFTER_S = 0.5


class Connections:
    """The pool of one store in one process, and why it has no connection when it has none.

    ``prepare`` runs once over the first connection of each pool opened (the migrations).
    ``error(action, cause)`` makes the StoreError the store reports.
    """

    def __init__(
        self,
        dsn: str,
        *,
        connect_kwargs: dict[str, Any],
        name: str,
        pool_min: int,
        pool_max: int,
        pool_timeout_s: float,
        prepare: Callable[[Connection], None],
        error: Callable[[str, object], StoreError],
    ) -> None:
        self._dsn = dsn
        self._connect_kwargs = connect_kwargs
        self._name = name
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._pool_timeout_s = pool_timeout_s
        self._prepare = prepare
        self._error = error
        self._pool: Pool | None = None
        self._lock = threading.Lock()  # opening, replacing and closing the pool
        self._count_lock = threading.Lock()
        self._in_use = 0  # connections checked out, for error messages
        self.breaker = Breaker()

    def checkout(self, action: str) -> tuple[Pool, Connection]:
        """A connection from the pool, waiting up to ``pool_timeout_s``; else ``StoreError``.

        While the server is known to be down (see ``_breaker``), at once.
        """
        for _ in range(3):  # a pool closed or replaced meanwhile: again with the current one
            recheck = self.breaker.down
            reason = self.breaker.check()
            if reason is not None:
                raise self._error(action, reason)
            pool = self._pool or self._open(action, recheck=recheck)
            try:
                return pool, self._getconn(pool, action)
            except PoolClosed:
                continue
            except PoolTimeout as exc:
                why = self._why_no_connection(pool) or (
                    f"no database connection was free within {self._pool_timeout_s:g} s"
                )
                raise self._error(action, why) from exc
            except psycopg.Error as exc:
                raise self._error(action, describe(exc)) from exc
        raise self._error(action, "the connection pool was closed while waiting for it")

    def checkin(self, pool: Pool, conn: Connection) -> None:
        with self._count_lock:
            self._in_use -= 1
        pool.putconn(conn)

    def close(self) -> None:
        """Close the pool; the next checkout opens a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=_POOL_CLOSE_TIMEOUT_S)

    def forget_after_fork(self) -> Pool | None:
        """In a forked child: start with no pool; returns the parent's, never to be touched
        (its connections share the parent's sockets)."""
        pool, self._pool = self._pool, None
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._in_use = 0
        self.breaker = Breaker()
        return pool

    # -- internals -------------------------------------------------------------------------

    def _getconn(self, pool: Pool, action: str) -> Connection:
        """A live connection of ``pool``: those the server closed meanwhile are handed back.

        Checked here rather than by the pool's ``check``, which sleeps with back-off after
        each failed check: after a server restart every idle connection is dead at once.
        Without a connection after ``_ASK_SERVER_AFTER_S``, the server is asked whether it
        is up (once per checkout): ``StoreError`` at once if not.
        """
        deadline = time.monotonic() + self._pool_timeout_s
        asked = False
        while True:
            left = deadline - time.monotonic()
            try:
                conn = pool.getconn(timeout=left if asked else min(left, _ASK_SERVER_AFTER_S))
            except PoolTimeout:
                if asked or time.monotonic() >= deadline:
                    raise
                asked = True
                self._ask_server(pool, action)
                continue
            if _still_connected(conn):
                break
            pool.putconn(conn)  # broken: the pool drops it and opens another
        with self._count_lock:
            self._in_use += 1
        return conn

    def _ask_server(self, pool: Pool, action: str) -> None:
        """A checkout is kept waiting: is the server down (``StoreError``, the breaker
        trips), or is the pool still waiting out its back-off after an outage (replaced)?"""
        if self._all_in_use() is not None:
            return  # a busy pool, not a down server: wait on
        refusal = self._server_refusal()
        if refusal is not None:
            self._trip(pool, refusal)
            raise self._error(action, refusal)
        if pool.get_stats().get("connections_errors", 0):
            # The pool failed to connect earlier and waits out its own back-off, though
            # the server answers now: start afresh. The caller gets PoolClosed, then the
            # new pool.
            self._replace(pool, action)

    def _open(self, action: str, *, recheck: bool = False) -> Pool:
        """The pool, opened anew. ``recheck``: the breaker let this caller through to try
        a server found down (others found it down while they waited for the lock)."""
        with self._lock:
            if self._pool is not None:
                return self._pool
            reason = None if recheck else self.breaker.check()
            if reason is not None:
                raise self._error(action, reason)
            # One connection of its own first: it applies the migrations, and if the server
            # cannot be reached its error says why (a pool would only time out).
            try:
                conn = psycopg.connect(self._dsn, **self._connect_kwargs)
            except psycopg.Error as exc:
                refusal = _REFUSED + describe(exc)
                self.breaker.failed(refusal)
                raise self._error(action, refusal) from exc
            self.breaker.succeeded()
            try:
                with conn:
                    self._prepare(conn)
            except psycopg.Error as exc:
                raise self._error(action, describe(exc)) from exc
            except SchemaError as exc:
                raise self._error(action, exc) from exc
            pool = self._pool = self._new_pool()
            return pool

    def _new_pool(self) -> Pool:
        pool: Pool = ConnectionPool(
            self._dsn,
            kwargs=self._connect_kwargs,
            min_size=self._pool_min,
            max_size=self._pool_max,
            timeout=self._pool_timeout_s,
            name=self._name,
            open=False,
        )
        pool.open(wait=False)
        return pool

    def _replace(self, old: Pool, action: str) -> Pool:
        with self._lock:
            current = self._pool
            if current is old:
                current = self._pool = self._new_pool()
        if current is None:  # closed meanwhile: open again, as any use after close() does
            return self._open(action)
        if current is not old:
            # Its connections in use are closed as they come back; its workers may be in
            # the middle of a connection attempt, so it is not waited for here.
            threading.Thread(
                target=old.close, kwargs={"timeout": _POOL_CLOSE_TIMEOUT_S}, daemon=True
            ).start()
        return current

    def _trip(self, pool: Pool, refusal: str) -> None:
        """The server refuses connections: the breaker trips, and the pool goes (its
        connections died; its own reconnection attempts, with its back-off, would only
        keep trying in the background). The first recheck the server answers opens a new
        one."""
        self.breaker.failed(refusal)
        with self._lock:
            if self._pool is pool:
                self._pool = None
        # Closed here, not in the background: it makes no connection attempt afterwards.
        # Connections in use are closed as they come back.
        pool.close(timeout=_POOL_CLOSE_TIMEOUT_S)

    def _all_in_use(self) -> str | None:
        """Why a checkout waits when every connection of the pool is in use; else None."""
        with self._count_lock:
            in_use = self._in_use
        if in_use < self._pool_max:
            return None
        return (
            f"all {self._pool_max} connections of the pool were in use "
            "(raise pool_max or pool_timeout_s, or make fewer calls at once)"
        )

    def _server_refusal(self) -> str | None:
        """Why the server does not accept a connection now (libpq's reason); None if it
        does."""
        kwargs = {**self._connect_kwargs, "connect_timeout": _PROBE_CONNECT_TIMEOUT_S}
        try:
            with psycopg.connect(self._dsn, **kwargs):
                return None
        except psycopg.Error as exc:
            return _REFUSED + describe(exc)

    def _why_no_connection(self, pool: Pool) -> str | None:
        """Why the pool had no connection within ``pool_timeout_s``; None if none is known.

        Either all of the pool's connections are in use, or the server refuses new ones
        (the breaker trips). None: the server accepts connections and some are free.
        """
        waited = f"no database connection was free within {self._pool_timeout_s:g} s"
        busy = self._all_in_use()
        if busy is not None:
            return f"{waited}: {busy}"
        refusal = self._server_refusal()
        if refusal is None:
            return None
        self._trip(pool, refusal)
        return f"{waited}: {refusal}"


_REFUSED = "the server does not accept connections: "


def _still_connected(conn: Connection) -> bool:
    """Whether an idle connection of the pool still works, most often without a round trip.

    An idle connection has nothing to read unless the server spoke: a closed socket or a
    termination notice (server restart, ``pg_terminate_backend``). Only then is it asked.
    """
    if conn.closed or conn.broken:
        return False
    if not _input_pending(conn.fileno()):
        return True
    try:
        conn.execute("")  # reads what the server sent; fails if it closed the connection
    except psycopg.Error:
        return False
    return True


def _input_pending(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def describe(exc: psycopg.Error) -> str:
    # libpq's messages span lines ("connection failed: ...\n\tIs the server running...").
    return " ".join(str(exc).split()) or type(exc).__name__
