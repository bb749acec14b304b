"""The PostgreSQL budget store: one database shared by every process of every host.

Each process keeps a ``psycopg_pool.ConnectionPool``, opened on first use after the schema
was brought up to date over one connection of its own (so an unreachable server is reported
with libpq's own reason). Pooled connections are in autocommit mode: a read is one
statement, one round trip. ``record_call`` is one statement (ledger row, lifetime total and
period total), a transaction of its own; with a limit, whose thresholds it may have to
mark as fired, or with a budget key whose totals are updated too, the statements and the
marks run in one explicit transaction.

Concurrency: the running totals are upserted with ``INSERT ... ON CONFLICT DO UPDATE``, which
takes the row lock of (project, key, period) until the transaction commits, so concurrent
calls to one scope are serialised on that row, including the scope's very first call. Every
transaction locks a project's own rows before those of a key, and a scope's lifetime row
before its period row, so they cannot deadlock.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from llm_toll.budget import LIFETIME, period_key
from llm_toll.records import BudgetSpec, BudgetState, CallRecord, RateAdmission, Reservation
from llm_toll.store.common import (
    GET_RESERVED,
    PROJECT_KEY,
    Run,
    acquire_rate_in,
    as_dict,
    as_utc,
    budget_state,
    check_call,
    check_rate,
    check_reserve,
    check_settlement,
    release_in,
    reserve_in,
    scope_key,
    settle_rate_in,
    tracked_key,
    utc_now,
    warn,
)
from llm_toll.store.errors import StoreError
from llm_toll.store.migrations import SchemaError
from llm_toll.store.reports import ReportMethods, ReportSQL

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

    from llm_toll.store.postgres_migrations import migrate
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "the PostgreSQL store needs psycopg 3 and psycopg-pool: pip install 'llm-toll[postgres]'"
    ) from exc

DEFAULT_POOL_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
_PROBE_CONNECT_TIMEOUT_S = 2  # libpq's minimum
_POOL_CLOSE_TIMEOUT_S = 5.0

# -- SQL of the hot path: one statement per call, each row reached through a primary key ----
# The ledger insert rides along as a data-modifying CTE. In the statement with a period, the
# period's upsert reads from the lifetime upsert, so the lifetime row is always locked first.

_LEDGER = """
ledger AS (
    INSERT INTO usage_logs (
        project, model, provider, operation,
        input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens,
        reasoning_output_tokens, cost_nanos, price_known, estimated, budget_key, response_id,
        duration_s, created_at
    ) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
)
"""
_ADD_TO_TOTAL = """
INSERT INTO budget_totals AS t (project, budget_key, period, spent_nanos, updated_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (project, budget_key, period) DO UPDATE SET
    spent_nanos = t.spent_nanos + excluded.spent_nanos, updated_at = excluded.updated_at
RETURNING spent_nanos
"""
_ON_CONFLICT_ADD_TO_BUDGET = """
ON CONFLICT (project, budget_key, period) DO UPDATE SET
    spent_nanos = t.spent_nanos + excluded.spent_nanos,
    limit_nanos = excluded.limit_nanos,
    updated_at = excluded.updated_at
RETURNING spent_nanos, thresholds_fired
"""
_INSERT_BUDGET = """
INSERT INTO budget_totals AS t (project, budget_key, period, spent_nanos, limit_nanos, updated_at)
"""
# Each scope (the project's own totals, key '', or one budget key's) has three statements:
# lifetime total only; a lifetime budget; a period budget, which also adds to the lifetime
# total and reads from that upsert, so the lifetime row is always locked first. The
# project's statements carry the ledger insert as a data-modifying CTE.
# Parameters: [ledger row], (project, key, "all", cost, now).
_SCOPE_TOTAL = _ADD_TO_TOTAL
# Parameters: [ledger row], (project, key, "all", cost, limit, now).
_SCOPE_LIFETIME_BUDGET = f"""
{_INSERT_BUDGET} VALUES (%s, %s, %s, %s, %s, %s)
{_ON_CONFLICT_ADD_TO_BUDGET}
"""
# Parameters: [ledger row], (project, key, "all", cost, now), (project, key, period, cost,
# limit, now).
_SCOPE_PERIOD_BUDGET = f"""
{_INSERT_BUDGET} SELECT %s, %s, %s, %s, %s, %s FROM lifetime
{_ON_CONFLICT_ADD_TO_BUDGET}
"""
_RECORD = f"WITH {_LEDGER} {_SCOPE_TOTAL}"
_RECORD_LIFETIME_BUDGET = f"WITH {_LEDGER} {_SCOPE_LIFETIME_BUDGET}"
_RECORD_PERIOD_BUDGET = f"WITH {_LEDGER}, lifetime AS ({_ADD_TO_TOTAL}) {_SCOPE_PERIOD_BUDGET}"
_KEY_TOTAL = _SCOPE_TOTAL
_KEY_LIFETIME_BUDGET = _SCOPE_LIFETIME_BUDGET
_KEY_PERIOD_BUDGET = f"WITH lifetime AS ({_ADD_TO_TOTAL}) {_SCOPE_PERIOD_BUDGET}"
_SET_THRESHOLDS_FIRED = """
UPDATE budget_totals SET thresholds_fired = %s
WHERE project = %s AND budget_key = %s AND period = %s
"""
_LOCK_ROW = """
SELECT 1 FROM budget_totals WHERE project = %s AND budget_key = %s AND period = %s FOR UPDATE
"""
_GET_SPENT = """
SELECT spent_nanos FROM budget_totals WHERE project = %s AND budget_key = %s AND period = %s
"""

# Lock the project's rows in the order record_call does (the project's own before its keys',
# each scope's lifetime first), then zero them.
_LOCK_PROJECT_TOTALS = """
SELECT 1 FROM budget_totals WHERE project = %s
ORDER BY budget_key, period <> 'all', period FOR UPDATE
"""
_RESET_BUDGET = """
UPDATE budget_totals SET spent_nanos = 0, thresholds_fired = 0, last_reset_at = %s,
    updated_at = %s
WHERE project = %s
"""


class PostgresStore(ReportMethods):
    """Budget store in a PostgreSQL database, for many processes on many hosts.

    ``dsn`` is a libpq connection string or URL (``postgresql://user@host:5432/db``). The
    tables are created (or upgraded) on first use, in the first schema of the search path.
    Each process keeps a pool of ``pool_min`` to ``pool_max`` connections; a call that
    finds none free waits up to ``pool_timeout_s``, then fails with ``StoreError``.
    ``connect_timeout_s`` bounds each new connection, unless the DSN sets
    ``connect_timeout`` itself.
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ValueError("dsn must be a PostgreSQL connection string or URL")
        if type(pool_min) is not int or pool_min < 0:
            raise ValueError(f"pool_min must be an int >= 0, got {pool_min!r}")
        if type(pool_max) is not int or pool_max < max(pool_min, 1):
            raise ValueError(f"pool_max must be an int >= max(pool_min, 1), got {pool_max!r}")
        if not pool_timeout_s > 0:
            raise ValueError(f"pool_timeout_s must be > 0, got {pool_timeout_s!r}")
        if not connect_timeout_s > 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {connect_timeout_s!r}")
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            # libpq's message can quote the string, and so a password: not repeated here.
            raise ValueError(
                "dsn is not a valid PostgreSQL connection string or URL, such as "
                "postgresql://user@host:5432/dbname or 'host=... dbname=...'"
            ) from None
        self._dsn = dsn
        self._display = _display_name(params)
        # Applied unless the DSN says otherwise (keyword arguments override the DSN).
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = max(2, math.ceil(connect_timeout_s))
        if "application_name" not in params:
            self._connect_kwargs["application_name"] = "llm_toll"
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._pool_timeout_s = float(pool_timeout_s)
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._lock = threading.Lock()  # opening, replacing and closing the pool
        self._count_lock = threading.Lock()
        self._in_use = 0  # connections checked out by this store, for error messages
        _STORES.add(self)

    @property
    def dsn_display(self) -> str:
        """The database as shown in messages: ``postgresql://user@host:port/db``, no password."""
        return self._display

    def __enter__(self) -> PostgresStore:
        return self

    # -- hot path --------------------------------------------------------------------------

    def record_call(
        self,
        call: CallRecord,
        budget: BudgetSpec | None = None,
        key_budget: BudgetSpec | None = None,
    ) -> BudgetState:
        check_call(call, budget, key_budget)
        with self._session("record a call", barrier=False) as conn:
            if tracked_key(call, key_budget) is None and (
                budget is None or budget.limit_nanos is None
            ):
                # No threshold to fire: one statement is enough.
                sql, params, period, _ = _call_statement(call, budget)
                spent = _one(conn.execute(sql, params))[0]
                return BudgetState(spent, None, period)
            with conn.transaction():
                return _record_in(conn, call, budget, key_budget)

    def reserve(
        self,
        project: str,
        budget_key: str | None,
        spec: BudgetSpec,
        at: datetime,
        amount_nanos: int,
        ttl_s: float,
        key_spec: BudgetSpec | None = None,
    ) -> Reservation | None:
        key = check_reserve(budget_key, spec, amount_nanos, ttl_s, key_spec)
        with self._session("reserve budget", barrier=False) as conn, conn.transaction():
            return reserve_in(
                _runner(conn), project, key, spec, key_spec, at, amount_nanos, ttl_s, as_utc
            )

    def settle_reservation(self, reservation: Reservation, call: CallRecord) -> BudgetState:
        check_settlement(reservation, call)
        check_call(call, reservation.spec, reservation.key_spec)
        with self._session("record a call", barrier=False) as conn, conn.transaction():
            # record_call's rows first (lifetime, then period): the lock order of every write.
            state = _record_in(conn, call, reservation.spec, reservation.key_spec)
            release_in(_runner(conn), reservation)
            return state

    def release_reservation(self, reservation: Reservation) -> None:
        with self._session("release a reservation", barrier=False) as conn, conn.transaction():
            # The project's row of the period first, as reserve() takes it.
            conn.execute(
                _LOCK_ROW, (reservation.project, PROJECT_KEY, reservation.period)
            ).fetchall()
            release_in(_runner(conn), reservation)

    def acquire_rate(
        self,
        scope: str,
        rpm: int | None,
        tpm: int | None,
        estimated_tokens: int,
        now: float,
    ) -> RateAdmission:
        check_rate(scope, rpm, tpm, estimated_tokens, now, "estimated_tokens")
        with self._session("check a shared rate limit", barrier=False) as conn, conn.transaction():
            return acquire_rate_in(_runner(conn), scope, rpm, tpm, estimated_tokens, now)

    def settle_rate(self, scope: str, lease_id: int, actual_tokens: int, now: float) -> None:
        check_rate(scope, None, None, actual_tokens, now, "actual_tokens")
        with self._session("settle a shared rate limit", barrier=False) as conn, conn.transaction():
            settle_rate_in(_runner(conn), scope, lease_id, actual_tokens, now)

    def get_reserved(
        self, project: str, reset: str | None, at: datetime, budget_key: str | None = None
    ) -> int:
        period = period_key(reset, at)
        with self._session("read the budget") as conn:
            row = conn.execute(
                _pg(GET_RESERVED), (project, scope_key(budget_key), period)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def get_spent(
        self, project: str, reset: str | None, at: datetime, budget_key: str | None = None
    ) -> int:
        period = period_key(reset, at)
        with self._session("read the budget") as conn:
            row = conn.execute(_GET_SPENT, (project, scope_key(budget_key), period)).fetchone()
        return 0 if row is None else int(row[0])

    # -- llm-toll 0.13 API (log_usage & co. come from CompatMethods) -----------------------

    def reset_budget(self, project: str) -> None:
        now = utc_now()
        try:
            with self._session("reset the budget") as conn, conn.transaction():
                conn.execute(_LOCK_PROJECT_TOTALS, (project,))
                conn.execute(_RESET_BUDGET, (now, now, project))
        except StoreError as exc:
            warn(exc)

    def close(self) -> None:
        """Close the pool; the store opens a new one if it is used again."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=_POOL_CLOSE_TIMEOUT_S)

    # -- internals -------------------------------------------------------------------------

    _sql = ReportSQL.for_backend("%s", "(created_at AT TIME ZONE 'UTC')::date")

    def _time_param(self, at: datetime) -> object:
        return at

    def _limit_param(self, limit: int) -> object:
        return None if limit < 0 else limit  # LIMIT NULL: every row

    def _report(self, action: str, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """Rows of a read query as dicts; on a store failure a warning and no rows."""
        try:
            with self._session(action) as conn:
                cursor = conn.execute(sql, params)
                rows = cursor.fetchall()
                names = [column.name for column in cursor.description or ()]
        except StoreError as exc:
            warn(exc)
            return []
        return [as_dict(names, map(_as_sqlite_value, row)) for row in rows]

    @contextlib.contextmanager
    def _session(self, action: str, *, barrier: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for one use; database errors come out as ``StoreError``.

        With ``barrier=True`` (all but the hot write) it first waits for writes in flight.
        The connection is in autocommit mode: a ``conn.transaction()`` block commits or
        rolls back by itself, and the pool replaces a connection returned broken.
        """
        if barrier:
            self.wait_for_writes()
        pool, conn = self._checkout(action)
        try:
            yield conn
        except psycopg.Error as exc:
            raise self._error(action, _describe(exc)) from exc
        finally:
            with self._count_lock:
                self._in_use -= 1
            pool.putconn(conn)

    def _checkout(
        self, action: str
    ) -> tuple[ConnectionPool[psycopg.Connection[Any]], psycopg.Connection[Any]]:
        """A connection from the pool, waiting up to ``pool_timeout_s``; else ``StoreError``."""
        pool = self._pool or self._open_pool(action)
        try:
            return pool, self._getconn(pool)
        except PoolClosed:
            # Closed by close() in another thread, or replaced: use the store's pool now.
            pool = self._pool or self._open_pool(action)
        except PoolTimeout as exc:
            why = self._why_no_connection()
            if why is not None:
                raise self._error(action, why) from exc
            # The server accepts connections, and not all of ours are in use: the pool is
            # still waiting out its back-off after an outage. Start afresh, once.
            pool = self._replace_pool(pool, action)
        except psycopg.Error as exc:
            raise self._error(action, _describe(exc)) from exc
        try:
            return pool, self._getconn(pool)
        except (PoolClosed, PoolTimeout) as exc:
            why = self._why_no_connection() or (
                f"no database connection was free within {self._pool_timeout_s:g} s"
            )
            raise self._error(action, why) from exc
        except psycopg.Error as exc:
            raise self._error(action, _describe(exc)) from exc

    def _getconn(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
        """A live connection of ``pool``: those the server closed meanwhile are handed back.

        Checked here rather than by the pool's ``check``, which sleeps with back-off after
        each failed check: after a server restart every idle connection is dead at once.
        """
        deadline = time.monotonic() + self._pool_timeout_s
        while True:
            conn = pool.getconn(timeout=deadline - time.monotonic())
            if _still_connected(conn):
                break
            pool.putconn(conn)  # broken: the pool drops it and opens another
        with self._count_lock:
            self._in_use += 1
        return conn

    def _open_pool(self, action: str) -> ConnectionPool[psycopg.Connection[Any]]:
        with self._lock:
            if self._pool is not None:
                return self._pool
            # One connection of its own first: it applies the migrations, and if the server
            # cannot be reached its error says why (a pool would only time out).
            try:
                with psycopg.connect(self._dsn, **self._connect_kwargs) as conn:
                    migrate(conn)
            except psycopg.Error as exc:
                raise self._error(action, _describe(exc)) from exc
            except SchemaError as exc:
                raise self._error(action, exc) from exc
            pool = self._pool = self._new_pool()
            return pool

    def _new_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._dsn,
            kwargs=self._connect_kwargs,
            min_size=self._pool_min,
            max_size=self._pool_max,
            timeout=self._pool_timeout_s,
            name=f"llm_toll {self._display}",
            open=False,
        )
        pool.open(wait=False)
        return pool

    def _replace_pool(
        self, old: ConnectionPool[psycopg.Connection[Any]], action: str
    ) -> ConnectionPool[psycopg.Connection[Any]]:
        with self._lock:
            current = self._pool
            if current is old:
                current = self._pool = self._new_pool()
        if current is None:  # closed meanwhile: open again, as any use after close() does
            return self._open_pool(action)
        if current is not old:
            # Its connections in use are closed as they come back; its workers may be in
            # the middle of a connection attempt, so it is not waited for here.
            threading.Thread(
                target=old.close, kwargs={"timeout": _POOL_CLOSE_TIMEOUT_S}, daemon=True
            ).start()
        return current

    def _why_no_connection(self) -> str | None:
        """Why the pool had no connection within ``pool_timeout_s``; None if none is known.

        Either all of the pool's connections are in use, or the server refuses new ones
        (with libpq's reason). None: the server accepts connections and some are free.
        """
        waited = f"no database connection was free within {self._pool_timeout_s:g} s"
        with self._count_lock:
            in_use = self._in_use
        if in_use >= self._pool_max:
            return (
                f"{waited}: all {self._pool_max} connections of the pool were in use "
                "(raise pool_max or pool_timeout_s, or make fewer calls at once)"
            )
        kwargs = {**self._connect_kwargs, "connect_timeout": _PROBE_CONNECT_TIMEOUT_S}
        try:
            with psycopg.connect(self._dsn, **kwargs):
                return None
        except psycopg.Error as exc:
            return f"{waited}: the server does not accept connections: {_describe(exc)}"

    def _error(self, action: str, cause: object) -> StoreError:
        return StoreError(
            f"llm_toll store {self._display}: could not {action}: {cause}", path=self._display
        )

    def _forget_pool_after_fork(self) -> None:
        # The child must not use the parent's connections (they share the sockets), nor
        # close them: keep them referenced, never touched, and open a pool of its own.
        if self._pool is not None:
            _INHERITED_POOLS.append(self._pool)
        self._pool = None
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._in_use = 0


def _ledger_row(call: CallRecord) -> tuple[object, ...]:
    usage = call.usage
    return (
        call.project,
        call.model,
        call.provider,
        call.operation,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_output_tokens,
        call.cost_nanos,
        call.price_known,
        call.estimated,
        call.budget_key,
        call.response_id,
        call.duration_s,
        as_utc(call.started_at),
    )


def _call_statement(
    call: CallRecord, budget: BudgetSpec | None
) -> tuple[str, tuple[object, ...], str, int | None]:
    """The project's upsert of ``call``, with its ledger insert."""
    return _scope_statement(
        call.project,
        PROJECT_KEY,
        budget,
        call.started_at,
        call.cost_nanos,
        utc_now(),
        _ledger_row(call),
    )


def _record_in(
    conn: psycopg.Connection[Any],
    call: CallRecord,
    budget: BudgetSpec | None,
    key_budget: BudgetSpec | None,
) -> BudgetState:
    """The writes of ``record_call`` in the open transaction. The project's rows are locked
    before the key's, in every transaction."""
    project = call.project
    cost = call.cost_nanos
    sql, params, period, limit = _call_statement(call, budget)
    state = _add_to_scope(conn, sql, params, project, PROJECT_KEY, period, cost, limit)
    key = tracked_key(call, key_budget)
    if key is not None:
        key_sql, key_params, key_period, key_limit = _scope_statement(
            project, key, key_budget, call.started_at, cost, utc_now()
        )
        key_state = _add_to_scope(
            conn, key_sql, key_params, project, key, key_period, cost, key_limit
        )
        state = replace(state, key_state=key_state)
    return state


def _pg(sql: str) -> str:
    """A statement of ``common`` with PostgreSQL's placeholders."""
    return sql.replace("?", "%s")


def _runner(conn: psycopg.Connection[Any]) -> Run:
    def run(sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        cursor = conn.execute(_pg(sql), params)
        return cursor.fetchall() if cursor.description else []

    return run


def _scope_statement(
    project: str,
    key: str,
    budget: BudgetSpec | None,
    at: datetime,
    cost: int,
    now: datetime,
    ledger_row: tuple[object, ...] | None = None,
) -> tuple[str, tuple[object, ...], str, int | None]:
    """The upsert of one scope's totals: SQL, parameters, period and limit.

    With ``ledger_row`` the statement also inserts the call into the ledger.
    """
    ledger = () if ledger_row is None else ledger_row
    if budget is None:
        sql = _KEY_TOTAL if ledger_row is None else _RECORD
        return sql, (*ledger, project, key, LIFETIME, cost, now), LIFETIME, None
    limit = budget.limit_nanos
    period = period_key(budget.reset, at)
    if period == LIFETIME:
        sql = _KEY_LIFETIME_BUDGET if ledger_row is None else _RECORD_LIFETIME_BUDGET
        return sql, (*ledger, project, key, LIFETIME, cost, limit, now), period, limit
    # The lifetime total is kept for every scope, whatever its budget period.
    sql = _KEY_PERIOD_BUDGET if ledger_row is None else _RECORD_PERIOD_BUDGET
    params = (*ledger, project, key, LIFETIME, cost, now, project, key, period, cost, limit, now)
    return sql, params, period, limit


def _add_to_scope(
    conn: psycopg.Connection[Any],
    sql: str,
    params: tuple[object, ...],
    project: str,
    key: str,
    period: str,
    cost: int,
    limit: int | None,
) -> BudgetState:
    """Run a scope's upsert in the open transaction and mark thresholds it crossed."""
    row = _one(conn.execute(sql, params))
    if limit is None:
        return BudgetState(row[0], None, period)
    spent, fired = row
    state, mask = budget_state(spent, fired, cost, limit, period)
    if mask != fired:  # at most three times per period
        conn.execute(_SET_THRESHOLDS_FIRED, (mask, project, key, period))
    return state


def _one(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    if row is None:  # RETURNING of an upsert always has its row
        raise psycopg.InternalError("the upsert returned no row")
    return row


def _as_sqlite_value(value: object) -> object:
    """A value as the SQLite store returns it: SUMs as int, times as ISO 8601 UTC text."""
    if isinstance(value, Decimal):  # SUM(bigint) is numeric
        return int(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _still_connected(conn: psycopg.Connection[Any]) -> bool:
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


def _describe(exc: psycopg.Error) -> str:
    # libpq's messages span lines ("connection failed: ...\n\tIs the server running...").
    return " ".join(str(exc).split()) or type(exc).__name__


def _display_name(params: dict[str, Any]) -> str:
    """``postgresql://user@host:port/dbname`` from parsed conninfo, never the password."""
    user = params.get("user")
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port")
    dbname = params.get("dbname")
    name = "postgresql://"
    if user:
        name += f"{user}@"
    name += str(host) if port is None else f"{host}:{port}"
    if dbname:
        name += f"/{dbname}"
    return name


_STORES: weakref.WeakSet[PostgresStore] = weakref.WeakSet()
_INHERITED_POOLS: list[ConnectionPool[psycopg.Connection[Any]]] = []


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_pool_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
