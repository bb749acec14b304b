"""OTLP export settings: from the standard ``OTEL_*`` variables or from setup_telemetry().

Exporters are built with explicit arguments only where the caller gave them; everything
else is left to the OpenTelemetry exporters, which read the standard variables themselves
(per-signal endpoints, headers, timeouts, certificates, compression).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDK and the exporters are imported when export is set up
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter

GRPC = "grpc"
HTTP = "http/protobuf"
GRPC_NEEDS_EXTRA = "OTLP over gRPC needs the grpc extra: pip install 'llm-toll[grpc]'"
# Where the OTLP exporters send to when no endpoint is set (the specification's defaults).
DEFAULT_ENDPOINTS = {HTTP: "http://localhost:4318", GRPC: "http://localhost:4317"}


@dataclass(frozen=True)
class ExportSettings:
    """Where and how to export; ``None`` fields fall back to the ``OTEL_*`` variables."""

    traces: bool = False
    metrics: bool = False
    endpoint: str | None = None
    protocol: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None
    metric_export_interval_ms: int | None = None

    @classmethod
    def from_environment(cls) -> ExportSettings:
        """Export what the standard variables ask for (nothing when they are unset)."""
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        return cls(traces=_requested("TRACES"), metrics=_requested("METRICS"))

    def without_missing_exporters(self) -> ExportSettings:
        """These settings with the signals whose exporter is not installed turned off (gRPC
        is an extra; OTLP over HTTP is always there)."""
        if grpc_installed():
            return self
        return replace(
            self,
            traces=self.traces and self.protocol_for("TRACES") != GRPC,
            metrics=self.metrics and self.protocol_for("METRICS") != GRPC,
        )

    def protocol_for(self, signal: str) -> str:
        return (
            self.protocol
            or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or HTTP
        ).strip()

    def _arguments(self, signal: str, path: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if self.endpoint:
            base = self.endpoint.rstrip("/")
            # OTLP/HTTP takes a full URL per signal; gRPC takes the host and port.
            arguments["endpoint"] = base if self.protocol_for(signal) == GRPC else base + path
        if self.headers:
            arguments["headers"] = dict(self.headers)
        if self.timeout_s is not None:
            arguments["timeout"] = self.timeout_s
        return arguments

    def span_exporter(self) -> SpanExporter:
        arguments = self._arguments("TRACES", "/v1/traces")
        if self.protocol_for("TRACES") == GRPC:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(**arguments)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPSpanExporter,
        )

        return HTTPSpanExporter(**arguments)

    def metric_exporter(self) -> MetricExporter:
        arguments = self._arguments("METRICS", "/v1/metrics")
        if self.protocol_for("METRICS") == GRPC:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            return OTLPMetricExporter(**arguments)
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HTTPMetricExporter,
        )

        return HTTPMetricExporter(**arguments)

    def metric_reader(self, exporter: MetricExporter) -> MetricReader:
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        # The interval defaults to OTEL_METRIC_EXPORT_INTERVAL (60 s) inside the SDK.
        return PeriodicExportingMetricReader(
            exporter, export_interval_millis=self.metric_export_interval_ms
        )

    def destination(self, signal: str) -> str:
        """Where ``signal`` is sent, as ``scheme://host:port`` (no path, no credentials)."""
        from urllib.parse import urlsplit

        protocol = self.protocol_for(signal)
        url = (
            self.endpoint
            or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or DEFAULT_ENDPOINTS.get(protocol, DEFAULT_ENDPOINTS[HTTP])
        ).strip()
        parts = urlsplit(url if "://" in url else "//" + url)  # gRPC takes a bare host:port
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        try:
            port = f":{parts.port}" if parts.port is not None else ""
        except ValueError:  # a port that is not a number: the exporter says so itself
            port = ""
        return f"{parts.scheme}://{host}{port}" if parts.scheme else f"{host}{port}"


def grpc_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None
    except ModuleNotFoundError:
        return False


def _requested(signal: str) -> bool:
    endpoint = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    chosen = os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower()
    return bool(endpoint) and chosen != "none"
