"""Exit with llm_toll's own OTLP export pointed at an endpoint that is down, hanging or
slow, over HTTP and gRPC: one line says what was not delivered, no traceback reaches
stderr, and every call is in the ledger.

Each case runs in a fresh interpreter whose exporters have an hour of timeout
(``OTEL_EXPORTER_OTLP_TIMEOUT``): an exit that waited for them would run into the hang
guard instead of passing, so the bound is llm_toll's own. How long exit takes is measured
by ``make bench`` (benchmarks/exit_time.py), not asserted here. The program is
tests/support/exit_workload.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llm_toll import SQLiteStore
from tests.support import exit_workload
from tests.support.endpoints import HANG_GUARD_S, BlackHole, SlowOTLP, closed_port
from tests.support.exit_workload import ASYNC, PROJECT, SYNC
from tests.support.otlp import OTLPReceiver

REPO = Path(__file__).resolve().parents[2]

SPANS = 2 * (SYNC + ASYNC)  # each call's run span and its request span

PROTOCOLS = ["http/protobuf", pytest.param("grpc", id="grpc")]


@contextmanager
def endpoint(behaviour: str, protocol: str) -> Iterator[tuple[int, Callable[[], bool]]]:
    """A port behaving as asked, and whether a client reached it."""
    if behaviour == "down":
        yield closed_port(), lambda: True
        return
    server = BlackHole() if behaviour == "hanging" else SlowOTLP(protocol)
    try:
        yield server.port, server.reached.is_set
    finally:
        server.close()


def run_workload(tmp_path: Path, url: str, protocol: str) -> str:
    """Run the workload to its exit; what it wrote on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=url,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_TIMEOUT="3600",  # seconds, for the Python exporters
        OTEL_SERVICE_NAME="exit-test",
    )
    try:
        done = subprocess.run(
            [sys.executable, exit_workload.__file__, str(tmp_path / "ledger.db")],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
            env=env,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"still running after {hung.timeout} s: exit waited for the endpoint")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{exit_workload.DONE}\n"
    return done.stderr


def recorded_ids(db: Path) -> list[str]:
    with SQLiteStore(db) as store:
        return sorted(row["response_id"] for row in store.get_usage_logs(PROJECT, limit=-1))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("down", "connection refused"),
        ("hanging", "no answer in time"),
        ("slow", "no answer in time"),
    ],
)
def test_exit_says_what_was_dropped_and_records_every_call(
    tmp_path: Path, behaviour: str, reason: str, protocol: str
) -> None:
    with endpoint(behaviour, protocol) as (port, reached):
        url = f"http://127.0.0.1:{port}"
        stderr = run_workload(tmp_path, url, protocol)
        assert reached()  # the export was attempted, and the process exited regardless

    expected = f"llm_toll: {SPANS} spans and 1 metric export not delivered to {url} ({reason})"
    assert stderr.splitlines() == [expected]  # that line only: no OpenTelemetry traceback
    assert recorded_ids(tmp_path / "ledger.db") == sorted(f"c{i}" for i in range(SYNC + ASYNC))


FORKING = """
import os, sys
from tests.support.exit_workload import ask, main

main(sys.argv[1])  # the parent's calls, then a child that makes one more and exits
pid = os.fork()
if pid == 0:
    ask(99)
else:
    os.waitpid(pid, 0)
"""


def run_forking(tmp_path: Path, url: str, name: str) -> str:
    """Run FORKING to its exit against ``url``; what it wrote on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=url, OTEL_EXPORTER_OTLP_TIMEOUT="3600", PYTHONPATH=str(REPO)
    )
    db = tmp_path / f"{name}.db"
    done = subprocess.run(
        [sys.executable, "-c", FORKING, str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stderr
    assert recorded_ids(db) == sorted([*(f"c{i}" for i in range(SYNC + ASYNC)), "c99"])
    return done.stderr


def test_a_forked_child_delivers_and_accounts_for_its_own_telemetry(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    """A child forked after telemetry started delivers its own spans at its exit (its
    export threads are restarted), and with the endpoint hanging each process's line
    counts its own spans only (the child's queue starts empty)."""
    assert run_forking(tmp_path, receiver.endpoint, "up") == ""
    assert len(receiver.requests()) == SYNC + ASYNC + 1

    with endpoint("hanging", "http/protobuf") as (port, _):
        url = f"http://127.0.0.1:{port}"
        stderr = run_forking(tmp_path, url, "hanging")
    line = "llm_toll: {} spans and 1 metric export not delivered to " + url + " (no answer in time)"
    assert sorted(stderr.splitlines()) == sorted([line.format(SPANS), line.format(2)])
