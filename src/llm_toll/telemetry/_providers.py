"""Where llm_toll's spans and metrics go: the app's providers if it has SDK ones, else ours.

Rule: never replace a TracerProvider or MeterProvider that the app set. When the app has an
SDK TracerProvider, llm_toll creates its spans with it (so they flow through the app's
samplers and exporters) and attaches its CostSpanProcessor to it once; likewise metrics go
to the app's SDK MeterProvider. Otherwise, when export is asked for (the standard
``OTEL_EXPORTER_OTLP_*`` variables, or setup_telemetry()), llm_toll keeps private providers
exporting over OTLP, with bounded queues in background threads, so a slow or dead
Collector never blocks or fails a call, and shuts them down at exit within a fixed budget,
saying in one line what it could not deliver; and when nothing is configured, it records no
spans and no metrics at all. Accounting never depends on any of this.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple, cast

from opentelemetry import trace

from llm_toll._warnings import warn_once
from llm_toll.exceptions import TelemetryWarning
from llm_toll.telemetry._export import GRPC_NEEDS_EXTRA, ExportSettings

if TYPE_CHECKING:  # imported where used: a program with no SDK provider never loads the SDK
    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from llm_toll.telemetry._deadline import Clock
    from llm_toll.telemetry._delivering import Bounded, DeliveringSpanProcessor

SCOPE = "llm_toll"
# How often the global providers are looked up again (the API's lookup reads the
# environment on every call while no provider is set).
RECHECK_S = 0.1
# The tracer used when nothing is configured: calls skip span work altogether.
NO_TRACER: trace.Tracer = trace.NoOpTracer()

_lock = threading.Lock()
_attached: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
_processor_factory: Callable[[], SpanProcessor] | None = None
_settings: ExportSettings | None = None  # read from the environment at first use
_resource: Resource | None = None
_private_tracer_provider: TracerProvider | None = None
_private_spans: DeliveringSpanProcessor | None = None  # its exporting processor
_private_meter_provider: MeterProvider | None = None
_private_metrics: Bounded | None = None  # what bounds its flush and shutdown
# How long flush() waits by default for each of the private providers.
FLUSH_TIMEOUT_MS = 5000


class _Resolved(NamedTuple):
    """The global TracerProvider looked at, the tracer used for it, and when."""

    provider: object
    tracer: trace.Tracer
    checked_at: float


class _MeterCheck(NamedTuple):
    """Whether the global MeterProvider is an SDK one, and when that was looked up."""

    is_sdk: bool
    checked_at: float


_resolved: _Resolved | None = None
_meter_provider_checked = _MeterCheck(False, -RECHECK_S)
_on_reconfigure: list[Callable[[], None]] = []


def _is_sdk_provider(provider: object, module_name: str, class_name: str) -> bool:
    """Whether ``provider`` is the SDK's; the SDK is not imported to find out (an app with
    an SDK provider has imported it already)."""
    module = sys.modules.get(module_name)
    return module is not None and isinstance(provider, getattr(module, class_name))


def _version() -> str:
    from llm_toll._version import VERSION

    return VERSION


def setup_telemetry(
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    service_name: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    metric_export_interval_ms: int | None = None,
    traces: bool = True,
    metrics: bool = True,
    price_foreign_spans: bool = False,
) -> None:
    """Export llm_toll's spans and metrics over OTLP, explicitly.

    Arguments left out fall back to the standard variables (``OTEL_EXPORTER_OTLP_*``,
    ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_METRIC_EXPORT_INTERVAL``).
    ``protocol`` is ``"grpc"`` or ``"http/protobuf"`` (the default). ``timeout_s`` (a
    finite number of seconds > 0) and ``metric_export_interval_ms`` (a positive integer)
    are checked here: ValueError names a wrong one. Without any call to this function, the
    same variables decide on their own.

    Providers the app has set are never replaced: if it has an SDK TracerProvider or
    MeterProvider, llm_toll's spans or metrics keep going through the app's, and these
    settings apply only to what llm_toll exports itself.

    ``price_foreign_spans=True`` also prices and records the finished request spans that
    other GenAI instrumentations (``opentelemetry-instrumentation-openai-v2``, OpenLLMetry,
    OpenLIT...) make with the app's SDK TracerProvider, which llm_toll attaches to now (see
    ``_budget.foreign``); requests llm_toll records itself are never recorded twice.
    """
    global _settings, _resource, _resolved, _meter_provider_checked
    from opentelemetry.sdk.resources import Resource

    from llm_toll._options import count_option, seconds_option

    timeout_s = seconds_option("timeout_s", timeout_s)
    metric_export_interval_ms = count_option("metric_export_interval_ms", metric_export_interval_ms)
    attributes = dict(resource_attributes or {})
    if service_name:
        attributes["service.name"] = service_name
    asked = ExportSettings(
        traces=traces,
        metrics=metrics,
        endpoint=endpoint,
        protocol=protocol,
        headers=dict(headers or {}),
        timeout_s=timeout_s,
        metric_export_interval_ms=metric_export_interval_ms,
    )
    if asked.without_missing_exporters() != asked:
        raise ImportError(GRPC_NEEDS_EXTRA)
    with _lock:
        _shutdown_private()
        _settings = asked
        _resource = Resource.create(attributes)
        _resolved = None
        _meter_provider_checked = _MeterCheck(False, -RECHECK_S)
    for hook in _on_reconfigure:
        hook()
    from llm_toll._budget import foreign

    foreign.enable(price_foreign_spans)
    if price_foreign_spans:
        import llm_toll._runtime  # noqa: F401  (registers the processor factory)

        tracer()  # attaches the writer to the app's SDK TracerProvider, if it has one


def on_reconfigure(hook: Callable[[], None]) -> None:
    """Call ``hook`` after setup_telemetry() replaced the private providers."""
    _on_reconfigure.append(hook)


def set_processor_factory(factory: Callable[[], SpanProcessor]) -> None:
    """Register how to build the processor attached to each TracerProvider llm_toll uses."""
    global _processor_factory
    _processor_factory = factory


def settings() -> ExportSettings:
    global _settings
    if _settings is None:
        asked = ExportSettings.from_environment()
        _settings = asked.without_missing_exporters()
        if _settings != asked:  # configured by the environment: a call must not fail for it
            warn_once(
                "export-grpc",
                f"llm_toll: {GRPC_NEEDS_EXTRA}; what OTEL_EXPORTER_OTLP_PROTOCOL=grpc "
                "asks to export over gRPC is not exported.",
                TelemetryWarning,
            )
    return _settings


def _resource_get() -> Resource:
    global _resource
    if _resource is None:
        from opentelemetry.sdk.resources import Resource

        _resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    return _resource


def _attach_once(provider: TracerProvider) -> None:
    if provider in _attached or _processor_factory is None:
        return
    provider.add_span_processor(_processor_factory())
    _attached.add(provider)


def attach(provider: TracerProvider) -> None:
    """Attach llm_toll's CostSpanProcessor to ``provider``, an SDK TracerProvider the app
    did not set globally (one it gives an instrumentor, for instance), once: with
    ``setup_telemetry(price_foreign_spans=True)``, the spans made with it are priced too."""
    import llm_toll._runtime  # noqa: F401  (registers the processor factory)

    with _lock:
        _attach_once(provider)


def _private_tracer_provider_get() -> TracerProvider:
    global _private_tracer_provider, _private_spans
    if _private_tracer_provider is None:
        from opentelemetry.sdk.trace import TracerProvider

        from llm_toll.telemetry._delivering import span_processor

        # Shut down by _shutdown_private at exit, after llm_toll's worker ended its spans.
        provider = TracerProvider(resource=_resource_get(), shutdown_on_exit=False)
        _private_spans = span_processor(settings())
        provider.add_span_processor(_private_spans)
        _private_tracer_provider = provider
    return _private_tracer_provider


def tracer() -> trace.Tracer:
    """The tracer for llm_toll's spans; cheap to call on every call.

    A provider the app installs after llm_toll's first calls is picked up within RECHECK_S.
    """
    global _resolved
    resolved = _resolved
    now = time.monotonic()
    if resolved is not None and now - resolved.checked_at < RECHECK_S:
        return resolved.tracer
    current = trace.get_tracer_provider()
    if resolved is not None and resolved.provider is current:
        _resolved = _Resolved(current, resolved.tracer, now)
        return resolved.tracer
    with _lock:
        chosen: trace.Tracer
        if _is_sdk_provider(current, "opentelemetry.sdk.trace", "TracerProvider"):
            _attach_once(cast("TracerProvider", current))
            chosen = current.get_tracer(SCOPE, _version())
        elif settings().traces:
            provider = _private_tracer_provider_get()
            _attach_once(provider)
            chosen = provider.get_tracer(SCOPE, _version())
        else:
            chosen = NO_TRACER
        _resolved = _Resolved(current, chosen, now)
        return chosen


def _app_has_meter_provider() -> bool:
    global _meter_provider_checked
    check = _meter_provider_checked
    now = time.monotonic()
    if now - check.checked_at >= RECHECK_S:
        from opentelemetry import metrics  # looked up every RECHECK_S at the most

        is_sdk = _is_sdk_provider(
            metrics.get_meter_provider(), "opentelemetry.sdk.metrics", "MeterProvider"
        )
        check = _meter_provider_checked = _MeterCheck(is_sdk, now)
    return check.is_sdk


def metrics_wanted() -> bool:
    """Whether any MeterProvider can receive llm_toll's measurements.

    False when nothing is configured, so that calls skip metric work altogether; it turns
    True as soon as the app installs an SDK MeterProvider.
    """
    return _app_has_meter_provider() or settings().metrics


def meter() -> Meter:
    """The meter for llm_toll's instruments.

    The app's MeterProvider when it set one (or later sets one: the API's proxy meter
    forwards); a private one exporting over OTLP when only llm_toll's settings ask for it.
    """
    global _private_meter_provider, _private_metrics
    from opentelemetry import metrics

    if _app_has_meter_provider() or not settings().metrics:
        return metrics.get_meter(SCOPE, _version())
    with _lock:
        if _private_meter_provider is None:
            from opentelemetry.sdk.metrics import MeterProvider

            from llm_toll.telemetry._delivering import metric_reader

            reader, _private_metrics = metric_reader(settings())
            _private_meter_provider = MeterProvider(
                metric_readers=[reader], resource=_resource_get(), shutdown_on_exit=False
            )
        return _private_meter_provider.get_meter(SCOPE, _version())


def flush(timeout_millis: int = FLUSH_TIMEOUT_MS) -> None:
    """Push out what llm_toll's private providers hold, waiting at most ``timeout_millis``
    for each (the app flushes its own)."""
    meter_provider, bounded = _private_meter_provider, _private_metrics
    if _private_tracer_provider is not None:
        _private_tracer_provider.force_flush(timeout_millis)
    if meter_provider is not None and bounded is not None:
        bounded.flush(meter_provider.force_flush, timeout_millis / 1000)


def _shutdown_private(clock: Clock = time.monotonic) -> None:
    """Shut llm_toll's private providers down: their spans and metrics are delivered in
    parallel until a deadline EXIT_BUDGET_S away, the rest is dropped, and one line says
    what was. The app's own providers are the app's to shut down."""
    global _private_tracer_provider, _private_spans, _private_meter_provider, _private_metrics
    tracer_provider, spans = _private_tracer_provider, _private_spans
    meter_provider, metrics = _private_meter_provider, _private_metrics
    _private_tracer_provider = _private_spans = _private_meter_provider = _private_metrics = None
    pipelines: list[Bounded] = []
    if spans is not None:
        spans.start_shutdown()
        pipelines.append(spans.bounded)
    if meter_provider is not None and metrics is not None:
        metrics.start_shutdown(meter_provider.shutdown)
        pipelines.append(metrics)
    if not pipelines:
        return
    from llm_toll.telemetry._delivering import EXIT_BUDGET_S
    from llm_toll.telemetry._quiet_logs import LOGGER
    from llm_toll.telemetry._tally import undelivered_line

    deadline = clock() + EXIT_BUDGET_S
    for pipeline in pipelines:
        pipeline.finish_by(deadline, clock)
    if tracer_provider is not None:
        tracer_provider.shutdown()  # its other processors (llm_toll's writer): not telemetry
    line = undelivered_line(pipeline.tally for pipeline in pipelines)
    if line is not None:
        LOGGER.warning(line)


atexit.register(_shutdown_private)
