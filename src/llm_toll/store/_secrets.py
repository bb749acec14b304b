"""Store URLs as shown to people (errors, warnings, the command line): never with a password.

A store URL (``postgresql://user:password@host/db``) or libpq connection string
(``host=... password=...``) can hold a password. Every message that quotes one, or quotes
what the database driver said about one, passes through :func:`redact` or
:func:`redact_url` first.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
MIN_SEARCHED = 3

# A URL's scheme, and the slashes after it (a mistyped URL may have fewer than two).
_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*:/*"
# A password inside any URL of the text: scheme://user:PASSWORD@
_URL_USERINFO = re.compile(rf"(\b{_SCHEME}[^\s:/?#@]*:)[^\s@]*@")
# A password as a parameter: password=VALUE (a URL's query, a connection string; libpq
# quotes a value with spaces in single quotes, with backslash escapes).
_PASSWORD_PARAMETER = re.compile(
    r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&#'\"]+)", re.IGNORECASE
)


def url_passwords(url: str) -> tuple[str, ...]:
    """The passwords ``url`` holds, as written and decoded, so that a message quoting any
    form of one (a driver's error often quotes a piece of its input) can be cleaned."""
    found: list[str] = []
    scheme = re.match(_SCHEME, url)
    if scheme is not None:
        authority = re.split(r"[?#]", url[scheme.end() :], maxsplit=1)[0]
        if "@" in authority:
            userinfo = authority[: authority.rindex("@")]
            if ":" in userinfo:
                password = userinfo.split(":", 1)[1]
                # libpq ends the password at its first '@' (or reads ':' and '/' in it as a
                # port and a path): each piece may be quoted alone, say in a host name.
                found += [password, *re.split(r"[@:/]", password)]
    for match in _PASSWORD_PARAMETER.finditer(url):
        value = match.group(2)
        found.append(value)
        if value.startswith("'"):
            found.append(re.sub(r"\\(.)", r"\1", value.strip("'")))
    with_decoded = {form for value in found for form in (value, unquote(value)) if form}
    return tuple(sorted(with_decoded, key=len, reverse=True))  # longest first


def redact(text: str, *passwords: str | None) -> str:
    """``text`` with each of ``passwords`` masked wherever it appears, and any password it
    holds in a URL's user information or a ``password=`` parameter.

    Free text is not searched for passwords (or pieces) under MIN_SEARCHED characters: that
    would mask every such letter of the message. Where the text says it is a password (a
    URL's user information, ``password=``), it is masked whatever its length.
    """
    searched = (p for p in passwords if p and len(p) >= MIN_SEARCHED)
    for password in sorted(searched, key=len, reverse=True):
        text = text.replace(password, MASK)
    text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
    return _PASSWORD_PARAMETER.sub(rf"\1{MASK}", text)


def redact_url(url: str) -> str:
    """``url`` (a store URL, a path or a connection string) with its passwords masked."""
    return redact(url, *url_passwords(url))
