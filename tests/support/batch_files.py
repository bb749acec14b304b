"""A loopback server for the batch endpoints the SDKs read results from.

- ``GET /v1/files/{id}/content``: an OpenAI batch's output file (``client.files.content``);
- ``GET /v1/messages/batches/{id}``: an ended Anthropic Message Batch, its ``results_url``
  pointing back here; ``GET /v1/messages/batches/{id}/results``: its JSONL results
  (``client.messages.batches.results``).

Every request is recorded in ``paths``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class BatchFiles:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.files: dict[str, bytes] = {}
        """OpenAI file id -> its content."""
        self.batches: dict[str, bytes] = {}
        """Anthropic batch id -> its JSONL results."""
        self.paths: list[str] = []

    def answer(self, path: str) -> tuple[int, str, bytes]:
        self.paths.append(path)
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
            content = self.files.get(parts[2])
            if content is not None:
                return 200, "application/octet-stream", content
        if parts[:3] == ["v1", "messages", "batches"] and len(parts) in (4, 5):
            batch_id = parts[3]
            results = self.batches.get(batch_id)
            if results is not None and len(parts) == 5 and parts[4] == "results":
                return 200, "application/binary", results
            if results is not None and len(parts) == 4:
                return 200, "application/json", json.dumps(self._batch(batch_id)).encode()
        return 404, "application/json", b'{"error": {"message": "not found"}}'

    def _batch(self, batch_id: str) -> dict[str, Any]:
        lines = self.batches[batch_id].decode().splitlines()
        kinds = [json.loads(line)["result"]["type"] for line in lines if line.strip()]
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended",
            "request_counts": {
                "processing": 0,
                **{kind: kinds.count(kind) for kind in ("succeeded", "errored", "canceled")},
                "expired": kinds.count("expired"),
            },
            "created_at": "2026-01-05T10:00:00Z",
            "ended_at": "2026-01-05T11:00:00Z",
            "expires_at": "2026-01-06T10:00:00Z",
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch_id}/results",
        }


@contextmanager
def batch_files() -> Iterator[BatchFiles]:
    """Serve on 127.0.0.1 (a free port) until the block ends."""
    state: list[BatchFiles] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, kind, body = state[0].answer(self.path.partition("?")[0])
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.append(BatchFiles(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
