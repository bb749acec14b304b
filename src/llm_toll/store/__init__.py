"""Budget stores: the exact ledger of calls and the running totals budgets are checked against."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from llm_toll.store._errors import StoreError, StoreWarning
from llm_toll.store._secrets import redact_url

if TYPE_CHECKING:  # at run time through __getattr__, on first use (psycopg is optional)
    from llm_toll.store._base import BaseStore
    from llm_toll.store.postgres import PostgresStore
    from llm_toll.store.sqlite import SQLiteStore

    UsageStore = SQLiteStore

STORE_URL_ENV = "LLM_TOLL_STORE_URL"
"""The environment variable that names the store decorated calls use (a URL or a path)."""

__all__ = [
    "BaseStore",
    "PostgresStore",
    "SQLiteStore",
    "StoreError",
    "StoreWarning",
    "UsageStore",
    "create_store",
]


def create_store(url: str | None = None, **kwargs: Any) -> BaseStore:
    """The store for ``url``; ``kwargs`` go to the store's constructor.

    ``None`` is the default SQLite file. A plain path or ``sqlite:///relative/path`` /
    ``sqlite:////absolute/path`` (SQLAlchemy's spelling) is a SQLite file.
    ``postgresql://...`` or ``postgres://...`` is a PostgreSQL database (``PostgresStore``,
    with ``pip install 'llm-toll[postgres]'``). Anything else is a ValueError, whose
    message never shows the URL's password.
    """
    if url is None:
        return _sqlite_store()(**kwargs)
    kind, location = parse_store_url(url)
    if kind == "postgres":
        # Imported here: psycopg is an optional dependency, needed only for this scheme.
        from llm_toll.store.postgres import PostgresStore as PostgresStore

        return PostgresStore(location, **kwargs)
    return _sqlite_store()(location, **kwargs)


def parse_store_url(url: str) -> tuple[Literal["sqlite", "postgres"], str]:
    """Which kind of store ``url`` names, and its location (a file path, or the DSN);
    ValueError, never showing the password, for a URL of no store."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"a store URL must be a non-empty string, got {url!r}")
    scheme, separator, rest = url.partition("://")
    if not separator:
        # A scheme without '//' (postgresql:/host/db) is a mistyped URL, not a file to create
        # in a directory named 'postgresql:'. One letter before the colon is a drive (C:).
        looks_like = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):", url)
        if looks_like is not None:
            raise ValueError(
                f"the store URL {redact_url(url)!r} has a scheme ({looks_like.group(1)}:) but "
                f"no '//': {_URL_FORMS} (write ./{looks_like.group(1)}:... for such a file)"
            )
        # libpq's key=value form would otherwise name a SQLite file (password and all) in
        # the working directory: a fleet meant to share PostgreSQL would get one per host.
        keyword = _LIBPQ_KEYWORD.match(url)
        if keyword is not None:
            raise ValueError(
                f"the store URL {redact_url(url)!r} is a PostgreSQL key=value connection "
                f"string: write it as postgresql://user@host:port/dbname (write "
                f"./{keyword.group(1)}=... for a SQLite file of that name)"
            )
        return "sqlite", url
    kind = _SCHEMES.get(scheme.lower())
    if kind is None:
        raise ValueError(f"unsupported store URL {redact_url(url)!r}: {_URL_FORMS}")
    if kind == "sqlite":
        # rest is "/<path>": an empty host, then the path, relative unless it starts with "/".
        if not rest.startswith("/") or len(rest) < 2:
            raise ValueError(
                f"a SQLite store URL looks like sqlite:///path/to/file.db; got {redact_url(url)!r}"
            )
        return "sqlite", rest[1:]
    return "postgres", url


def check_store_url(url: str) -> None:
    """Raise ValueError when ``url`` names no store this process can open, without opening
    it: its form and scheme, and for PostgreSQL its connection string and the driver."""
    kind, location = parse_store_url(url)
    if kind == "postgres":
        try:
            from llm_toll.store.postgres import parse_dsn
        except ImportError as exc:  # the extra is not installed
            raise ValueError(f"{redact_url(url)!r} names a PostgreSQL database: {exc}") from None
        parse_dsn(location)


def __getattr__(name: str) -> Any:
    # The stores are imported when first asked for: SQLite's and the SQL they share cost an
    # import that a program that only decorates functions pays at its first call (the base
    # class brings the ledger's records, which the command line's --help does without), and
    # PostgreSQL's needs psycopg, an optional dependency. Once imported, a name is a plain
    # attribute of this module.
    if name == "BaseStore":
        from llm_toll.store._base import BaseStore

        value: Any = BaseStore
    elif name in ("SQLiteStore", "UsageStore"):  # UsageStore: llm-toll 0.13's name
        value = _sqlite_store()
    elif name == "PostgresStore":
        from llm_toll.store.postgres import PostgresStore

        value = PostgresStore
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def _sqlite_store() -> type[SQLiteStore]:
    cls: type[SQLiteStore] | None = globals().get("SQLiteStore")
    if cls is None:
        from llm_toll.store.sqlite import SQLiteStore

        cls = globals()["SQLiteStore"] = SQLiteStore
    return cls


_SCHEMES: dict[str, Literal["sqlite", "postgres"]] = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "postgres": "postgres",
}
_URL_FORMS = "use a file path, sqlite:///path/to/file.db or postgresql://user@host/db"
_LIBPQ_KEYWORD = re.compile(
    r"\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|connect_timeout"
    r"|application_name|options|target_session_attrs)\s*=",
    re.IGNORECASE,
)
