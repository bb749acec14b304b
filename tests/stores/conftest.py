"""Fixtures of the store conformance suite: a real PostgreSQL server and a store per backend.

``postgres_server`` (one per session) installs PostgreSQL if it is missing
(``scripts/install-postgres.sh``), creates a cluster in a temporary directory with
``initdb`` and runs ``postgres`` on 127.0.0.1 on a free port until the session ends. When
the tests run as root, the cluster belongs to the ``postgres`` system user, since PostgreSQL
refuses to run as root. If it cannot be installed or started, every test that needs it
fails with the reason: none is skipped.

``store_factory`` is parametrised over ``sqlite`` and ``postgres``: each test gets a fresh
SQLite file or a fresh PostgreSQL database, and opens as many stores on it as it likes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llm_toll.store import BaseStore, SQLiteStore

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-postgres.sh"
INSTALL_TIMEOUT_S = 15 * 60
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
START_ATTEMPTS = 3  # a free port is picked, then bound by the server: another may win
SERVER_USER = "postgres"  # created by Debian's package; used only when running as root
SUPERUSER = "postgres"  # the cluster's superuser role, trusted on loopback

BACKENDS = ("sqlite", "postgres")


class PostgresUnavailable(Exception):
    """PostgreSQL could not be installed or started; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no log: {error})"


# -- the server -------------------------------------------------------------------------------


def install_postgres() -> Path:
    """The directory of initdb and postgres, installing Debian's package when missing."""
    try:
        done = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PostgresUnavailable(
            f"`bash {INSTALL_SCRIPT.name}` did not finish within {INSTALL_TIMEOUT_S} s"
        ) from None
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"`bash scripts/install-postgres.sh` failed (exit {done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        if name == "POSTGRES_BIN" and value:
            return Path(value)
    raise PostgresUnavailable(f"install-postgres.sh printed no POSTGRES_BIN: {done.stdout!r}")


@dataclass
class ServerUser:
    """Who runs initdb and postgres: this process's user, or the postgres user under root."""

    name: str | None = None  # None: the current user
    uid: int = -1
    gid: int = -1

    @classmethod
    def for_this_process(cls) -> ServerUser:
        if os.geteuid() != 0:
            return cls()
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            created = subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", SERVER_USER],
                capture_output=True,
                text=True,
                check=False,
            )
            if created.returncode != 0:
                raise PostgresUnavailable(
                    f"running as root, and the system user {SERVER_USER!r} that PostgreSQL "
                    f"would run as could not be created: {created.stderr.strip()}"
                ) from None
            entry = pwd.getpwnam(SERVER_USER)
        return cls(SERVER_USER, entry.pw_uid, entry.pw_gid)

    def own(self, *paths: Path) -> None:
        if self.name is not None:
            for path in paths:
                os.chown(path, self.uid, self.gid)

    def popen_kwargs(self) -> dict[str, Any]:
        if self.name is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass
