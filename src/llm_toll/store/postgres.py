"""The PostgreSQL budget store: one database shared by every process of every host.

Pooled connections (``_pool``) are in autocommit mode: a read is one statement, one round
trip. A scope's running totals and the call's ledger row are written by one statement
(data-modifying CTEs), so ``record_call`` without a limit is one statement and one round
trip; with a limit, whose thresholds it may have to mark as fired, or with a budget key
whose totals are updated too, the statements run in one explicit transaction.

A database that holds llm-toll 0.13's tables is used as 0.13 uses it, and never changed
(``_postgres_v013``), so 0.13 processes sharing it keep working.

Concurrency: the running totals are upserted with ``INSERT ... ON CONFLICT DO UPDATE``, which
takes the row lock of (project, key, period) until the transaction commits, so concurrent
calls to one scope are serialised on that row, including the scope's very first call. Every
transaction locks a project's own rows before those of a key, and a scope's lifetime row
before its period row, so they cannot deadlock.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from llm_toll._budget.periods import LIFETIME
from llm_toll._options import count_option, seconds_option
from llm_toll.store import _ledger, _totals
from llm_toll.store._errors import StoreError
from llm_toll.store._reads import POSTGRES_BUCKETS
from llm_toll.store._reports import ReportSQL
from llm_toll.store._secrets import redact, redact_url, url_passwords
from llm_toll.store._sql import keep_inherited
from llm_toll.store._time import as_utc
from llm_toll.store._totals import ScopeWrite
from llm_toll.store._transaction import Rows

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from llm_toll.store._pool import Connection, Connections, describe
    from llm_toll.store._postgres_schema import migrate
    from llm_toll.store._postgres_v013 import OnV013Tables
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "the PostgreSQL store needs psycopg 3 and psycopg-pool: pip install 'llm-toll[postgres]'"
    ) from exc

DEFAULT_POOL_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0

# -- one statement per scope: the ledger insert and the lifetime upsert ride along as CTEs ----
# In the statements with a period, the period's upsert reads from the lifetime upsert, so the
# lifetime row is always locked first.
_LEDGER = f"ledger AS ({_ledger.INSERT})"
_PERIOD_FROM_LIFETIME = (
    f"lifetime AS ({_totals.ADD_TO_TOTAL}) {_totals.ADD_TO_BUDGET_INSERT} "
    f"SELECT ?, ?, ?, ?, ?, ? FROM lifetime {_totals.ADD_TO_BUDGET_CONFLICT}"
)
# (with the ledger row?, the budget's period) -> statement; see _Transaction.add_to_scope.
_TOTAL: Final = {False: _totals.ADD_TO_TOTAL, True: f"WITH {_LEDGER} {_totals.ADD_TO_TOTAL}"}
_LIFETIME_BUDGET: Final = {
    False: _totals.ADD_TO_BUDGET,
    True: f"WITH {_LEDGER} {_totals.ADD_TO_BUDGET}",
}
_PERIOD_BUDGET: Final = {
    False: f"WITH {_PERIOD_FROM_LIFETIME}",
    True: f"WITH {_LEDGER}, {_PERIOD_FROM_LIFETIME}",
}


class PostgresStore(OnV013Tables):
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
        count_option("pool_min", pool_min, minimum=0, required=True)
        count_option("pool_max", pool_max, minimum=max(pool_min, 1), required=True)
        seconds_option("pool_timeout_s", pool_timeout_s, required=True)
        seconds_option("connect_timeout_s", connect_timeout_s, required=True)
        params = parse_dsn(dsn)
        # The password, in every form the DSN holds it: libpq may even have read a piece
        # of a malformed one as the port or the database name.
        self._secrets = (*url_passwords(dsn), params.get("password"))
        self._display = redact(_display_name(params), *self._secrets)
        # Applied unless the DSN says otherwise (keyword arguments override the DSN).
        connect_kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            connect_kwargs["connect_timeout"] = max(2, math.ceil(connect_timeout_s))
        if "application_name" not in params:
            connect_kwargs["application_name"] = "llm_toll"
        self._v013_tables: bool | None = None  # known once the database is first reached
        self._connections = Connections(
            dsn,
            connect_kwargs=connect_kwargs,
            name=f"llm_toll {self._display}",
            pool_min=pool_min,
            pool_max=pool_max,
            pool_timeout_s=float(pool_timeout_s),
            prepare=self._prepare,
            error=self._error,
        )
        super().__init__()

    @property
    def dsn_display(self) -> str:
        """The database as shown in messages: ``postgresql://user@host:port/db``, no password."""
        return self._display

    @property
    def location(self) -> str:
        return self._display

    def __enter__(self) -> PostgresStore:
        return self

    def close(self) -> None:
        """Close the pool; the store opens a new one if it is used again."""
        self._connections.close()

    def _prepare(self, conn: Connection) -> None:
        self._v013_tables = migrate(conn)

    # -- internals -------------------------------------------------------------------------

    _sql = ReportSQL.for_backend("(created_at AT TIME ZONE 'UTC')::date", buckets=POSTGRES_BUCKETS)

    @contextlib.contextmanager
    def _transaction(
        self, action: str, *, write: bool, atomic: bool = True, barrier: bool = True
    ) -> Iterator[_Transaction]:
        """A pooled connection for one use; database errors come out as ``StoreError``.

        The connection is in autocommit mode: a write runs in a ``conn.transaction()``
        block, which commits or rolls back by itself, unless it is not ``atomic`` (one
        statement). The pool replaces a connection returned broken.
        """
        if barrier:
            self.wait_for_writes()
        pool, conn = self._connections.checkout(action)
        try:
            if write and atomic:
                with conn.transaction():
                    yield _Transaction(conn)
            else:
                yield _Transaction(conn)
        except psycopg.Error as exc:
            raise self._error(action, describe(exc)) from exc
        finally:
            self._connections.checkin(pool, conn)

    def _time_param(self, at: datetime) -> object:
        return as_utc(at)

    def _limit_param(self, limit: int) -> object:
        return None if limit < 0 else limit  # LIMIT NULL: every row

    def _error(self, action: str, cause: object) -> StoreError:
        # Every error of the store and its pool is made here: libpq's text never shows the
        # password, even where it quotes what it was given.
        cause = redact(str(cause), *self._secrets)
        return StoreError(
            f"llm_toll store {self._display}: could not {action}: {cause}", path=self._display
        )

    def _forget_connections_after_fork(self) -> None:
        # The child must not use the parent's connections (they share the sockets), nor
        # close them: keep them referenced, never touched, and open a pool of its own.
        keep_inherited(self._connections.forget_after_fork())


