"""The newest ledger rows across projects in a SQLite file, through its index on
(project, created_at): the ledger has no index on time alone (every index is paid for by
every call's insert).

Each project's rows are read newest first through that index and the reads are merged;
rows are taken from each read only as the merge needs them, so the rows visited are about
those a single index on time would have visited, and a filter on model or key does not
make every project walk as far as the most distant match.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from llm_toll.store._ledger import READ_COLUMNS, as_dicts
from llm_toll.store._reads import Filters, calls_query, ledger_projects

_ID: Final = READ_COLUMNS.index("id")
_CREATED_AT: Final = READ_COLUMNS.index("created_at")


def _newest_first(row: tuple[Any, ...]) -> tuple[Any, Any]:
    return row[_CREATED_AT], row[_ID]  # the order of ``calls_query(newest_first=True)``


def newest_rows(
    conn: sqlite3.Connection,
    ledger: str,
    filters: Filters,
    *,
    time_param: Callable[[datetime], object],
    limit: int,
) -> list[dict[str, Any]]:
    """The rows ``filters`` (no project) selects, newest first, at most ``limit``
    (at least 0), read on ``conn`` (autocommit mode, not in a transaction)."""
    conn.execute("BEGIN")  # one snapshot for the reads of every project
    projects = [project for (project,) in conn.execute(ledger_projects(ledger))]
    reads = []
    for project in projects:
        where, params = replace(filters, project=project).where(time_param)
        sql = calls_query(ledger, where, newest_first=True)
        reads.append(conn.execute(sql, (*params, limit)))
    merged = heapq.merge(*reads, key=_newest_first, reverse=True)
    rows = list(itertools.islice(merged, limit))
    for read in reads:
        read.close()
    conn.execute("COMMIT")
    return as_dicts(READ_COLUMNS, rows)
