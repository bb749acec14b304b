"""The SQLite budget store: one file shared by every thread and process of a machine.

One connection per process, guarded by a lock and opened on first use. Writes are
``BEGIN IMMEDIATE`` transactions, so a check and its write are atomic across processes; WAL
mode lets readers run alongside the single writer.

A file of llm-toll 0.13 is read as it is, and shared with 0.13 on the first write
(``_sqlite_v013``), so 0.13 processes using it keep working.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.periods import LIFETIME
from llm_toll._options import seconds_option
from llm_toll.store import _ledger, _totals
from llm_toll.store import _sqlite_v013 as v013
from llm_toll.store._breaker import Breaker
from llm_toll.store._compat import warn
from llm_toll.store._errors import SchemaError, StoreError
from llm_toll.store._errors import StoreWarning as StoreWarning  # an older import path
from llm_toll.store._reads import SQLITE_BUCKETS, Filters
from llm_toll.store._reports import ReportSQL
from llm_toll.store._sql import SQLStore, keep_inherited
from llm_toll.store._sqlite_files import backup_copy, create_private_file
from llm_toll.store._sqlite_newest import newest_rows
from llm_toll.store._sqlite_schema import Layout, migrate
from llm_toll.store._time import iso_utc
from llm_toll.store._totals import ScopeWrite
from llm_toll.store._transaction import Rows

V013_BACKUP_LABEL = "llm-toll-0.13-backup"
"""A file of llm-toll 0.13 is copied to ``<file>.llm-toll-0.13-backup-<UTC time>`` before
llm_toll first changes it."""

DB_PATH_ENV = "LLM_TOLL_DB"
DEFAULT_DB_NAME = ".llm_toll.db"
DEFAULT_BUSY_TIMEOUT_S = 10.0
_PAGE_SIZE = 2048
_SQLITE_BUSY = 5
_MIN_SQLITE_VERSION = (3, 35, 0)


def default_db_path() -> Path:
    """``$LLM_TOLL_DB`` if set, else ``~/.llm_toll.db``."""
    configured = os.environ.get(DB_PATH_ENV)
    return Path(configured).expanduser() if configured else Path.home() / DEFAULT_DB_NAME


class SQLiteStore(SQLStore):
    """Budget store in one SQLite file (default ``$LLM_TOLL_DB`` or ``~/.llm_toll.db``).

    The file is created readable by its owner only. ``busy_timeout_s`` is how long a write
    waits for another process's transaction before giving up with ``StoreError``. A file
    that cannot be opened is tried again with back-off (``_breaker``), not at every call; a
    locked one is waited for, as long as the busy timeout.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        if db_path is not None and not os.fspath(db_path):
            raise ValueError("db_path is empty; pass None for the default database")
        if db_path is not None and ".." in Path(db_path).parts:
            # As in llm-toll 0.13: a path taken from settings cannot climb out of a directory.
            raise ValueError(f"db_path must not contain '..' segments: {os.fspath(db_path)}")
        seconds_option("busy_timeout_s", busy_timeout_s, allow_zero=True, required=True)
        path = default_db_path() if db_path is None else Path(db_path).expanduser()
        # Absolute now, so a later chdir() cannot move the database.
        self._db_path = str(path.absolute())
        self._busy_timeout_s = float(busy_timeout_s)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._shared_with_v013 = False  # the ledger insert fills 0.13's cost column too
        self._v013_cookie: int | None = None  # reading 0.13's own file through TEMP views
        self._v013_backup: str | None = None
        self._breaker = Breaker()
        super().__init__()

    @property
    def db_path(self) -> str:
        return self._db_path

    @property
    def location(self) -> str:
        return self._db_path

    def __enter__(self) -> SQLiteStore:
        return self

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def upgrade_schema(self) -> str | None:
        """Bring the file's schema up to date now, as its first write would: a file of
        llm-toll 0.13 is shared with 0.13. Returns the path of the copy made before this
        store changed a 0.13 file, if it did."""
        super().upgrade_schema()
        return self._v013_backup

    # -- internals -------------------------------------------------------------------------

    # The ledger's one index with its time is (project, created_at): another one, on the
    # time alone, would cost every call's insert more than it saves the reads across
    # projects, which read that index per project instead.
    _sql = ReportSQL.for_backend("DATE(created_at)", buckets=SQLITE_BUCKETS, ranges_by_project=True)

    def _transaction(
        self, action: str, *, write: bool, atomic: bool = True, barrier: bool = True
    ) -> _Session:
        # Every write is BEGIN IMMEDIATE: SQLite writes one scope in several statements.
        return _Session(self, action, write=write, barrier=barrier)

    # Timestamps are ISO-8601 UTC text in SQLite.
    _time_param = staticmethod(iso_utc)

    def _limit_param(self, limit: int) -> object:
        return limit  # LIMIT -1: every row

    def _newest_rows(self, action: str, filters: Filters, limit: int) -> list[dict[str, Any]]:
        if filters.project is not None or filters.after_id is not None or limit < 0:
            # A project's rows: a range of the index. Rows after an id: a range of ids.
            # Every row: nothing to stop early for, the range is read and sorted.
            return super()._newest_rows(action, filters, limit)
        try:
            with self._transaction(action, write=False):
                conn = self._conn
                assert conn is not None  # opened by the transaction, which holds the lock
                return newest_rows(
                    conn, self._queries().ledger, filters, time_param=self._time_param, limit=limit
                )
        except StoreError as exc:
            warn(exc)
            return []

    def _connection(self, action: str) -> sqlite3.Connection:
        """The process's connection, opened on first use. The caller holds ``_lock``."""
        conn = self._conn
        if conn is None:
            reason = self._breaker.check()
            if reason is not None:
                raise self._error(action, reason)
            conn = self._conn = self._open()
        return conn

    def _open(self) -> sqlite3.Connection:
        if sqlite3.sqlite_version_info < _MIN_SQLITE_VERSION:
            raise self._error(
                "open",
                f"llm_toll needs SQLite {_MIN_SQLITE_VERSION[0]}.{_MIN_SQLITE_VERSION[1]} or "
                f"newer (for INSERT ... RETURNING); this Python has {sqlite3.sqlite_version}",
            )
        try:
            create_private_file(Path(self._db_path))
            conn = sqlite3.connect(
                self._db_path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            self._breaker.failed(str(exc))
            raise self._error("open", exc) from exc
        try:
            # Applies to a new file only. Each commit writes its few touched pages to the WAL;
            # 2048-byte pages measured 5-15 % faster per record_call than the 4096 default.
            conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            _enable_wal(conn, self._busy_timeout_s)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._follow_layout(conn, migrate(conn))
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error) and not _is_busy(exc):
                self._breaker.failed(str(exc))  # corrupt, unreadable: down; locked: not
            if isinstance(exc, (sqlite3.Error, SchemaError)):
                raise self._error("prepare", exc) from exc
            raise
        self._breaker.succeeded()
        return conn

    def _follow_layout(self, conn: sqlite3.Connection, layout: Layout) -> None:
        self._shared_with_v013 = layout is Layout.SHARED
        self._v013_cookie = v013.open_views(conn) if layout is Layout.V013 else None

    def _keep_up_with_v013(self, conn: sqlite3.Connection, *, write: bool) -> None:
        """On a file of 0.13 read through views: before a write, share it (after a backup);
        before a read, notice when another process has shared it."""
        if not write and v013.schema_cookie(conn) == self._v013_cookie:
            return  # still 0.13's own file: the views show it
        backups = self._v013_backup
        try:
            v013.drop_views(conn)
            self._follow_layout(conn, migrate(conn, backup=self._backup if write else None))
        except BaseException:
            # Neither the views nor the file's layout can be trusted: open anew next time.
            self._conn = None
            conn.close()
            raise
        if self._v013_backup != backups:  # this store shared the file just now
            with contextlib.suppress(Warning):  # a notice, never an error, whatever the filters
                warn(
                    f"{self._db_path} was written by llm-toll 0.13; llm_toll now shares it "
                    "with 0.13 (0.13 processes keep recording and enforcing the same "
                    f"budgets). A copy from before: {self._v013_backup}"
                )

    def _keeps_runs(self) -> bool:
        # A file of 0.13 read through views, not shared yet: a run's row or a refusal count
        # must not share it (the first recorded call does).
        with self._transaction("read the schema", write=False, barrier=False):
            return self._v013_cookie is None

    def _ledger_keeps_v013_cost(self) -> bool:
        return self._shared_with_v013

    def _backup(self) -> None:
        self._v013_backup = backup_copy(self._db_path, V013_BACKUP_LABEL)

    def _error(self, action: str, cause: object) -> StoreError:
        return StoreError(
            f"llm_toll store {self._db_path}: could not {action}: {cause}", path=self._db_path
        )

    def _forget_connections_after_fork(self) -> None:
        # The child must not use, nor close, the parent's connection: closing it could
        # checkpoint or delete the WAL under the parent. Keep it referenced, never touched.
        if self._conn is not None:
            keep_inherited(self._conn)
        self._conn = None
        self._lock = threading.Lock()
        self._breaker = Breaker()


