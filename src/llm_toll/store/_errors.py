"""The exceptions and warning every store raises or emits, whatever its database."""

from __future__ import annotations


class StoreError(Exception):
    """The store could not read or write its database (locked, read-only, corrupt, full...).

    The message names the database and the cause, so the caller can keep the record and warn.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreWarning(UserWarning):
    """A llm-toll 0.13 store method could not do its work and returned a neutral value."""


class SchemaError(Exception):
    """The database holds a schema this version of llm_toll cannot use."""
