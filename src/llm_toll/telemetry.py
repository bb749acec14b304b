"""Where llm_toll's spans and metrics go: the app's providers if it has SDK ones, else ours.

Rule: never replace a TracerProvider or MeterProvider that the app set. When the app has an
SDK TracerProvider, llm_toll creates its spans with it (so they flow through the app's
exporters and samplers) and attaches its CostSpanProcessor to it once. Otherwise, when the
standard ``OTEL_EXPORTER_OTLP_*`` variables ask for export, llm_toll keeps a private
TracerProvider exporting over OTLP; and when nothing is configured, it records no spans at
all (a span nobody can see is pure overhead). Accounting never depends on any of this.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from llm_toll.version import VERSION

SCOPE = "llm_toll"

_lock = threading.Lock()
_attached: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
_private_tracer_provider: TracerProvider | None = None
_private_meter_provider: MeterProvider | None = None
# (the global provider we resolved against, the tracer we use for it, when we checked)
_resolved: tuple[object, trace.Tracer, float] | None = None
# How often the global providers are looked up again.
RECHECK_S = 0.1
_meter_provider_checked: tuple[bool, float] = (False, -RECHECK_S)
_processor_factory: Callable[[], SpanProcessor] | None = None
# The tracer used when nothing is configured: calls skip span work altogether.
NO_TRACER: trace.Tracer = trace.NoOpTracer()
_metrics_export_requested: bool | None = None


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _otlp_requested(signal: str) -> bool:
    return (
        bool(
            os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        )
        and os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower() != "none"
    )


def _otlp_protocol(signal: str) -> str:
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _span_exporter() -> SpanExporter:
    if _otlp_protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPSpanExporter()


def _metric_reader() -> MetricReader:
    if _otlp_protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
    return PeriodicExportingMetricReader(OTLPMetricExporter())


def set_processor_factory(factory: Callable[[], SpanProcessor]) -> None:
    """Register how to build the processor attached to each TracerProvider llm_toll uses."""
    global _processor_factory
    _processor_factory = factory


def _attach_once(provider: TracerProvider) -> None:
    if provider in _attached or _processor_factory is None:
        return
    provider.add_span_processor(_processor_factory())
    _attached.add(provider)


def _private_tracer_provider_get() -> TracerProvider:
    global _private_tracer_provider
    if _private_tracer_provider is None:
        # Shut down by _shutdown below, after llm_toll's worker has ended its last spans.
        provider = TracerProvider(resource=Resource.create(), shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(_span_exporter()))
        _private_tracer_provider = provider
    return _private_tracer_provider


def tracer() -> trace.Tracer:
    """The tracer for llm_toll's spans; cheap to call on every call.

    The global provider is looked up again at most every RECHECK_S (the API's lookup reads
    the environment each time while no provider is set), so a provider the app installs
    after llm_toll's first calls is picked up within that time.
    """
    global _resolved
    resolved = _resolved
    now = time.monotonic()
    if resolved is not None and now - resolved[2] < RECHECK_S:
        return resolved[1]
    current = trace.get_tracer_provider()
    if resolved is not None and resolved[0] is current:
        _resolved = (current, resolved[1], now)
        return resolved[1]
    with _lock:
        chosen: trace.Tracer
        if isinstance(current, TracerProvider):
            _attach_once(current)
            chosen = current.get_tracer(SCOPE, VERSION)
        elif not sdk_disabled() and _otlp_requested("TRACES"):
            provider = _private_tracer_provider_get()
            _attach_once(provider)
            chosen = provider.get_tracer(SCOPE, VERSION)
        else:
            chosen = NO_TRACER
        _resolved = (current, chosen, now)
        return chosen


def meter() -> metrics.Meter:
    """The meter for llm_toll's instruments.

    The app's MeterProvider when it set one (or later sets one: the API's proxy meter
    forwards); a private one exporting over OTLP when only the environment asks for export.
    """
    global _private_meter_provider
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider) or sdk_disabled() or not _otlp_requested("METRICS"):
        return metrics.get_meter(SCOPE, VERSION)
    with _lock:
        if _private_meter_provider is None:
            _private_meter_provider = MeterProvider(
                metric_readers=[_metric_reader()],
                resource=Resource.create(),
                shutdown_on_exit=False,
            )
        return _private_meter_provider.get_meter(SCOPE, VERSION)


def metrics_wanted() -> bool:
    """Whether any MeterProvider can receive llm_toll's measurements.

    False when nothing is configured, so that calls skip metric work altogether; it turns
    True as soon as the app installs an SDK MeterProvider.
    """
    global _metrics_export_requested, _meter_provider_checked
    is_sdk, checked = _meter_provider_checked
    now = time.monotonic()
    if now - checked >= RECHECK_S:
        is_sdk = isinstance(metrics.get_meter_provider(), MeterProvider)
        _meter_provider_checked = (is_sdk, now)
    if is_sdk:
        return True
    if _metrics_export_requested is None:
        _metrics_export_requested = not sdk_disabled() and _otlp_requested("METRICS")
    return _metrics_export_requested


def flush(timeout_millis: int = 5000) -> None:
    """Push out what llm_toll's private providers hold (the app flushes its own)."""
    if _private_tracer_provider is not None:
        _private_tracer_provider.force_flush(timeout_millis)
    if _private_meter_provider is not None:
        _private_meter_provider.force_flush(timeout_millis)


def _shutdown() -> None:
    for provider in (_private_tracer_provider, _private_meter_provider):
        if provider is not None:
            provider.shutdown()


atexit.register(_shutdown)
