"""`make demo`: runs with no API key, hits a budget, and exports over OTLP when asked to."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class OTLPReceiver(ThreadingHTTPServer):
    """A minimal OTLP/HTTP endpoint that decodes and keeps what it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []


class _Handler(BaseHTTPRequestHandler):
    server: OTLPReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            self.server.traces.append(ExportTraceServiceRequest.FromString(body))
        elif self.path == "/v1/metrics":
            self.server.metrics.append(ExportMetricsServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    server = OTLPReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_demo(db: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))}
    return subprocess.run(
        [sys.executable, "-m", "llm_toll.demo", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**clean, **env},
    )


def test_demo_runs_hits_a_budget_and_summarises(tmp_path: Path) -> None:
    done = run_demo(tmp_path / "demo.db")
    assert done.returncode == 0, done.stderr
    assert "refused" in done.stdout and "Budget exceeded" in done.stdout
    assert "Summary, read back from the store" in done.stdout
    with sqlite3.connect(tmp_path / "demo.db") as conn:
        projects = {row[0] for row in conn.execute("SELECT DISTINCT project FROM usage_logs")}
    assert projects == {"support-bot", "research-agent", "summarizer"}


def test_demo_exports_spans_and_metrics_over_otlp(tmp_path: Path, receiver: OTLPReceiver) -> None:
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    done = run_demo(
        tmp_path / "demo.db",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_SERVICE_NAME="llm-toll-demo",
    )
    assert done.returncode == 0, done.stderr
    spans = [
        span
        for request in receiver.traces
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    names = {span.name for span in spans}
    assert {
        "chat gpt-4o-mini",
        "chat claude-sonnet-4-6",
        "generate_content gemini-2.5-flash",
    } <= names
    services = {
        attribute.value.string_value
        for request in receiver.traces
        for resource_spans in request.resource_spans
        for attribute in resource_spans.resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"llm-toll-demo"}
    metric_names = {
        metric.name
        for request in receiver.metrics
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
    assert {
        "llm_toll.cost",
        "gen_ai.client.token.usage",
        "llm_toll.budget.rejections",
    } <= metric_names
