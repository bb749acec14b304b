"""The dashboard's HTTP server: the standard library's, one thread per request.

Routes: ``/`` the page, ``/assets/NAME`` its script and style (package data, so the page
works offline), ``/api/overview``, ``/api/calls`` and ``/api/runs`` (runs and refused
calls) the figures as JSON. Every request is checked by
:class:`~llm_toll.dashboard._access.Access` before anything is read.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from llm_toll.dashboard import _figures
from llm_toll.dashboard._access import COOKIE, Access
from llm_toll.dashboard._legacy import LEGACY_ROUTES
from llm_toll.store import BaseStore, StoreError, StoreWarning

_LOG = logging.getLogger("llm_toll.dashboard")
_ASSETS: Final = resources.files("llm_toll.dashboard") / "assets"
_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Only our own assets, no framing, no referrer: the page needs nothing else.
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_CALLS: Final = 500
_EVERY_ADDRESS: Final = frozenset({"0.0.0.0", "::"})


class BadRequest(ValueError):
    """A query parameter the API cannot use; answered with 400 and the reason."""


class DashboardServer(ThreadingHTTPServer):
    """Serves :class:`DashboardHandler` for ``store``, checking ``access`` on every request."""

    daemon_threads = True
    block_on_close = True

    def __init__(self, address: tuple[str, int], store: BaseStore, access: Access) -> None:
        self.access = access
        if ":" in address[0]:  # an IPv6 address
            self.address_family = socket.AF_INET6
        handler = type("Handler", (DashboardHandler,), {"store": store, "access": access})
        super().__init__(address, handler)

    @property
    def url(self) -> str:
        """The page's address, with the token when one is required."""
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        if name in _EVERY_ADDRESS:  # listening everywhere: the machine's name reaches it
            name = socket.gethostname()
        shown = f"[{name}]" if ":" in name else name
        token = self.access.token
        return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


class DashboardHandler(BaseHTTPRequestHandler):
    """The dashboard's requests. As in llm-toll 0.13, a subclass sets ``store`` (and here
    ``access``: by default, loopback without a token) and any ``http.server`` serves it."""

    store: BaseStore
    access: Access = Access(token=None, loopback=True)
    server_version = "llm-toll-dashboard"
    sys_version = ""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        access = self.access
        if not access.host_allowed(self.headers.get("Host")):
            self._text(HTTPStatus.FORBIDDEN, "llm-toll dashboard: unknown Host\n")
            return
        query_token = _one(query, "token")
        if not access.token_matches(
            query_token, self.headers.get("Cookie"), self.headers.get("Authorization")
        ):
            self._text(
                HTTPStatus.UNAUTHORIZED,
                "llm-toll dashboard: a token is required; open the address the command "
                "printed (with ?token=...)\n",
            )
            return
        if query_token is not None and url.path == "/":
            self._keep_token(query_token)
            return
        try:
            self._route(url.path, query)
        except BadRequest as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except (StoreError, StoreWarning) as exc:
            self._json({"error": f"the store could not be read: {exc}"}, HTTPStatus.BAD_GATEWAY)

    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/":
            self._asset("index.html")
        elif path.startswith("/assets/"):
            self._asset(path.removeprefix("/assets/"))
        elif path == "/api/overview":
            step = _choice(query, "step", _figures.STEPS)
            group = _choice(query, "group", _figures.GROUPS)
            self._json(_figures.overview(self.store, _range(query), step, group))
        elif path == "/api/calls":
            after_id = _number(query, "after_id")
            limit = min(_number(query, "limit") or 50, MAX_CALLS)
            rows = _figures.calls(self.store, _range(query), after_id=after_id, limit=limit)
            self._json({"calls": rows})
        elif path == "/api/runs":
            limit = min(_number(query, "limit") or 20, MAX_CALLS)
            self._json(_figures.runs(self.store, _range(query), limit=limit))
        elif path in LEGACY_ROUTES:
            self._json(LEGACY_ROUTES[path](self.store, query))
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found\n")

    def _keep_token(self, token: str) -> None:
        """Keep the token in a cookie and take it out of the address bar and history."""
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", "/")
        self.send_header("Set-Cookie", f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
        self._end_headers(0)

    def _asset(self, name: str) -> None:
        suffix = name[name.rfind(".") :] if "." in name else ""
        asset = _ASSETS / name
        if "/" in name or suffix not in _TYPES or not asset.is_file():
            self._text(HTTPStatus.NOT_FOUND, "not found\n")
            return
        self._send(HTTPStatus.OK, _TYPES[suffix], asset.read_bytes())

    def _json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(value, separators=(",", ":"), default=str).encode()
        self._send(status, "application/json", body)

    def _text(self, status: HTTPStatus, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode())

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self._end_headers(len(body))
        self.wfile.write(body)

    def _end_headers(self, length: int) -> None:
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("%s " + format, self.address_string(), *args)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _choice(query: dict[str, list[str]], name: str, allowed: tuple[Any, ...]) -> Any:
    value = _one(query, name) or allowed[0]
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _number(query: dict[str, list[str]], name: str) -> int | None:
    value = _one(query, name)
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number; got {value!r}") from None
    if number < 0:
        raise BadRequest(f"{name} must not be negative; got {number}")
    return number


def _range(query: dict[str, list[str]]) -> _figures.Range:
    since, until = _time(query, "since"), _time(query, "until")
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be before until")
    return _figures.Range(since, until)


def _time(query: dict[str, list[str]], name: str) -> datetime | None:
    """A date (its UTC midnight) or an ISO 8601 time (UTC unless it says otherwise)."""
    value = _one(query, name)
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD) or ISO 8601 time") from None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at
