"""Budget stores: the exact ledger of calls and the running totals budgets are checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llm_toll.store.base import BaseStore
from llm_toll.store.errors import StoreError, StoreWarning

if TYPE_CHECKING:  # at run time through __getattr__, on first use (psycopg is optional)
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
    with ``pip install 'llm-toll[postgres]'``).
    """
    if url is None:
        return _sqlite_store()(**kwargs)
    scheme, separator, rest = url.partition("://")
    if not separator:
        return _sqlite_store()(url, **kwargs)
    factory = _FACTORIES.get(scheme.lower())
    if factory is None:
        raise ValueError(
            f"unsupported store URL {url!r}: use a file path, sqlite:///path or postgresql://..."
        )
    return factory(url, rest, **kwargs)


def _sqlite_from_url(url: str, rest: str, **kwargs: Any) -> BaseStore:
    # rest is "/<path>": an empty host, then the path, relative unless it starts with "/".
    if not rest.startswith("/") or len(rest) < 2:
        raise ValueError(f"a SQLite store URL looks like sqlite:///path/to/file.db; got {url!r}")
    return _sqlite_store()(rest[1:], **kwargs)


def _postgres_from_url(url: str, rest: str, **kwargs: Any) -> BaseStore:
    # Imported here: psycopg is an optional dependency, needed only for this scheme.
    from llm_toll.store.postgres import PostgresStore as PostgresStore

    return PostgresStore(url, **kwargs)


def __getattr__(name: str) -> Any:
    # The stores are imported when first asked for: SQLite's and the SQL they share cost an
    # import that a program that only decorates functions pays at its first call, and
    # PostgreSQL's needs psycopg, an optional dependency. Once imported, a name is a plain
    # attribute of this module.
    if name in ("SQLiteStore", "UsageStore"):  # UsageStore: llm-toll 0.13's name
        value: Any = _sqlite_store()
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


_FACTORIES: dict[str, Callable[..., BaseStore]] = {
    "sqlite": _sqlite_from_url,
    "postgresql": _postgres_from_url,
    "postgres": _postgres_from_url,
}
