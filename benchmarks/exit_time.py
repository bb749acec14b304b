"""How long a program takes to exit once its own work is done, with llm_toll's own OTLP
export pointed at an endpoint that is up, down, hanging or slow, over HTTP and gRPC.

The program is tests/support/exit_workload.py (12 decorated calls, sync and async); the
figure is the time from its "calls done" line to the end of its process, the median of
RUNS fresh interpreters, with the exporters' default timeout (10 s). llm-toll 0.13 has no
OTLP export, so there is nothing of its own to compare with; the first row is the same
program with no export at all.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import exit_workload  # noqa: E402
from tests.support.endpoints import BlackHole, SlowOTLP, closed_port  # noqa: E402

RUNS = int(os.environ.get("BENCH_EXIT_RUNS", "5"))


class _Accept(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def endpoint(behaviour: str, protocol: str) -> Iterator[int | None]:
    """The port of an endpoint behaving as asked (None: no export)."""
    if behaviour == "none":
        yield None
    elif behaviour == "down":
        yield closed_port()
    elif behaviour == "up":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield int(server.server_address[1])
        finally:
            server.shutdown()
            server.server_close()
    else:
        hole = BlackHole() if behaviour == "hanging" else SlowOTLP(protocol)
        try:
            yield hole.port
        finally:
            hole.close()


def exit_s(port: int | None, protocol: str, env: dict[str, str]) -> float:
    """Seconds from the program's "calls done" to the end of its process."""
    if port is not None:
        env = {
            **env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        }
    with tempfile.TemporaryDirectory(prefix="llm-toll-exit-") as scratch:
        process = subprocess.Popen(
            [sys.executable, exit_workload.__file__, str(Path(scratch) / "ledger.db")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        done = time.perf_counter()
        process.wait()
        ended = time.perf_counter()
        if line.strip() != exit_workload.DONE or process.returncode != 0:
            raise RuntimeError(f"the exit workload failed (exit {process.returncode})")
    return ended - done


ROWS: list[tuple[str, str, str]] = [
    ("none", "http/protobuf", "no OTLP export (the program alone)"),
    ("up", "http/protobuf", "endpoint up, HTTP"),
    ("down", "http/protobuf", "endpoint down (connection refused), HTTP"),
    ("down", "grpc", "endpoint down (connection refused), gRPC"),
    ("hanging", "http/protobuf", "endpoint hanging (accepts, never answers), HTTP"),
    ("hanging", "grpc", "endpoint hanging (accepts, never answers), gRPC"),
    ("slow", "http/protobuf", "endpoint slow (answers after the exit), HTTP"),
    ("slow", "grpc", "endpoint slow (answers after the exit), gRPC"),
]


def exit_times(env: dict[str, str], report: Callable[[str], None] = print) -> None:
    report("")
    report(
        f"exit with the OTLP endpoint down / hanging, s after the program's work, median of {RUNS}"
    )
    report(f"{'':52} {'llm_toll':>10} {'0.13.0':>10}")
    for behaviour, protocol, label in ROWS:
        with endpoint(behaviour, protocol) as port:
            median = statistics.median(exit_s(port, protocol, env) for _ in range(RUNS))
        report(f"{label:52} {median:10.2f} {'—':>10}")
        sys.stdout.flush()


if __name__ == "__main__":
    exit_times({k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))})
