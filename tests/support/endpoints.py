"""OTLP endpoints that misbehave, on loopback: down, hanging, slow.

- :func:`closed_port`: nobody listens (connection refused).
- :class:`BlackHole`: accepts TCP connections and never reads or answers.
- :class:`SlowOTLP`: a real OTLP receiver (HTTP or gRPC) that reads each request in full
  and answers it only when released (at the end of the test): to a client, slower than any
  budget it has.

Each records that a client reached it, so a test can wait for that instead of sleeping,
and lets every client go when closed.
"""

from __future__ import annotations

import importlib
import socket
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What a test waits for at the most; only a hang guard.
HANG_GUARD_S = 60.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BlackHole:
    """Accepts connections and never answers; closing it drops them all."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.reached = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._connections.append(connection)
            self.reached.set()

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close does not
        self._listener.close()
        for connection in self._connections:
            connection.close()
        self._thread.join(HANG_GUARD_S)


class SlowOTLP:
    """An OTLP receiver that holds every answer until :meth:`close`."""

    def __init__(self, protocol: str) -> None:
        self.reached = threading.Event()
        self._release = threading.Event()
        self._stop: Any
        if protocol == "grpc":
            self.port = self._serve_grpc()
        else:
            self.port = self._serve_http()

    def _hold(self) -> None:
        self.reached.set()
        self._release.wait(HANG_GUARD_S * 5)

    def _serve_http(self) -> int:
        hold = self._hold

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                hold()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()

        def stop() -> None:
            server.shutdown()
            server.server_close()

        self._stop = stop
        return int(server.server_address[1])

    def _serve_grpc(self) -> int:
        # grpcio and the generated services have no type information.
        grpc: Any = importlib.import_module("grpc")
        services = "opentelemetry.proto.collector.{0}.v1.{0}_service_pb2"
        trace_service_pb2: Any = importlib.import_module(services.format("trace"))
        trace_service_pb2_grpc: Any = importlib.import_module(services.format("trace") + "_grpc")
        metrics_service_pb2: Any = importlib.import_module(services.format("metrics"))
        metrics_service_pb2_grpc: Any = importlib.import_module(
            services.format("metrics") + "_grpc"
        )

        hold = self._hold

        class Traces:  # the servicer interface: an Export method
            def Export(self, request: Any, context: Any) -> Any:
                hold()
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics:
            def Export(self, request: Any, context: Any) -> Any:
                hold()
                return metrics_service_pb2.ExportMetricsServiceResponse()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._stop = lambda: server.stop(grace=None)
        return int(port)

    def close(self) -> None:
        self._release.set()
        self._stop()
