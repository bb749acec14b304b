"""The replay server's HTTP side: routing a request to its provider, JSON and SSE answers,
connections cut on purpose."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from llm_toll.demo.replay._answer import DEFAULT, SSE, Answer, Exchange, Script
from llm_toll.demo.replay._anthropic import anthropic_message
from llm_toll.demo.replay._gemini import gemini_generate
from llm_toll.demo.replay._openai import (
    openai_chat,
    openai_completion,
    openai_embeddings,
    openai_response,
)

if TYPE_CHECKING:
    from llm_toll.demo.replay.server import ReplayServer

_GEMINI_PATH = re.compile(
    r"^/(v1beta|v1alpha|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$"
)


def _error_body(api: str, status: int, message: str) -> dict[str, Any]:
    if api.startswith("anthropic"):
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    if api.startswith("gemini"):
        reason = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            503: "UNAVAILABLE",
        }.get(status, "INTERNAL")
        return {"error": {"code": status, "message": message, "status": reason}}
    kind = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
    }.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


# -- routing -----------------------------------------------------------------------------

_Builder = Callable[[Answer, dict[str, Any], bool], tuple[Any, Any]]
_ROUTES: dict[str, tuple[str, _Builder, str]] = {
    "/v1/chat/completions": ("openai.chat", openai_chat, "chatcmpl-replay"),
    "/v1/completions": ("openai.completions", openai_completion, "cmpl-replay"),
    "/v1/embeddings": ("openai.embeddings", openai_embeddings, "emb-replay"),
    "/v1/responses": ("openai.responses", openai_response, "resp_replay"),
    "/v1/messages": ("anthropic.messages", anthropic_message, "msg_replay"),
}


class _Route(NamedTuple):
    """What answers a POST: the API it speaks, the body's builder, the model asked for,
    whether it streams, and the prefix of the ids it makes."""

    api: str
    builder: _Builder
    model: str
    stream: bool
    id_prefix: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like the real APIs
    # Headers and body go out in separate writes: without TCP_NODELAY, the client's delayed
    # ACK holds the body back 40 ms on every keep-alive request.
    disable_nagle_algorithm = True
    server: HTTPServer
    timeout = 30  # an idle keep-alive connection is dropped after this long

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read ReplayServer.requests instead

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = raw.decode(errors="replace")
        exchange = Exchange(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        replay = self.server.replay
        replay._record(exchange)
        route = self._route(url.path, body) if self.command == "POST" else None
        if route is None:
            exchange.status = 404
            message = f"no replay route for {self.command} {url.path}"
            self._json(404, _error_body("openai", 404, message), Script())
            return
        api, builder, model, stream, id_prefix = route
        exchange.api, exchange.stream = api, stream
        failing = replay._failure(model)
        if failing is not None:
            exchange.status, exchange.model = failing, model
            self._json(failing, _error_body(api, failing, f"{model} is failing"), Script())
            return
        script = replay._next_script()
        if script.status is not None:
            exchange.status = script.status
            self._json(script.status, _error_body(api, script.status, "scripted error"), script)
            return
        answer = replay._answer(
            script,
            body,
            model=model,
            id_prefix=id_prefix,
            generates=builder is not openai_embeddings,
        )
        payload, usage = builder(answer, body, stream)
        if script.body is not DEFAULT:
            payload = script.events() if stream else script.body
        exchange.model = answer.model
        exchange.response_id = answer.response_id
        exchange.text = answer.text
        exchange.tokens = answer.tokens
        exchange.usage = usage
        exchange.response = [data for _, data in payload] if stream else payload
        if stream:
            self._sse(payload, script)
        else:
            self._json(200, payload, script)

    @staticmethod
    def _route(path: str, body: Any) -> _Route | None:
        """What answers a POST, None if nothing does."""
        if not isinstance(body, dict):
            return None
        if path in _ROUTES:
            api, builder, id_prefix = _ROUTES[path]
            model = str(body.get("model") or "unknown-model")
            return _Route(api, builder, model, body.get("stream") is True, id_prefix)
        match = _GEMINI_PATH.match(path)
        if match:
            stream = match.group(3) == "streamGenerateContent"
            return _Route(
                "gemini.generate_content", gemini_generate, match.group(2), stream, "replay-"
            )
        return None

    def _json(self, status: int, payload: Any, script: Script) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if script.delay:
            time.sleep(script.delay)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_replay")
        self.end_headers()
        if script.break_after is not None and status < 400:
            self.wfile.write(data[: len(data) // 2])
            self._cut()
            return
        self.wfile.write(data)

    def _sse(self, events: SSE, script: Script) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index, (name, data) in enumerate(events):
            if script.break_after is not None and index >= script.break_after:
                self._cut()
                return
            if script.delay:
                time.sleep(script.delay)
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
            self._chunk(frame.encode())
        self._chunk(b"")  # the last chunk: the body is complete

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _cut(self) -> None:
        """Drop the connection mid-body: the client sees an incomplete response."""
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replay: ReplayServer, address: tuple[str, int]) -> None:
        self.replay = replay
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN: a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its connection (an abandoned stream, a closed client, a reset
        # keep-alive socket) is normal traffic, not a server error worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