class PostgresServer:
    """A PostgreSQL server of the tests' own, on 127.0.0.1."""

    bin_dir: Path
    root: Path  # data/, sock/ and server.log
    user: ServerUser
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    databases: int = field(default=0)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    # -- life cycle ----------------------------------------------------------------------

    @classmethod
    def create(cls, bin_dir: Path) -> PostgresServer:
        """A new cluster in a temporary directory (initdb), not started yet."""
        user = ServerUser.for_this_process()
        # Not under pytest's tmp_path: its parents are private to root, and the server
        # runs as another user when the tests run as root.
        root = Path(tempfile.mkdtemp(prefix="llm-toll-pg-"))
        server = cls(bin_dir, root, user)
        (root / "sock").mkdir()
        user.own(root, root / "sock")
        init_log = root / "initdb.log"
        with init_log.open("wb") as log:
            user.own(init_log)
            code = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "--pgdata",
                    str(server.data_dir),
                    "--username",
                    SUPERUSER,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    "--no-sync",
                ],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=READY_TIMEOUT_S,
                **user.popen_kwargs(),
            ).returncode
        if code != 0:
            server.remove()
            raise PostgresUnavailable(f"initdb failed (exit {code}):\n{tail(init_log)}")
        return server

    def start(self) -> None:
        """Start the server on a free port and wait until it accepts connections."""
        problems: list[str] = []
        for _ in range(START_ATTEMPTS):
            self.port = self.port or free_port()
            try:
                self._start_once()
                return
            except PostgresUnavailable as problem:
                problems.append(str(problem))
                if "already in use" not in str(problem):
                    break
                self.port = 0
        raise PostgresUnavailable("\n".join(problems))

    def _start_once(self) -> None:
        with self.log_path.open("ab") as log:
            self.user.own(self.log_path)
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.root / "sock"),
                    # A test server: durability is not wanted, speed is.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the tests reaches the teardown only
                **self.user.popen_kwargs(),
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            code = self.process.poll()
            if code is not None:
                raise PostgresUnavailable(
                    f"postgres exited with code {code} at start:\n{tail(self.log_path)}"
                )
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError as error:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise PostgresUnavailable(
                        f"postgres did not accept connections within {READY_TIMEOUT_S} s "
                        f"({error}):\n{tail(self.log_path)}"
                    ) from None
            time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------

    def admin(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser on the ``postgres`` database."""
        return self.run(self.dsn(), sql, params)

    @staticmethod
    def run(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on ``dsn`` with a connection of its own, as another host would."""
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self) -> str:
        """A new, empty database; returns its DSN."""
        self.databases += 1
        name = f"llm_toll_test_{self.databases}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, dsn: str) -> None:
        name = dsn.rsplit("/", 1)[1]
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres_server() -> PostgresServer:
    """Install if needed, initdb and start; the caller removes it (``server.remove()``)."""
    server = PostgresServer.create(install_postgres())
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres_server()
    except PostgresUnavailable as problem:
        pytest.fail(f"PostgreSQL is needed by the store tests and is unavailable: {problem}")
    try:
        yield server
    finally:
        server.remove()


# -- stores -----------------------------------------------------------------------------------


def open_store(backend: str, location: str, **kwargs: Any) -> BaseStore:
    """A store of ``backend`` on ``location`` (SQLite file or PostgreSQL DSN).

    A plain function of a module, so that spawned processes can open the same store.
    """
    if backend == "sqlite":
        return SQLiteStore(location, **kwargs)
    if backend == "postgres":
        from llm_toll.store.postgres import PostgresStore

        return PostgresStore(location, **kwargs)
    raise ValueError(f"unknown backend {backend!r}")


@dataclass
class StoreFactory:
    """Opens stores of one backend on this test's database; closes them after the test."""

    backend: str
    location: str
    scratch: Path
    opened: list[BaseStore] = field(default_factory=list)

    def __call__(self, **kwargs: Any) -> BaseStore:
        store = open_store(self.backend, self.location, **kwargs)
        self.opened.append(store)
        return store

    def unreachable(self) -> BaseStore:
        """A store whose database cannot be opened or reached at all."""
        if self.backend == "sqlite":
            not_a_directory = self.scratch / "not-a-directory"
            not_a_directory.write_text("a file, where the database's directory should be")
            location = str(not_a_directory / "ledger.db")
            store = open_store("sqlite", location)
        else:
            dsn = f"postgresql://{SUPERUSER}@127.0.0.1:{free_port()}/nowhere"
            store = open_store("postgres", dsn, pool_timeout_s=1.0, connect_timeout_s=2)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    backend = request.param
    server: PostgresServer | None = None
    if backend == "sqlite":
        location = str(tmp_path / "ledger.db")
    else:
        server = request.getfixturevalue("postgres_server")
        location = server.create_database()
    factory = StoreFactory(backend, location, tmp_path)
    try:
        yield factory
    finally:
        factory.close_all()
        if server is not None:
            server.drop_database(location)


@pytest.fixture
def store(store_factory: StoreFactory) -> BaseStore:
    """One store on this test's fresh database, of each backend in turn."""
    return store_factory()
