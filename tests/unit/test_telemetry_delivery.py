"""llm_toll's own export pipelines: kept to a deadline, counted, quiet.

The deadline is proven with an injected clock, never by timing: a clock that reads "past
the deadline" only once the exporter is provably stuck on an endpoint that never answers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from llm_toll.telemetry import _quiet_logs
from llm_toll.telemetry._deadline import Clock, Runner, wait_until
from llm_toll.telemetry._delivering import (
    Bounded,
    DeliveringMetricExporter,
    DeliveringSpanExporter,
    DeliveringSpanProcessor,
)
from llm_toll.telemetry._export import ExportSettings
from llm_toll.telemetry._tally import (
    METRIC_EXPORTS,
    NO_ANSWER,
    SPANS,
    Tally,
    reason_in,
    undelivered_line,
)
from tests.support.endpoints import HANG_GUARD_S, BlackHole, closed_port


def past_the_deadline_once(reached: threading.Event) -> Clock:
    """A clock that reads 1.0 (past a deadline of 0.0) once ``reached`` is set."""

    def clock() -> float:
        assert reached.wait(HANG_GUARD_S), "the endpoint was never reached"
        return 1.0

    return clock


def test_work_past_its_deadline_is_abandoned_and_the_runner_goes_on() -> None:
    runner = Runner("test-runner")
    release, started = threading.Event(), threading.Event()

    def stuck() -> None:
        started.set()
        release.wait(HANG_GUARD_S)

    try:
        done = runner.submit(stuck)
        assert not wait_until(done, deadline=0.0, clock=past_the_deadline_once(started))
        assert not done.is_set()  # still running: abandoned, not finished
    finally:
        release.set()
    assert done.wait(HANG_GUARD_S)
    assert runner.submit(lambda: None).wait(HANG_GUARD_S)  # the thread was left, not lost
    runner.close()


@pytest.fixture
def black_holes() -> Iterator[tuple[BlackHole, BlackHole]]:
    holes = BlackHole(), BlackHole()
    try:
        yield holes
    finally:
        for hole in holes:
            hole.close()


def test_hanging_exporters_are_abandoned_at_the_deadline(
    black_holes: tuple[BlackHole, BlackHole],
) -> None:
    """Real SDK pipelines, real OTLP/HTTP exporters with an hour of timeout, each to an
    endpoint that accepts and never answers: the shutdown is abandoned at the deadline,
    and what was not delivered is counted."""
    span_hole, metric_hole = black_holes
    spans_to = ExportSettings(traces=True, endpoint=f"http://127.0.0.1:{span_hole.port}")
    metrics_to = ExportSettings(metrics=True, endpoint=f"http://127.0.0.1:{metric_hole.port}")
    span_tally = Tally(SPANS, spans_to.destination("TRACES"))
    metric_tally = Tally(METRIC_EXPORTS, metrics_to.destination("METRICS"), final_export=True)
    span_exporter = DeliveringSpanExporter(
        ExportSettings(traces=True, endpoint=spans_to.endpoint, timeout_s=3600).span_exporter(),
        span_tally,
    )
    metric_exporter = DeliveringMetricExporter(
        ExportSettings(
            metrics=True, endpoint=metrics_to.endpoint, timeout_s=3600
        ).metric_exporter(),
        metric_tally,
    )
    processor = DeliveringSpanProcessor(span_exporter, Bounded("test-spans", span_tally))
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(
        metric_readers=[metrics_to.metric_reader(metric_exporter)], shutdown_on_exit=False
    )
    metrics = Bounded("test-metrics", metric_tally)
    try:
        for i in range(3):
            tracer_provider.get_tracer("test").start_span(f"span {i}").end()
        meter_provider.get_meter("test").create_counter("calls").add(3)

        processor.start_shutdown()
        metrics.start_shutdown(meter_provider.shutdown)
        assert not processor.bounded.finish_by(0.0, past_the_deadline_once(span_hole.reached))
        assert not metrics.finish_by(0.0, past_the_deadline_once(metric_hole.reached))
        # Abandoned once, never waited for again: the provider's own shutdown returns.
        tracer_provider.shutdown()
        assert span_tally.abandoned and metric_tally.abandoned
        assert (span_tally.undelivered, span_tally.reason) == (3, NO_ANSWER)
        assert (metric_tally.undelivered, metric_tally.reason) == (1, NO_ANSWER)
    finally:
        # Let the threads left behind go: the exporters stop retrying once shut down.
        span_exporter.shutdown()
        metric_exporter.shutdown()


def test_the_exporters_logs_are_kept_off_the_apps_logs_but_the_apps_own_are_not() -> None:
    """A real exporter to a closed port logs its failure: through llm_toll's pipeline the
    record only gives the exit line its reason; from the app's own exporter (same class,
    same logger) it reaches the app's handler as before."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Only this test's exports: the threads other tests abandoned may still log.
            if record.thread == threading.get_ident():
                records.append(record)

    settings = ExportSettings(traces=True, endpoint=f"http://127.0.0.1:{closed_port()}")
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    span = tracer_provider.get_tracer("test").start_span("refused")
    span.end()
    assert isinstance(span, ReadableSpan)
    tally = Tally(SPANS, settings.destination("TRACES"))
    ours = DeliveringSpanExporter(
        ExportSettings(traces=True, endpoint=settings.endpoint, timeout_s=0.5).span_exporter(),
        tally,
    )
    apps = ExportSettings(traces=True, endpoint=settings.endpoint, timeout_s=0.5).span_exporter()
    _quiet_logs.install()
    handler = Keep(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        assert ours.export([span]) is SpanExportResult.FAILURE
        assert records == []
        assert apps.export([span]) is SpanExportResult.FAILURE
        assert records, "the app's own exporter's failure must reach the app's logging"
    finally:
        root.removeHandler(handler)
        ours.shutdown()
        apps.shutdown()


def test_the_exit_line_names_what_was_not_delivered_where_and_why() -> None:
    spans = Tally(SPANS, "http://127.0.0.1:4318")
    metrics = Tally(METRIC_EXPORTS, "http://127.0.0.1:4318", final_export=True)
    assert undelivered_line([spans, metrics]) is None

    spans.handed(12)
    spans.note("connection refused")
    spans.note(NO_ANSWER)  # later reasons are the first one's consequences
    metrics.abandon()  # the last export was never made
    assert undelivered_line([spans, metrics]) == (
        "llm_toll: 12 spans not delivered to http://127.0.0.1:4318 (connection refused); "
        "1 metric export not delivered to http://127.0.0.1:4318 (no answer in time)"
    )
    metrics.note("connection refused")
    assert undelivered_line([spans, metrics]) == (
        "llm_toll: 12 spans and 1 metric export not delivered to http://127.0.0.1:4318 "
        "(connection refused)"
    )

    one = Tally(SPANS, "localhost:4317")
    one.handed(3)
    one.delivered(2)
    failed = Tally(METRIC_EXPORTS, "localhost:4317", final_export=True)
    for _ in range(3):
        failed.handed()
        failed.failed()
    failed.abandon()  # an export failed in flight, then the last one was never made
    assert undelivered_line([one, failed]) == (
        "llm_toll: 1 span and 4 metric exports not delivered to localhost:4317 (no answer in time)"
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            "Transient error HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded"
            ' with url: /v1/traces (Caused by NewConnectionError("HTTPConnection(host='
            "'127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] "
            'Connection refused")) encountered while exporting spans batch, retrying in 0.81s.',
            "connection refused",
        ),
        (
            "Transient error StatusCode.UNAVAILABLE encountered while exporting traces to "
            "127.0.0.1:9, retrying in 0.96s. Error details: failed to connect to all "
            "addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: Failed to connect to remote "
            "host: Connection refused",
            "connection refused",
        ),
        ("Failed to export spans batch due to timeout, max retries or shutdown.", NO_ANSWER),
        ("Failed to export metrics to h:4317, error code: StatusCode.DEADLINE_EXCEEDED", NO_ANSWER),
        ("Failed to export span batch code: 503, reason: Service Unavailable", "HTTP 503"),
        (
            "Failed to export traces to h:4317, error code: StatusCode.UNAUTHENTICATED",
            "gRPC UNAUTHENTICATED",
        ),
        ("Queue full, dropping span.", "export queue full"),
        ("Exporter already shutdown, ignoring call", None),
    ],
)
def test_reasons_are_read_from_the_exporters_messages(message: str, reason: str | None) -> None:
    assert reason_in(message) == reason


TRACES_AND_ALL = {
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/v1/traces",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://all:2",
}


@pytest.mark.parametrize(
    ("settings", "environment", "destination"),
    [
        (
            ExportSettings(endpoint="https://user:secret@otel.example:4318/"),
            {},
            "https://otel.example:4318",
        ),
        (ExportSettings(), TRACES_AND_ALL, "http://t:1"),
        (ExportSettings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://all:2"}, "http://all:2"),
        (ExportSettings(), {}, "http://localhost:4318"),
        (ExportSettings(protocol="grpc"), {}, "http://localhost:4317"),
        (ExportSettings(protocol="grpc", endpoint="collector:4317"), {}, "collector:4317"),
        (ExportSettings(endpoint="http://[::1]:4318"), {}, "http://[::1]:4318"),
    ],
)
def test_the_destination_is_named_without_path_or_credentials(
    settings: ExportSettings,
    environment: dict[str, str],
    destination: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    assert settings.destination("TRACES") == destination