class _Session:
    """Holds the store's lock around one use of its connection: the store's Transaction.

    With ``write=True`` the body runs in a ``BEGIN IMMEDIATE`` transaction that commits on
    success and rolls back on any exception. SQLite errors come out as ``StoreError``.
    With ``barrier=True`` (all but the hot write) it first waits for writes in flight.
    """

    __slots__ = ("_action", "_barrier", "_conn", "_store", "_write")

    def __init__(
        self, store: SQLiteStore, action: str, *, write: bool, barrier: bool = True
    ) -> None:
        self._store = store
        self._action = action
        self._write = write
        self._barrier = barrier

    def __enter__(self) -> _Session:
        store = self._store
        if self._barrier:  # before the lock: the writes waited for need it
            store.wait_for_writes()
        store._lock.acquire()
        try:
            conn = self._conn = store._connection(self._action)
            if store._v013_cookie is not None:
                store._keep_up_with_v013(conn, write=self._write)
            if self._write:
                conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            store._lock.release()
            if isinstance(exc, (sqlite3.Error, SchemaError)):
                raise store._error(self._action, exc) from exc
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        store = self._store
        conn = self._conn
        try:
            if exc is None and self._write:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as commit_error:
                    exc = commit_error
            if exc is not None:
                _rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise store._error(self._action, exc) from exc
        finally:
            store._lock.release()

    # -- Transaction ----------------------------------------------------------------------

    def run(self, sql: str, params: Sequence[object] = ()) -> Rows:
        return self._conn.execute(sql, params).fetchall()

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[object] = ()) -> tuple[list[str], Rows]:
        cursor = self._conn.execute(sql, params)
        rows = cursor.fetchall()
        return [column[0] for column in cursor.description], rows

    def lock(self, sql: str, params: Sequence[object] = ()) -> None:
        """Nothing to lock: ``BEGIN IMMEDIATE`` holds the file's write lock."""

    def add_to_scope(self, write: ScopeWrite) -> tuple[int, int]:
        """Statement by statement: each is a primary-key upsert in this process's file."""
        conn = self._conn
        if write.ledger_row is not None:
            row = _with_int_flags(write.ledger_row)
            if self._store._shared_with_v013:
                conn.execute(v013.LEDGER_INSERT, (*row, nanos_to_usd(write.cost)))
            else:
                conn.execute(_ledger.INSERT, row)
        lifetime = (write.project, write.key, LIFETIME, write.cost, write.now)
        if write.budget is None:
            (spent,) = conn.execute(_totals.ADD_TO_TOTAL, lifetime).fetchone()
            return spent, 0
        if write.period != LIFETIME:
            # The lifetime total is kept for every scope, whatever its budget period.
            conn.execute(_totals.ADD_TO_TOTAL, lifetime).fetchone()
        spent, fired = conn.execute(
            _totals.ADD_TO_BUDGET,
            (write.project, write.key, write.period, write.cost, write.limit, write.now),
        ).fetchone()
        return spent, fired


_FLAG_POSITIONS = tuple(
    i for i, column in enumerate(_ledger.COLUMNS) if column in _ledger.BOOLEAN_COLUMNS
)


def _with_int_flags(row: tuple[object, ...]) -> list[object]:
    """A ledger row with its booleans as 0 and 1, what SQLite stores for them anyway.

    sqlite3 binds a ``bool`` only after looking for an adapter, a failed lookup on a class
    that raises and clears an AttributeError each time: a few µs per call for two flags.
    """
    values = list(row)
    for i in _FLAG_POSITIONS:
        values[i] = 1 if values[i] else 0
    return values


def _enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch the file to WAL mode (a no-op once it is).

    When several processes open a fresh file at once, the switch can fail as busy without
    SQLite calling its busy handler, so it is retried here for as long as the busy timeout.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return "database is locked" in str(exc)
    return int(code) & 0xFF == _SQLITE_BUSY


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors (disk full, I/O); never leave one open.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
