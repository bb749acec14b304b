"""A loopback HTTP server that answers like the OpenAI, Anthropic and Gemini APIs.

The real SDK clients are pointed at it, so tests and the demo exercise the SDKs' own
parsing of the providers' documented JSON and server-sent-event (SSE) bodies:

>>> with ReplayServer() as srv:  # doctest: +SKIP
...     client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="test", max_retries=0)
...     client.chat.completions.create(model="gpt-4o", messages=[...])
...     srv.last.tokens  # the counts the server reported, as a Usage

Routes (POST):

- OpenAI: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
  ``/v1/responses``; ``"stream": true`` answers SSE (chat and completions end with
  ``data: [DONE]``, and carry usage only with ``stream_options.include_usage``).
- Anthropic: ``/v1/messages`` (SSE events ``message_start`` ... ``message_stop``).
- Gemini: ``/{version}/models/{model}:generateContent`` and
  ``:streamGenerateContent?alt=sse``.

Token counts are deterministic: the prompt costs one token per word or punctuation mark of
the request's prompt text (a different rule from llm_toll's own 4-characters estimate, so
a reported count and an estimate can be told apart), plus any scripted cached prefix; the
output costs the same per word of the reply, plus any scripted reasoning tokens.

Scripting (tests): :meth:`ReplayServer.script` queues an override for the next request
(usage omitted or malformed, another model, an HTTP error, a stream cut mid-way...), and
:attr:`ReplayServer.requests` records each exchange, including exactly what usage was sent.

Only the standard library is used here: the SDKs are never imported.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from llm_toll.usage.base import Usage
from llm_toll.usage.estimate import request_text


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""``Script.usage`` value meaning "the usage the server computed"."""

_CREATED = 1_767_225_600  # a fixed timestamp keeps payloads deterministic
_TOKEN = re.compile(r"\w+|[^\w\s]")
_GEMINI_PATH = re.compile(
    r"^/(v1beta|v1alpha|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$"
)


def count_tokens(text: str) -> int:
    """The server's tokenizer: one token per word or punctuation mark."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class Script:
    """An override for one request; every field left at its default changes nothing."""

    usage: Any = DEFAULT
    """``DEFAULT``: computed usage. ``None``: usage left out (JSON and streams). A dict: merged
    over the computed provider-format usage (``{"prompt_tokens": -5}``). Anything else: sent
    verbatim in place of the usage object (``"12"``)."""
    model: str | None = None
    """Report this model instead of the requested one."""
    text: str | None = None
    """Reply with this text."""
    cached_tokens: int = 0
    """Prompt tokens read from cache (a cached prefix added to the prompt count)."""
    cache_creation_tokens: int = 0
    """Prompt tokens written to cache (Anthropic ``cache_creation_input_tokens``, OpenAI
    ``cache_write_tokens``), likewise added to the prompt count."""
    reasoning_tokens: int = 0
    """Reasoning/thinking tokens, added to the output."""
    status: int | None = None
    """Answer with this HTTP error status and the provider's error body."""
    break_after: int | None = None
    """Streams: cut the connection after this many events. JSON: after half the body."""
    delay: float = 0.0
    """Seconds to wait before each stream event (or before a JSON answer)."""


@dataclass
class Exchange:
    """One request received and what was answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    api: str = "unknown"
    """``openai.chat``, ``openai.completions``, ``openai.embeddings``, ``openai.responses``,
    ``anthropic.messages``, ``gemini.generate_content`` or ``unknown``."""
    stream: bool = False
    status: int = 200
    model: str | None = None
    response_id: str | None = None
    text: str = ""
    tokens: Usage | None = None
    """The counts the server computed, normalised (input includes cached, output includes
    reasoning). What was actually sent is :attr:`usage` (it differs when scripted)."""
    usage: Any = None
    """The provider-format usage object as sent (the final one of a stream); None when left
    out."""
    response: Any = None
    """The JSON body sent, or for a stream the list of its events' data (JSON values, and the
    ``"[DONE]"`` string of OpenAI chat streams)."""


@dataclass
class _Answer:
    """What to answer: the numbers first, then each provider's builder shapes them."""

    model: str
    text: str
    response_id: str
    input_tokens: int
    output_tokens: int
    cached: int
    creation: int
    reasoning: int
    script: Script

    @property
    def tokens(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_input_tokens=self.cached,
            cache_creation_input_tokens=self.creation,
            reasoning_output_tokens=self.reasoning,
        )

    def usage(self, computed: dict[str, Any]) -> Any:
        """The usage to send, after the script's override; None means leave it out."""
        override = self.script.usage
        if override is DEFAULT:
            return computed
        if isinstance(override, dict):
            return {**computed, **override}
        return override

    def pieces(self) -> list[str]:
        """The reply text as stream deltas: one word (with its trailing space) each."""
        return re.findall(r"\S+\s*", self.text) or [self.text]


