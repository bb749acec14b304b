"""Who may read the dashboard: anyone on this machine when it listens on a loopback address;
only holders of its token when it listens on any other.

The token arrives once in the page's address (``/?token=...``), is then kept in a cookie
for the page's own requests, and may also be sent as ``Authorization: Bearer ...`` by a
script. Every request is checked, with a constant-time comparison.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Final

TOKEN_ENV: Final = "LLM_TOLL_DASHBOARD_TOKEN"
COOKIE: Final = "llm_toll_dashboard"
_LOOPBACK_NAMES: Final = frozenset({"localhost"})
# Characters that pass unchanged through an address and a cookie.
_TOKEN_PATTERN: Final = re.compile(r"[A-Za-z0-9._~-]{16,}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine
    alone."""
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_token(host: str, given: str | None) -> str | None:
    """The token the dashboard requires: ``given``, else ``$LLM_TOLL_DASHBOARD_TOKEN``, else
    a new random one when ``host`` is reachable from other machines; None on loopback when
    none is given (the machine's own users may read it, as they may read the database)."""
    token = given if given is not None else os.environ.get(TOKEN_ENV) or None
    if token is not None:
        if not _TOKEN_PATTERN.fullmatch(token):
            raise ValueError(
                "a dashboard token must be at least 16 characters among letters, digits and . _ ~ -"
            )
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Access:
    """The checks made on every request."""

    token: str | None
    loopback: bool

    def host_allowed(self, host_header: str | None) -> bool:
        """On loopback without a token, only requests addressed to a loopback name: a web
        page elsewhere cannot then read the dashboard through a name of its own that
        resolves to 127.0.0.1 (DNS rebinding)."""
        if self.token is not None or not self.loopback:
            return True
        if not host_header:
            return False
        name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return is_loopback(name)

    def token_matches(
        self, query_token: str | None, cookie_header: str | None, authorization: str | None
    ) -> bool:
        if self.token is None:
            return True
        offered = [query_token, _cookie_value(cookie_header)]
        if authorization and authorization.startswith("Bearer "):
            offered.append(authorization.removeprefix("Bearer "))
        expected = self.token.encode()
        # Every candidate is compared, so the time taken does not tell which one was tried.
        results = [hmac.compare_digest(expected, (value or "").encode()) for value in offered]
        return any(results)


def _cookie_value(header: str | None) -> str | None:
    if not header:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(header)
    except CookieError:
        return None
    morsel = cookie.get(COOKIE)
    return None if morsel is None else morsel.value
