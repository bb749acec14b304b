"""Jaeger's two query APIs, read into one ``SpanView`` per span: ``/api/v3/traces``
(OTLP JSON) and the older ``/api/traces`` (Jaeger's own JSON)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class SpanView:
    """One span as Jaeger returns it, from either query API."""

    service: str
    scope: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    error: bool
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]


def _otlp_value(value: Mapping[str, Any]) -> Any:
    if "intValue" in value:
        return int(value["intValue"])
    for key in ("stringValue", "doubleValue", "boolValue"):
        if key in value:
            return value[key]
    return value  # arrays, maps, bytes: kept as they are


def _otlp_attributes(attributes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {a["key"]: _otlp_value(a.get("value", {})) for a in attributes}


def spans_from_api_v3(result: Mapping[str, Any]) -> list[SpanView]:
    """The spans of an ``/api/v3/traces`` answer (OTLP JSON)."""
    spans = []
    for resource_spans in result.get("resourceSpans", []):
        resource = _otlp_attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for span in scope_spans.get("spans", []):
                spans.append(
                    SpanView(
                        service=str(resource.get("service.name", "")),
                        scope=scope,
                        name=span["name"],
                        trace_id=span["traceId"],
                        span_id=span["spanId"],
                        parent_id=span.get("parentSpanId") or None,
                        kind=_KINDS.get(span.get("kind", 0), "unspecified"),
                        error=span.get("status", {}).get("code") == 2,
                        attributes=_otlp_attributes(span.get("attributes", [])),
                        events=[
                            (event["name"], _otlp_attributes(event.get("attributes", [])))
                            for event in span.get("events", [])
                        ],
                    )
                )
    return spans


def spans_from_api_v1(traces: Iterable[Mapping[str, Any]]) -> list[SpanView]:
    """The spans of an ``/api/traces`` answer (Jaeger's own JSON)."""
    spans = []
    for trace in traces:
        processes = trace.get("processes", {})
        for span in trace.get("spans", []):
            tags = {tag["key"]: tag["value"] for tag in span.get("tags", [])}
            parents = [
                r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"
            ]
            events = []
            for log in span.get("logs", []):
                fields = {field["key"]: field["value"] for field in log.get("fields", [])}
                events.append((str(fields.pop("event", "")), fields))
            # Jaeger's translation of the OTLP fields into tags; the rest are attributes.
            error = tags.pop("otel.status_code", "") == "ERROR" or tags.pop("error", False) is True
            for key in ("otel.status_description", "otel.scope.version", "error"):
                tags.pop(key, None)
            spans.append(
                SpanView(
                    service=processes.get(span.get("processID"), {}).get("serviceName", ""),
                    scope=str(tags.pop("otel.scope.name", "")),
                    name=span["operationName"],
                    trace_id=span["traceID"],
                    span_id=span["spanID"],
                    parent_id=parents[0] if parents else None,
                    kind=str(tags.pop("span.kind", "unspecified")),
                    error=error,
                    attributes=tags,
                    events=events,
                )
            )
    return spans