SSE = list[tuple[str | None, Any]]
"""Stream events: (SSE ``event:`` name or None, data as JSON value or raw string)."""


# -- OpenAI ------------------------------------------------------------------------------


def _openai_chat_usage(a: _Answer) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": a.cached, "audio_tokens": 0}
    if a.creation:
        prompt_details["cache_write_tokens"] = a.creation
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": a.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _with_usage(payload: dict[str, Any], key: str, usage: Any) -> dict[str, Any]:
    if usage is not None:
        payload[key] = usage
    return payload


def openai_chat(a: _Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """(payload or SSE events, usage sent) for ``POST /v1/chat/completions``."""
    usage = a.usage(_openai_chat_usage(a))
    head = {"id": a.response_id, "created": _CREATED, "model": a.model}
    if not stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": a.text,
            "refusal": None,
            "annotations": [],
        }
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        payload = {
            **head,
            "object": "chat.completion",
            "choices": [choice],
            "service_tier": "default",
            "system_fingerprint": "fp_replay",
        }
        return _with_usage(payload, "usage", usage), usage
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunk = {**head, "object": "chat.completion.chunk", "system_fingerprint": "fp_replay"}

    def event(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return None, {**chunk, "choices": [choice], **({"usage": None} if include_usage else {})}

    events: SSE = [event({"role": "assistant", "content": "", "refusal": None})]
    events += [event({"content": piece}) for piece in a.pieces()]
    events.append(event({}, "stop"))
    if include_usage and usage is not None:
        events.append((None, {**chunk, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return events, usage if include_usage else None


def openai_completion(a: _Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/completions`` (legacy): same usage object as chat."""
    usage = a.usage(_openai_chat_usage(a))
    head = {"id": a.response_id, "object": "text_completion", "created": _CREATED, "model": a.model}

    def choice(text: str, finish: str | None) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    if not stream:
        return _with_usage({**head, "choices": [choice(a.text, "stop")]}, "usage", usage), usage
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    pieces = a.pieces()
    events: SSE = [
        (None, {**head, "choices": [choice(p, "stop" if i == len(pieces) - 1 else None)]})
        for i, p in enumerate(pieces)
    ]
    if include_usage and usage is not None:
        events.append((None, {**head, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return events, usage if include_usage else None


def openai_embeddings(a: _Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/embeddings``: one 8-dimension vector per input, float or base64."""
    usage = a.usage({"prompt_tokens": a.input_tokens, "total_tokens": a.input_tokens})
    inputs = body.get("input")
    texts = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for index, text in enumerate(texts):
        digest = hashlib.sha256(json.dumps(text).encode()).digest()
        vector = [(byte - 128) / 128 for byte in digest[:8]]
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    payload = {"object": "list", "data": data, "model": a.model}
    return _with_usage(payload, "usage", usage), usage


def _responses_usage(a: _Answer) -> dict[str, Any]:
    return {
        "input_tokens": a.input_tokens,
        "input_tokens_details": {"cached_tokens": a.cached, "cache_write_tokens": a.creation},
        "output_tokens": a.output_tokens,
        "output_tokens_details": {"reasoning_tokens": a.reasoning},
        "total_tokens": a.input_tokens + a.output_tokens,
    }


def openai_response(a: _Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/responses``: a ``response`` object, or its documented event sequence."""
    usage = a.usage(_responses_usage(a))
    item_id = "msg_" + a.response_id.removeprefix("resp_")
    text_part = {"type": "output_text", "text": a.text, "annotations": [], "logprobs": []}
    item = {
        "type": "message",
        "id": item_id,
        "status": "completed",
        "role": "assistant",
        "content": [text_part],
    }

    def response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        payload = {
            "id": a.response_id,
            "object": "response",
            "created_at": _CREATED,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": a.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "metadata": {},
            "usage": usage,
        }
        return payload if usage is not None else {k: v for k, v in payload.items() if k != "usage"}

    if not stream:
        return response("completed", [item], usage), usage
    started = response("in_progress", [], None)
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    empty_part = {**text_part, "text": ""}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **where, "part": empty_part},
        *(
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
            for piece in a.pieces()
        ),
        {"type": "response.output_text.done", **where, "text": a.text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": text_part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": response("completed", [item], usage)},
    ]
    sse: SSE = [(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(events)]
    return sse, usage


# -- Anthropic ---------------------------------------------------------------------------


def _anthropic_usage(a: _Answer, output_tokens: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        # Anthropic's input_tokens leave out the tokens read from and written to the cache.
        "input_tokens": a.input_tokens - a.cached - a.creation,
        "cache_creation_input_tokens": a.creation,
        "cache_read_input_tokens": a.cached,
        "cache_creation": {"ephemeral_5m_input_tokens": a.creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if a.reasoning:
        usage["output_tokens_details"] = {"thinking_tokens": a.reasoning}
    return usage


def anthropic_message(a: _Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/messages``: a ``message``, or the documented SSE event sequence."""
    message = {
        "id": a.response_id,
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": [{"type": "text", "text": a.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    if not stream:
        usage = a.usage(_anthropic_usage(a, a.output_tokens))
        return _with_usage(message, "usage", usage), usage
    # message_start carries the input side (and a first output count); message_delta the
    # cumulative output count. A scripted override applies to both.
    start_usage = a.usage(_anthropic_usage(a, 1))
    delta_usage = a.usage(
        {"output_tokens": a.output_tokens}
        | ({"output_tokens_details": {"thinking_tokens": a.reasoning}} if a.reasoning else {})
    )
    started = {**message, "content": [], "stop_reason": None}
    events: SSE = [
        (
            "message_start",
            {"type": "message_start", "message": _with_usage(started, "usage", start_usage)},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        *(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
            )
            for p in a.pieces()
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            _with_usage(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                },
                "usage",
                delta_usage,
            ),
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events, delta_usage


# -- Gemini ------------------------------------------------------------------------------


def _gemini_usage(a: _Answer) -> dict[str, Any]:
    # promptTokenCount includes the cached content; thoughts are counted apart from the
    # candidates, and totalTokenCount is the sum of all.
    candidates = a.output_tokens - a.reasoning
    usage: dict[str, Any] = {
        "promptTokenCount": a.input_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": a.input_tokens + a.output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": a.input_tokens}],
    }
    if a.cached:
        usage["cachedContentTokenCount"] = a.cached
    if a.reasoning:
        usage["thoughtsTokenCount"] = a.reasoning
    return usage


def gemini_generate(a: _Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``:generateContent`` / ``:streamGenerateContent?alt=sse``."""
    usage = a.usage(_gemini_usage(a))

    def chunk(text: str, finish: bool, usage: Any) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish:
            candidate["finishReason"] = "STOP"
        payload = {"candidates": [candidate], "modelVersion": a.model, "responseId": a.response_id}
        return _with_usage(payload, "usageMetadata", usage)

    if not stream:
        return chunk(a.text, True, usage), usage
    # Like the API, early chunks already report the prompt; the last one reports it all.
    running = (
        None
        if usage is None
        else {"promptTokenCount": a.input_tokens, "totalTokenCount": a.input_tokens}
    )
    pieces = a.pieces()
    last = len(pieces) - 1
    events: SSE = [
        (None, chunk(p, i == last, usage if i == last else running)) for i, p in enumerate(pieces)
    ]
    return events, usage


# -- errors ------------------------------------------------------------------------------


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

_Builder = Callable[[_Answer, dict[str, Any], bool], tuple[Any, Any]]
_ROUTES: dict[str, tuple[str, _Builder, str]] = {
    "/v1/chat/completions": ("openai.chat", openai_chat, "chatcmpl-replay"),
    "/v1/completions": ("openai.completions", openai_completion, "cmpl-replay"),
    "/v1/embeddings": ("openai.embeddings", openai_embeddings, "emb-replay"),
    "/v1/responses": ("openai.responses", openai_response, "resp_replay"),
    "/v1/messages": ("anthropic.messages", anthropic_message, "msg_replay"),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like the real APIs
    server: _HTTPServer
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
        script = replay._next_script()
        if script.status is not None:
            exchange.status = script.status
            self._json(script.status, _error_body(api, script.status, "scripted error"), script)
            return
        answer = replay._answer(
            script, body, model, id_prefix, generates=builder is not openai_embeddings
        )
        payload, usage = builder(answer, body, stream)
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
    def _route(path: str, body: Any) -> tuple[str, _Builder, str, bool, str] | None:
        """(api, builder, model, stream, id prefix) of a POST, None if nothing answers it."""
        if not isinstance(body, dict):
            return None
        if path in _ROUTES:
            api, builder, id_prefix = _ROUTES[path]
            model = str(body.get("model") or "unknown-model")
            return api, builder, model, body.get("stream") is True, id_prefix
        match = _GEMINI_PATH.match(path)
        if match:
            stream = match.group(3) == "streamGenerateContent"
            return "gemini.generate_content", gemini_generate, match.group(2), stream, "replay-"
        return None

    def _json(self, status: int, payload: Any, script: Script) -> None:
        data = json.dumps(payload).encode()
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


class _HTTPServer(ThreadingHTTPServer):
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


class ReplayServer:
    """The loopback server; a context manager (``with ReplayServer() as srv: ...``).

    Binds 127.0.0.1 on a free port (or ``port``) and serves from a background thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._scripts: deque[Script] = deque()
        self._ids = 0
        self.requests: list[Exchange] = []
        """Every request received, oldest first."""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> ReplayServer:
        if self._httpd is None:
            self._httpd = _HTTPServer(self, self._address)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"llm-toll-replay:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and release the port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        httpd.drop_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bound(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("the replay server is not running")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self._bound()[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}``; OpenAI clients need ``base_url + "/v1"``."""
        host, port = self._bound()
        return f"http://{host}:{port}"

    # -- scripting -----------------------------------------------------------------------

    def script(self, **overrides: Any) -> None:
        """Queue a :class:`Script` for the next request not yet scripted (FIFO)."""
        with self._lock:
            self._scripts.append(Script(**overrides))

    def reset(self) -> None:
        """Forget queued scripts and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()

    @property
    def last(self) -> Exchange:
        """The most recent exchange."""
        with self._lock:
            if not self.requests:
                raise LookupError("the replay server has received no request")
            return self.requests[-1]

    # -- used by the handler -------------------------------------------------------------

    def _next_script(self) -> Script:
        with self._lock:
            return self._scripts.popleft() if self._scripts else Script()

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.requests.append(exchange)

    def _answer(
        self, script: Script, body: dict[str, Any], model: str, id_prefix: str, generates: bool
    ) -> _Answer:
        """The numbers of one answer; ``generates`` is False for embeddings (no output)."""
        with self._lock:
            self._ids += 1
            number = self._ids
        prompt = request_text((), body)
        text = script.text if generates else ""
        if text is None:
            words = prompt.split()
            about = " ".join(words[:12]) if words else "nothing in particular"
            text = f"Here is a replayed answer about: {about}."
        cached, creation, reasoning = (
            script.cached_tokens,
            script.cache_creation_tokens,
            script.reasoning_tokens,
        )
        return _Answer(
            model=script.model or model,
            text=text,
            response_id=f"{id_prefix}{number:06d}",
            input_tokens=count_tokens(prompt) + cached + creation,
            output_tokens=count_tokens(text) + reasoning,
            cached=cached,
            creation=creation,
            reasoning=reasoning,
            script=script,
        )


__all__ = ["DEFAULT", "Exchange", "ReplayServer", "Script", "count_tokens"]
