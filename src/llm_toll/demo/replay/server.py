"""The replay server: a context manager serving on 127.0.0.1 from a background thread."""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType
from typing import Any

from llm_toll.demo.replay._answer import (
    Answer,
    Exchange,
    Script,
    count_tokens,
    output_cap,
    prompt_text,
    truncate,
)
from llm_toll.demo.replay._http import HTTPServer


class ReplayServer:
    """The loopback server; a context manager (``with ReplayServer() as srv: ...``).

    Binds 127.0.0.1 on a free port (or ``port``) and serves from a background thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._scripts: deque[Script] = deque()
        self._failing: dict[str, int] = {}
        self._ids = 0
        self.requests: list[Exchange] = []
        """Every request received, oldest first."""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> ReplayServer:
        if self._httpd is None:
            self._httpd = HTTPServer(self, self._address)
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

    def fail(self, model: str, status: int = 500) -> None:
        """Answer every request for ``model`` with the HTTP error ``status`` and the
        provider's error body, until :meth:`reset` (a deployment that is down, for
        retries and fallbacks to another model). Queued scripts are kept for the others."""
        if not 400 <= status <= 599:
            raise ValueError(f"an error status is 4xx or 5xx, not {status}")
        with self._lock:
            self._failing[model] = status

    def reset(self) -> None:
        """Forget queued scripts, failing models and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self._failing.clear()
            self.requests.clear()

    @property
    def last(self) -> Exchange:
        """The most recent exchange."""
        with self._lock:
            if not self.requests:
                raise LookupError("the replay server has received no request")
            return self.requests[-1]

    # -- used by the handler -------------------------------------------------------------

    def _failure(self, model: str) -> int | None:
        """The error status every request for ``model`` gets, if :meth:`fail` set one."""
        with self._lock:
            return self._failing.get(model)

    def _next_script(self) -> Script:
        with self._lock:
            return self._scripts.popleft() if self._scripts else Script()

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.requests.append(exchange)

    def _answer(
        self, script: Script, body: dict[str, Any], *, model: str, id_prefix: str, generates: bool
    ) -> Answer:
        """The numbers of one answer; ``generates`` is False for embeddings (no output)."""
        with self._lock:
            self._ids += 1
            number = self._ids
        prompt = prompt_text(body)
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
        cap = output_cap(body)
        if cap is not None and not script.ignore_cap:  # reasoning counts against it first
            reasoning = min(reasoning, cap)
            text = truncate(text, cap - reasoning)
        return Answer(
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
