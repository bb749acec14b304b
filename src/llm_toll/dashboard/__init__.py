"""``llm-toll dashboard``: a local web page of the ledger and budgets, served by the
standard library's HTTP server, its assets shipped in the package (no CDN, works offline).

It listens on 127.0.0.1 unless told otherwise; on any other address every request must
carry a token (see ``_access``). llm-toll 0.13's ``DashboardHandler`` and
``serve_dashboard`` keep working.
"""

from __future__ import annotations

import webbrowser
from collections.abc import Callable

from llm_toll.dashboard._access import TOKEN_ENV, Access, choose_token, is_loopback
from llm_toll.dashboard._server import DashboardHandler, DashboardServer
from llm_toll.store import BaseStore

__all__ = [
    "TOKEN_ENV",
    "DashboardHandler",
    "DashboardServer",
    "open_dashboard",
    "serve",
    "serve_dashboard",
]


def open_dashboard(
    store: BaseStore, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> DashboardServer:
    """A dashboard server bound to ``host``:``port`` (0: a free port), not yet serving: call
    ``serve_forever()`` (and ``shutdown()`` from another thread, then ``server_close()``).

    ``token`` (or ``$LLM_TOLL_DASHBOARD_TOKEN``) is then required on every request; off
    loopback one is generated when none is given (``server.url`` carries it). Raises
    ValueError for a malformed token, OSError when the address cannot be bound.
    """
    required = choose_token(host, token)
    return DashboardServer((host, port), store, Access(required, is_loopback(host)))


def serve(
    store: BaseStore,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    open_browser: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard until interrupted (Ctrl+C), telling ``say`` where it is."""
    server = open_dashboard(store, host=host, port=port, token=token)
    try:
        say(f"llm-toll dashboard at {server.url}")
        if server.access.token is not None:
            say("Every request needs the token the address carries: keep it private.")
        say("Press Ctrl+C to stop.")
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_dashboard(store: BaseStore, port: int = 8050) -> None:
    """llm-toll 0.13's entry point: the dashboard on 127.0.0.1:``port`` until interrupted."""
    serve(store, port=port)
