"""A loopback TCP proxy that counts the connections made through it.

Put in front of a server (PostgreSQL), it tells a test how many times a client tried to
connect, whether the server was up or not: each accepted connection is forwarded to the
server, or closed at once when the server refuses it (as a client sees a server that is
down). Stopped, with every connection it holds, by ``close()``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

_CHUNK = 65536


class CountingProxy:
    """Listens on 127.0.0.1 (``port``) and forwards to 127.0.0.1:``upstream_port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._connects = 0
        self._refused = 0
        self._idle = threading.Condition(self._lock)
        self._open = 0  # connections forwarded and not closed yet
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._acceptor.start()

    @property
    def connects(self) -> int:
        """Connections clients made (refused ones included)."""
        with self._lock:
            return self._connects

    @property
    def refused(self) -> int:
        """Connections closed at once because the server refused them."""
        with self._lock:
            return self._refused

    def wait_dropped(self, timeout: float = 30.0) -> None:
        """Wait until every forwarded connection is closed (the server went away, say): its
        client then sees it closed at once."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._open == 0, timeout=timeout):
                raise TimeoutError(f"{self._open} connections still open after {timeout} s")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
            self._sockets.clear()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in sockets:
            _close(sock)
        self._acceptor.join(timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._connects += 1
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                with self._lock:
                    self._refused += 1
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._closed:
                    _close(client)
                    _close(server)
                    return
                self._sockets.update((client, server))
                self._open += 1
                ends = threading.Event()  # set by the first pump to stop
                for source, sink in ((client, server), (server, client)):
                    pump = threading.Thread(
                        target=self._pump, args=(source, sink, ends), daemon=True
                    )
                    self._threads.append(pump)
                    pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket, ends: threading.Event) -> None:
        """Copy ``source`` to ``sink`` until either end closes; then close both, as a dropped
        connection does."""
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)
            with self._idle:
                if not ends.is_set():
                    ends.set()
                    self._open -= 1
                    self._idle.notify_all()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
