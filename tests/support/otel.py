"""Fixtures: the SDK's in-memory span exporter and metric reader, a fresh store per test.

OpenTelemetry's global providers can be set once per process, so one TracerProvider and
one MeterProvider serve the whole session; each test sees only its own spans (the
exporter is cleared) and reads metrics as differences or under its own project names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import llm_toll
from llm_toll import _runtime
from llm_toll._warnings import forget_warnings
from llm_toll._worker import worker
from llm_toll.store import SQLiteStore

_EXPORTER = InMemorySpanExporter()
_READER = InMemoryMetricReader()
_TRACER_PROVIDER = TracerProvider()
_TRACER_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_TRACER_PROVIDER)
metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))


class Telemetry:
    """What the SDK captured during one test."""

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter = exporter
        self.reader = reader

    def spans(self) -> list[ReadableSpan]:
        worker.wait_idle()  # async calls end their spans in the worker thread
        return list(self.exporter.get_finished_spans())

    def requests(self) -> list[ReadableSpan]:
        """llm_toll's request spans (CLIENT): one per provider request, or refusal."""
        return [
            s
            for s in self.spans()
            if s.kind is SpanKind.CLIENT and "llm_toll.project" in (s.attributes or {})
        ]

    def runs(self) -> list[ReadableSpan]:
        """llm_toll's run spans (INTERNAL): one per decorated call or ``run()`` block."""
        return [
            s
            for s in self.spans()
            if s.kind is SpanKind.INTERNAL and "llm_toll.project" in (s.attributes or {})
        ]

    def span(self) -> ReadableSpan:
        """The one request span llm_toll made (its run has a span of its own; SDKs with
        their own instrumentation add others)."""
        spans = self.requests()
        assert len(spans) == 1, [s.name for s in self.spans()]
        return spans[0]

    def points(self, name: str) -> list[Any]:
        """Data points of metric ``name`` (cumulative since the session started)."""
        worker.wait_idle()
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def sum_for(self, name: str, **attributes: Any) -> float:
        """Sum (counter) or sum of recorded values (histogram) of points matching attributes."""
        total = 0.0
        for point in self.points(name):
            if all(point.attributes.get(k) == v for k, v in attributes.items()):
                total += point.value if hasattr(point, "value") else point.sum
        return total


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    _EXPORTER.clear()
    yield Telemetry(_EXPORTER, _READER)
    _EXPORTER.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A fresh SQLite store used by every decorated call of the test."""
    db = SQLiteStore(tmp_path / "ledger.db")
    llm_toll.set_store(db)
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    forget_warnings()
    yield db
    _runtime.writer().force_flush()
    llm_toll.set_store(None)
    llm_toll.set_reporter(None)
    db.close()
