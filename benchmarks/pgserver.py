"""A private PostgreSQL server for `make bench`, as tests/stores/conftest.py starts one.

``scripts/install-postgres.sh`` installs the server once; the cluster lives in a temporary
directory (owned by the ``postgres`` system user when running as root, since PostgreSQL
refuses to run as root), listens on 127.0.0.1 on a free port, with fsync off.
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUPERUSER = "postgres"
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "install-postgres.sh")],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
        )
        lines = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
        self.bin_dir = Path(lines["POSTGRES_BIN"])
        self.root = Path(tempfile.mkdtemp(prefix="llm-toll-bench-pg-"))
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.databases = 0
        self.user_kwargs: dict[str, Any] = {}
        owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(SUPERUSER)
            except KeyError:
                subprocess.run(
                    ["useradd", "--system", "--user-group", "--no-create-home", SUPERUSER],
                    check=True,
                )
                entry = pwd.getpwnam(SUPERUSER)
            owner = (entry.pw_uid, entry.pw_gid)
            self.user_kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        (self.root / "sock").mkdir()
        if owner is not None:
            for path in (self.root, self.root / "sock"):
                os.chown(path, *owner)
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                *("--pgdata", str(self.root / "data"), "--username", SUPERUSER),
                *("--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync"),
            ],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=READY_TIMEOUT_S,
            **self.user_kwargs,
        )

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Start the server: on a free port the first time, on the same one after stop()."""
        import psycopg

        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                *("-D", str(self.root / "data"), "-p", str(self.port), "-h", "127.0.0.1"),
                *("-k", str(self.root / "sock")),
                *("-c", "fsync=off", "-c", "synchronous_commit=off"),
                *("-c", "full_page_writes=off", "-c", "max_connections=200"),
            ],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **self.user_kwargs,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with code {self.process.returncode}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

    def create_database(self) -> str:
        import psycopg

        self.databases += 1
        name = f"llm_toll_bench_{self.databases}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        """Fast shutdown (clients are disconnected); start() brings it back, same data."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