class _Transaction:
    """A pooled connection in use, as the SQL store's Transaction."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[object] = ()) -> Rows:
        cursor = self._conn.execute(_pg(sql), params)
        return cursor.fetchall() if cursor.description else []

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._conn.cursor().executemany(_pg(sql), rows)  # pipelined: one round trip

    def query(self, sql: str, params: Sequence[object] = ()) -> tuple[list[str], Rows]:
        cursor = self._conn.execute(_pg(sql), params)
        rows = cursor.fetchall()
        names = [column.name for column in cursor.description or ()]
        return names, [tuple(map(_as_sqlite_value, row)) for row in rows]

    def lock(self, sql: str, params: Sequence[object] = ()) -> None:
        self._conn.execute(_pg(f"{sql} FOR UPDATE"), params).fetchall()

    def add_to_scope(self, write: ScopeWrite) -> tuple[int, int]:
        """One statement: the ledger row (with the project's scope), the lifetime total and
        the budget's period total."""
        ledger = write.ledger_row or ()
        with_ledger = write.ledger_row is not None
        lifetime = (write.project, write.key, LIFETIME, write.cost)
        if write.budget is None:
            sql = _TOTAL[with_ledger]
            [(spent,)] = self.run(sql, (*ledger, *lifetime, write.now))
            return spent, 0
        if write.period == LIFETIME:
            sql = _LIFETIME_BUDGET[with_ledger]
            params = (*ledger, *lifetime, write.limit, write.now)
        else:
            # The lifetime total is kept for every scope, whatever its budget period.
            sql = _PERIOD_BUDGET[with_ledger]
            period = (write.project, write.key, write.period, write.cost, write.limit)
            params = (*ledger, *lifetime, write.now, *period, write.now)
        [(spent, fired)] = self.run(sql, params)
        return spent, fired


# Statements are written with '?' markers; psycopg takes '%s'. Converted once each.
_PG_SQL: dict[str, str] = {}


def _pg(sql: str) -> str:
    converted = _PG_SQL.get(sql)
    if converted is None:
        converted = _PG_SQL[sql] = sql.replace("?", "%s")
    return converted


def _as_sqlite_value(value: object) -> object:
    """A value as the SQLite store returns it: SUMs as int, times as ISO 8601 UTC text."""
    if isinstance(value, Decimal):  # SUM(bigint) is numeric
        return int(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def parse_dsn(dsn: object) -> dict[str, Any]:
    """The parameters of a libpq connection string or URL, parsed without connecting;
    ValueError, with libpq's reason and never the password, when it is not one."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ValueError(f"dsn must be a PostgreSQL connection string or URL, got {dsn!r}")
    reason: str | None
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        reason = redact(describe(exc), *url_passwords(dsn))
    else:
        reason = _unusable_value(params)
        if reason is None:
            return params
    raise ValueError(
        f"{redact_url(dsn)!r} is not a valid PostgreSQL connection string or URL "
        f"({reason}); it looks like "
        "postgresql://user@host:5432/dbname or 'host=... dbname=...'"
    )


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _unusable_value(params: dict[str, Any]) -> str | None:
    """What libpq would refuse only when it connects, found now: a port that is no port
    number, an unknown ``sslmode``. The value is not quoted: a password that libpq read
    as the port (an unencoded '/' in it) would be."""
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            return "its port is not a number from 1 to 65535"
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in _SSLMODES:
        return f"sslmode must be one of {', '.join(_SSLMODES)}"
    return None


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
