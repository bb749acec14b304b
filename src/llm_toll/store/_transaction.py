"""What the SQL written once for both backends needs from an open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from llm_toll.store._errors import StoreError
    from llm_toll.store._totals import ScopeWrite

Rows = list[tuple[Any, ...]]


class Transaction(Protocol):
    """One use of a backend's connection: a write transaction, or a read.

    Statements are written with ``?`` markers, as SQLite takes them; the PostgreSQL store
    turns them into ``%s``.
    """

    def run(self, sql: str, params: Sequence[object] = ()) -> Rows:
        """Run one statement; its rows (none for a statement that returns none)."""

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement that returns nothing once per row of parameters."""

    def query(self, sql: str, params: Sequence[object] = ()) -> tuple[list[str], Rows]:
        """Run a read; its column names and its rows, values as the SQLite store has them
        (integers, ISO 8601 UTC text), whatever the backend."""

    def lock(self, sql: str, params: Sequence[object] = ()) -> None:
        """Lock the rows ``sql`` selects until the transaction ends (``FOR UPDATE``), where
        the backend locks rows; SQLite's ``BEGIN IMMEDIATE`` has locked the whole file."""

    def add_to_scope(self, write: ScopeWrite) -> tuple[int, int]:
        """Add a call's cost to one scope's running totals (and append the call to the
        ledger when ``write.ledger_row`` is given); returns the period's total and the mask
        of thresholds fired in it before. Each backend writes this its fastest way."""


def missing_table(error: StoreError, table: str) -> bool:
    """Whether ``error`` is a read of ``table`` in a database that lacks it (not yet written
    by this version, or llm-toll 0.13's): such a read finds nothing and changes nothing."""
    cause = str(error.__cause__ or error)
    return table in cause and ("no such table" in cause or "does not exist" in cause)
