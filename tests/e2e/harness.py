"""Running the stack's servers and talking to them over HTTP. A ``Service`` is one server
process on 127.0.0.1, run from a directory of its own with its stdout and stderr in
``<name>.log``; ``start_all`` starts several and waits until each is ready. Nothing here
sleeps for a fixed time: readiness and results are polled against deadlines, and a
failure message carries the tail of the log of the service concerned."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
START_ATTEMPTS = 3  # free ports are picked, then bound by the server: another may win

T = TypeVar("T")


class StackError(Exception):
    """A binary could not be built, or a service started or reached; the message says why."""


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours without OTEL_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env


# --- HTTP -----------------------------------------------------------------------------


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of a GET; an HTTP error status is returned, a connection error raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        return http_get(url, timeout)[0]
    except OSError:
        return None


def get_json(url: str, params: Mapping[str, str] | None = None, timeout: float = 10.0) -> Any:
    if params:
        url += "?" + urllib.parse.urlencode(params)
    status, body = http_get(url, timeout)
    if status != 200:
        raise StackError(f"GET {url} answered {status}: {body[:500]!r}")
    return json.loads(body)


def port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (all held at once, so that they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def eventually(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    timeout: float,
    interval: float = 0.25,
) -> T:
    """Calls ``probe`` until ``done(result)`` or the deadline, and returns the last result.

    The caller asserts on what is returned, so that a timeout fails with the last values
    seen. Connection errors are retried; if the probe never answered, the last one is raised.
    """
    deadline = time.monotonic() + timeout
    result: T
    answered = False
    last_error: OSError | None = None
    while True:
        try:
            result = probe()
            answered = True
            if done(result):
                return result
        except OSError as error:  # a service not answering (yet)
            last_error = error
        if time.monotonic() >= deadline:
            if answered:
                return result
            raise StackError(f"no answer within {timeout} s: {last_error}")
        time.sleep(interval)


# --- server processes -----------------------------------------------------------------


_live: set[Service] = set()
SETPRIV = shutil.which("setpriv")  # util-linux, for --pdeathsig


@atexit.register
def _kill_leftovers() -> None:
    """A last resort, should the interpreter exit without the fixtures' teardown."""
    for service in list(_live):
        service.kill()


class Service:
    """One server process, its stdout and stderr going to ``<run_dir>/<name>.log``."""

    def __init__(self, name: str, run_dir: Path) -> None:
        self.name = name
        self.run_dir = run_dir
        self.log_path = run_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        run_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        argv, env = self.command()
        if SETPRIV:  # the kernel kills the server should this process die without teardown
            argv = [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                argv,
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _live.add(self)

    def log_tail(self, lines: int = 40) -> str:
        return f"--- last lines of {self.log_path} ---\n{tail(self.log_path, lines)}"

    def wait_ready(self, deadline: float) -> None:
        """Polls ``ready()`` until it holds; fails at once if the process exits."""
        started = time.monotonic()
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise StackError(
                    f"{self.name} exited (code {code}) before ready\n{self.log_tail()}"
                )
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{self.name} not ready after {time.monotonic() - started:.0f} s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        _live.discard(self)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_GRACE_S)
        self.kill()


def start_all(make: Callable[[], Iterable[Service]]) -> list[Service]:
    """Starts the services ``make()`` builds and waits until each is ready.

    Ports are picked free but bound later by the servers; if another process took one in
    between, everything is started again on new ports (up to START_ATTEMPTS times).
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        services = list(make())
        try:
            for service in services:
                service.start()
            deadline = time.monotonic() + READY_TIMEOUT_S
            for service in services:
                service.wait_ready(deadline)
            return services
        except BaseException as error:  # not one left running, whatever went wrong
            stop_all(services)
            retry = isinstance(error, StackError) and "address already in use" in str(error)
            if not retry or attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def stop_all(services: Iterable[Service]) -> None:
    for service in reversed(list(services)):
        service.stop()
