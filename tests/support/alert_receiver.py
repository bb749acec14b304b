"""A webhook receiver on 127.0.0.1 for alert tests: it keeps every JSON body POSTed to it,
answers with the statuses a test scripts (then 200), and lets a test wait for a number of
bodies on a condition rather than sleep."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WAIT_S = 60.0  # a bound for a test that would otherwise hang; never a measured limit


class AlertReceiver(ThreadingHTTPServer):
    """Use as a context manager; ``url`` is where to POST."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._changed = threading.Condition()
        self._bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self._script: deque[tuple[int, dict[str, str]]] = deque()
        self._thread = threading.Thread(target=self.serve_forever, name="alerts", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook/secret-path"

    def __enter__(self) -> AlertReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()

    def answer_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next POST with ``status`` (and ``headers``) and keep nothing of it."""
        with self._changed:
            self._script.append((status, headers or {}))

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        """The bodies once ``count`` have arrived (an AssertionError if they never do)."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self._bodies) >= count, WAIT_S)
            assert arrived, f"{len(self._bodies)} webhook bodies arrived, not {count}"
            return list(self._bodies)

    def bodies(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._bodies)

    def _take(self, body: dict[str, Any]) -> tuple[int, dict[str, str]]:
        with self._changed:
            self.attempts += 1
            if self._script:
                return self._script.popleft()
            self._bodies.append(body)
            self._changed.notify_all()
            return 200, {}


class _Handler(BaseHTTPRequestHandler):
    server: AlertReceiver

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Type") != "application/json":
            self.send_error(415)
            return
        status, headers = self.server._take(json.loads(data))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def fields(body: dict[str, Any]) -> dict[str, str]:
    """The figures of a Slack-compatible alert body: its attachment's fields by title."""
    [attachment] = body["attachments"]
    return {field["title"]: field["value"] for field in attachment["fields"]}
