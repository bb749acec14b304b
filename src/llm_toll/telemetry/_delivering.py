"""llm_toll's own export pipelines: counted, quiet, and kept to a deadline when they flush
or shut down.

Only the providers llm_toll creates for itself are built from these; the app's providers
and exporters are never wrapped, flushed or shut down by llm_toll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from llm_toll.telemetry import _quiet_logs
from llm_toll.telemetry._deadline import Clock, Runner, wait_until
from llm_toll.telemetry._quiet_logs import LOGGER, Quiet
from llm_toll.telemetry._tally import METRIC_EXPORTS, SPANS, Tally, reason_in

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.metrics.export import MetricReader, MetricsData
    from opentelemetry.sdk.trace import ReadableSpan, Span

    from llm_toll.telemetry._export import ExportSettings

# What llm_toll's own telemetry may add to the process's exit: its spans and metrics are
# delivered in parallel until then, and whatever is left is dropped and counted.
EXIT_BUDGET_S = 1.0


class Bounded:
    """One pipeline's blocking work (flush, shutdown), run by a thread of its own and
    waited for until a deadline; past it, the work is left running and its tally told."""

    def __init__(self, name: str, tally: Tally) -> None:
        self.tally = tally
        self._runner = Runner(name)
        self._shutdown: threading.Event | None = None

    def _quietly(self, work: Callable[[], object]) -> Callable[[], None]:
        def job() -> None:
            with Quiet(self.tally):
                try:
                    work()
                except Exception as error:  # the SDK's shutdowns raise what their parts did
                    self.tally.note(reason_in(str(error)))
                    LOGGER.debug("export work failed", exc_info=True)

        return job

    def flush(
        self, work: Callable[[], object], timeout_s: float, clock: Clock = time.monotonic
    ) -> bool:
        """Run ``work``; whether it finished within ``timeout_s``."""
        if self._shutdown is not None:
            return False
        return wait_until(self._runner.submit(self._quietly(work)), clock() + timeout_s, clock)

    def start_shutdown(self, work: Callable[[], object]) -> None:
        """Start ``work``, the last job of this pipeline (later calls do nothing)."""
        if self._shutdown is None:
            self._shutdown = self._runner.submit(self._quietly(work))
            self._runner.close()

    def finish_by(self, deadline: float, clock: Clock = time.monotonic) -> bool:
        """Wait for the shutdown until ``deadline``; once abandoned, never wait again."""
        if self._shutdown is None:
            return True  # nothing was started
        if self.tally.abandoned:
            return False
        finished = wait_until(self._shutdown, deadline, clock)
        if not finished:
            self.tally.abandon()
        return finished


class DeliveringSpanExporter(SpanExporter):
    """An exporter of llm_toll's own spans: counted, quiet, never raising."""

    def __init__(self, exporter: SpanExporter, tally: Tally) -> None:
        self._exporter = exporter
        self._tally = tally
        _quiet_logs.install()  # the exporter's modules, and their loggers, exist now

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._tally.abandoned:  # left running past the exit deadline: send no more
            return SpanExportResult.FAILURE
        with Quiet(self._tally):
            try:
                result = self._exporter.export(spans)
            except Exception as error:
                self._tally.note(reason_in(str(error)))
                result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._tally.delivered(len(spans))
        else:
            self._tally.failed(len(spans))
        return result

    def shutdown(self) -> None:
        with Quiet(self._tally):
            self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with Quiet(self._tally):
            return self._exporter.force_flush(timeout_millis)


class DeliveringMetricExporter(MetricExporter):
    """An exporter of llm_toll's own metrics: counted, quiet, never raising."""

    def __init__(self, exporter: MetricExporter, tally: Tally) -> None:
        # The reader asks the exporter for these, as the SDK's own exporters set them.
        super().__init__(exporter._preferred_temporality, exporter._preferred_aggregation)
        self._exporter = exporter
        self._tally = tally
        _quiet_logs.install()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self._tally.handed()
        if self._tally.abandoned:
            self._tally.failed()
            return MetricExportResult.FAILURE
        with Quiet(self._tally):
            try:
                result = self._exporter.export(metrics_data, timeout_millis, **kwargs)
            except Exception as error:
                self._tally.note(reason_in(str(error)))
                result = MetricExportResult.FAILURE
        if result is MetricExportResult.SUCCESS:
            self._tally.delivered()
        else:
            self._tally.failed()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        with Quiet(self._tally):
            return self._exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        with Quiet(self._tally):
            self._exporter.shutdown(timeout_millis, **kwargs)


class DeliveringSpanProcessor(SpanProcessor):
    """The batch span processor of llm_toll's own TracerProvider: it counts the spans it
    is handed, and its flush and shutdown keep their deadline (the SDK's do not)."""

    def __init__(self, exporter: SpanExporter, bounded: Bounded) -> None:
        self._batch = BatchSpanProcessor(exporter)
        self.bounded = bounded
        self._tally = bounded.tally

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._tally.handed()  # the batch processor exports sampled spans only
        with Quiet(self._tally):  # "queue full" is counted, not printed
            self._batch.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.bounded.flush(self._batch.force_flush, timeout_millis / 1000)

    def shutdown(self) -> None:
        self.start_shutdown()
        self.bounded.finish_by(time.monotonic() + EXIT_BUDGET_S)

    def start_shutdown(self) -> None:
        self.bounded.start_shutdown(self._batch.shutdown)


def span_processor(settings: ExportSettings) -> DeliveringSpanProcessor:
    """The exporting processor of llm_toll's own TracerProvider."""
    tally = Tally(SPANS, settings.destination("TRACES"))
    exporter = DeliveringSpanExporter(settings.span_exporter(), tally)
    return DeliveringSpanProcessor(exporter, Bounded("llm_toll-span-export", tally))


def metric_reader(settings: ExportSettings) -> tuple[MetricReader, Bounded]:
    """The reader of llm_toll's own MeterProvider, and what bounds that provider's flush
    and shutdown."""
    tally = Tally(METRIC_EXPORTS, settings.destination("METRICS"), final_export=True)
    reader = settings.metric_reader(DeliveringMetricExporter(settings.metric_exporter(), tally))
    return reader, Bounded("llm_toll-metric-export", tally)
