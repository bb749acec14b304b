"""An Alertmanager webhook receiver: a tiny HTTP server that keeps every POSTed payload."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/hook"


class WebhookReceiver(ThreadingHTTPServer):
    """Listens on 127.0.0.1 (a free port) in a daemon thread; use as a context manager."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self._payloads: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, name="webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{PATH}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()

    def payloads(self) -> list[dict[str, Any]]:
        """Every notification received so far (Alertmanager's webhook JSON, version 4)."""
        with self._lock:
            return list(self._payloads)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts of every notification, each with ``status``, ``labels``, ..."""
        return [alert for payload in self.payloads() for alert in payload.get("alerts", [])]

    def _record(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._payloads.append(payload)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != PATH:
            self.send_error(404)
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self.send_error(400, "not JSON")
            return
        self.server._record(payload)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass
