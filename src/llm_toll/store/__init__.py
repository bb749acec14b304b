"""Budget stores: the exact ledger of calls and the running totals budgets are checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_toll.store.base import BaseStore
from llm_toll.store.sqlite import SQLiteStore, StoreError, StoreWarning

UsageStore = SQLiteStore
"""The llm-toll 0.13 name of SQLiteStore."""

__all__ = [
    "BaseStore",
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
    """
    if url is None:
        return SQLiteStore(**kwargs)
    scheme, separator, rest = url.partition("://")
    if not separator:
        return SQLiteStore(url, **kwargs)
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
    return SQLiteStore(rest[1:], **kwargs)


def _postgres_not_yet(url: str, rest: str, **kwargs: Any) -> BaseStore:
    raise NotImplementedError(
        "PostgreSQL support is not available yet in this version of llm_toll; "
        "use a SQLite path (or no URL for ~/.llm_toll.db) for now"
    )


_FACTORIES: dict[str, Callable[..., BaseStore]] = {
    "sqlite": _sqlite_from_url,
    "postgresql": _postgres_not_yet,
    "postgres": _postgres_not_yet,
}
