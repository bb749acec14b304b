"""The llm-toll 0.13 read API, written once over a backend's ``_report`` query runner.

Queries are written with ``?`` markers. The two stores differ only in how a timestamp
becomes a UTC day and how they take a cutoff time and an unlimited LIMIT; each store states
those and inherits the rest.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from llm_toll.store import _reads
from llm_toll.store._alert_marks import THRESHOLD_BITS
from llm_toll.store._base import BaseStore
from llm_toll.store._reads import BATCH_ROWS, Filters, TimeBuckets
from llm_toll.store._time import utc_now
from llm_toll.store._totals import PROJECT_KEY

# A column named `<x>_nanos` is returned both as `<x>` (float USD) and as itself (exact).
_TOTALS = """
SUM(cost_nanos) AS total_cost_nanos, SUM(input_tokens) AS total_input_tokens,
SUM(output_tokens) AS total_output_tokens, COUNT(*) AS call_count
"""


@dataclass(frozen=True)
class ReportSQL:
    """The read queries of one backend."""

    project_summaries: str
    model_summaries: str  # with a `{where}` slot
    project_summaries_for_model: str
    daily_trends: str
    budget_totals: str
    ledger: str
    """What the queries read as ``usage_logs``: the table, or a query that shows another
    table as it (llm-toll 0.13's, see ``_postgres_v013``)."""
    totals: str
    """What the queries read as ``budget_totals``, likewise."""
    buckets: TimeBuckets
    ranges_by_project: bool = False
    """Whether the ledger's only index on time is the one on (project, created_at): a time
    range across projects is then read as a range of it per project (see ``_reads``)."""

    @property
    def ranges_of(self) -> str | None:
        """``ranges_of`` for ``Filters.where``."""
        return self.ledger if self.ranges_by_project else None

    @classmethod
    def for_backend(
        cls,
        utc_day_of_created_at: str,
        *,
        buckets: TimeBuckets,
        ledger: str = "usage_logs",
        totals: str = "budget_totals",
        ranges_by_project: bool = False,
    ) -> ReportSQL:
        return cls(
            project_summaries=f"""
                SELECT project, {_TOTALS}, MAX(created_at) AS last_used
                FROM {ledger} GROUP BY project ORDER BY total_cost_nanos DESC, project""",
            model_summaries=f"""
                SELECT model, {_TOTALS} FROM {ledger} {{where}}
                GROUP BY model ORDER BY total_cost_nanos DESC, model""",
            project_summaries_for_model=f"""
                SELECT project, {_TOTALS} FROM {ledger} WHERE model = ?
                GROUP BY project ORDER BY total_cost_nanos DESC, project""",
            daily_trends=f"""
                SELECT {utc_day_of_created_at} AS date, SUM(cost_nanos) AS daily_cost_nanos,
                       SUM(input_tokens) AS daily_input_tokens,
                       SUM(output_tokens) AS daily_output_tokens, COUNT(*) AS call_count
                FROM {ledger} {{where}} GROUP BY 1 ORDER BY 1""",
            budget_totals=f"""
                SELECT project, period, spent_nanos AS total_cost_nanos, limit_nanos,
                       thresholds_fired & {THRESHOLD_BITS} AS thresholds_fired,
                       last_reset_at, updated_at, budget_key
                FROM {totals}
                ORDER BY spent_nanos DESC, project, budget_key, period""",
            ledger=ledger,
            totals=totals,
            buckets=buckets,
            ranges_by_project=ranges_by_project,
        )


class ReportMethods(BaseStore):
    """``get_usage_logs`` ... ``get_budget_utilization`` for a store that can run a query."""

    _sql: ClassVar[ReportSQL]

    def _queries(self) -> ReportSQL:
        """The read queries of this store: ``_sql``, unless its database needs others."""
        return self._sql

    @abstractmethod
    def _report(self, action: str, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """Rows of a read query as dicts; on a store failure a warning and no rows."""

    @abstractmethod
    def _time_param(self, at: datetime) -> object:
        """``at`` as the backend compares it with ``created_at``."""

    @abstractmethod
    def _limit_param(self, limit: int) -> object:
        """``limit`` for LIMIT, a negative one meaning every row."""

    def get_usage_logs(self, project: str, limit: int = 100) -> list[dict[str, Any]]:
        # A negative limit means no limit, as SQLite's LIMIT -1 did in llm-toll 0.13.
        return self._usage_logs(project, None, limit)

    def get_usage_logs_filtered(
        self, project: str | None = None, model: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        return self._usage_logs(project, model, limit if limit > 0 else -1)

    def get_all_project_summaries(self) -> list[dict[str, Any]]:
        return self._report("read project summaries", self._queries().project_summaries)

    def get_model_summaries(self, project: str | None = None) -> list[dict[str, Any]]:
        sql = self._queries().model_summaries
        if project is None:
            return self._report("read model summaries", sql.format(where=""))
        where = "WHERE project = ?"
        return self._report("read model summaries", sql.format(where=where), (project,))

    def get_project_summaries_for_model(self, model: str) -> list[dict[str, Any]]:
        return self._report(
            "read project summaries", self._queries().project_summaries_for_model, (model,)
        )

    def get_daily_cost_trends(self, days: int = 30) -> list[dict[str, Any]]:
        queries = self._queries()
        filters = Filters(since=utc_now() - timedelta(days=days))
        where, params = filters.where(self._time_param, ranges_of=queries.ranges_of)
        sql = queries.daily_trends.format(where=where)
        return self._report("read daily cost trends", sql, params)

    def get_budget_utilization(self) -> list[dict[str, Any]]:
        sql = self._queries().budget_totals
        return add_utilization(self._report("read budget utilization", sql))

    # -- the ledger over a date range (see ``_reads``) ------------------------------------

    def spend(
        self,
        by: Sequence[str] | str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        model: str | None = None,
        key: str | None = None,
        provider: str | None = None,
    ) -> list[dict[str, Any]]:
        """Spend grouped ``by`` dimensions of ``_dimensions.DIMENSIONS``, one dict per group that
        has calls: the dimensions, then ``calls``, the token sums, ``cost_nanos`` (exact),
        ``unpriced_calls``, ``estimated_calls``, ``first_at`` and ``last_at``."""
        dims = _reads.dimensions(by)
        filters = Filters(since, until, project, model, key, provider)
        queries = self._queries()
        where, params = filters.where(self._time_param, ranges_of=queries.ranges_of)
        sql = _reads.spend_query(dims, queries.buckets, queries.ledger, where)
        return _reads.spend_rows(dims, self._report("read spend", sql, params))

    def calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        model: str | None = None,
        key: str | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The ledger rows selected, newest first, at most ``limit`` (negative: all);
        ``after_id``: only rows recorded after that one."""
        filters = Filters(since, until, project, model, key, after_id=after_id)
        rows = self._newest_rows("read calls", filters, limit)
        return [_reads.call_row(row) for row in rows]

    def iter_calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        project: str | None = None,
        model: str | None = None,
        key: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every ledger row selected, as recorded (by id: oldest first), read in batches of
        ``BATCH_ROWS`` after the last id seen, so memory stays constant."""
        after_id: int | None = None
        while True:
            filters = Filters(since, until, project, model, key, after_id=after_id)
            where, params = filters.where(self._time_param)
            sql = _reads.calls_query(self._queries().ledger, where, newest_first=False)
            rows = self._report("read calls", sql, (*params, BATCH_ROWS))
            for row in rows:
                yield _reads.call_row(row)
            if len(rows) < BATCH_ROWS:
                return
            after_id = rows[-1]["id"]

    def projects(self) -> list[str]:
        """The projects that have calls or budget totals, sorted."""
        queries = self._queries()
        sql = _reads.projects_query(
            queries.ledger, queries.totals, indexed=queries.ranges_by_project
        )
        return [row["project"] for row in self._report("read projects", sql)]

    def _usage_logs(
        self, project: str | None, model: str | None, limit: int
    ) -> list[dict[str, Any]]:
        return self._newest_rows("read usage logs", Filters(project=project, model=model), limit)

    def _newest_rows(self, action: str, filters: Filters, limit: int) -> list[dict[str, Any]]:
        """The ledger rows ``filters`` selects, newest first, at most ``limit`` (negative:
        all), as the backend returns them."""
        queries = self._queries()
        # After an id, the rows are a range of ids, whatever their time.
        ranges_of = queries.ranges_of if filters.after_id is None else None
        where, params = filters.where(self._time_param, ranges_of=ranges_of)
        sql = _reads.calls_query(queries.ledger, where, newest_first=True)
        return self._report(action, sql, (*params, self._limit_param(limit)))


def add_utilization(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Budget-total rows (from ``as_dicts``) with their ``utilization``: spent / limit.

    ``budget_key`` (added after the llm-toll 0.13 keys) is moved last.
    """
    for row in rows:
        limit = row["limit_nanos"]
        budget_key = row.pop("budget_key", PROJECT_KEY)
        row["utilization"] = row["total_cost_nanos"] / limit if limit else None
        row["budget_key"] = budget_key
    return rows
