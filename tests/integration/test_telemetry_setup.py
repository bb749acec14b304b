"""setup_telemetry() and the OTEL_* variables, each in a fresh interpreter (global state)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.endpoints import closed_port
from tests.support.otlp import OTLPReceiver

WORKLOAD = """
import json, sys, time
from llm_toll import SQLiteStore, CostReporter, set_store, set_reporter, track_costs
import llm_toll
store = SQLiteStore(sys.argv[1])
set_store(store)
set_reporter(CostReporter(enabled=False))

@track_costs(project="export", max_budget=100.0)
def ask(i):
    return {"object": "chat.completion", "model": "gpt-4o", "id": f"c{i}", "choices": [],
            "usage": {"prompt_tokens": 100 + i, "completion_tokens": 5}}

EXTRA = dict
SETUP
slowest = 0.0
for i in range(CALLS):
    start = time.perf_counter()
    ask(i)
    slowest = max(slowest, time.perf_counter() - start)
rows = len(store.get_usage_logs("export", limit=10000))
print(json.dumps({"slowest": slowest, "rows": rows, **EXTRA()}))
"""


def run(tmp_path: Path, setup: str, calls: int = 20, **env: str) -> dict[str, float]:
    return run_with_stderr(tmp_path, setup, calls, **env)[0]


def run_with_stderr(
    tmp_path: Path, setup: str, calls: int = 20, **env: str
) -> tuple[dict[str, float], str]:
    """Run the workload in a fresh interpreter; its result and what it wrote to stderr."""
    script = textwrap.dedent(WORKLOAD).replace("SETUP", textwrap.dedent(setup))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))}
    done = subprocess.run(
        [sys.executable, "-c", script.replace("CALLS", str(calls)), str(tmp_path / "l.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, float] = json.loads(done.stdout)
    return result, done.stderr


def test_explicit_setup_exports_spans_and_metrics(tmp_path: Path, receiver: OTLPReceiver) -> None:
    result = run(
        tmp_path,
        f"llm_toll.setup_telemetry(endpoint={receiver.endpoint!r}, service_name='billing',"
        " resource_attributes={'deployment.environment': 'test'})",
    )
    assert result["rows"] == 20
    assert len([s for s in receiver.requests() if s.name == "chat gpt-4o"]) == 20
    resource = receiver.resource_attributes()
    assert resource["service.name"] == "billing"
    assert resource["deployment.environment"] == "test"
    assert "llm_toll.cost" in receiver.metric_names()


def test_standard_variables_alone_export(tmp_path: Path, receiver: OTLPReceiver) -> None:
    result = run(
        tmp_path,
        "",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.endpoint + "/v1/traces",
        OTEL_SERVICE_NAME="from-env",
    )
    assert result["rows"] == 20
    assert len(receiver.requests()) == 20
    assert receiver.resource_attributes()["service.name"] == "from-env"
    assert receiver.metrics == []  # only traces were asked for


def test_sdk_disabled_exports_nothing(tmp_path: Path, receiver: OTLPReceiver) -> None:
    result = run(
        tmp_path, "", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SDK_DISABLED="true"
    )
    assert result["rows"] == 20  # accounting is not telemetry
    assert receiver.traces == [] and receiver.metrics == []


def test_the_apps_providers_are_kept(tmp_path: Path, receiver: OTLPReceiver) -> None:
    setup = f"""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    app_exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    trace.set_tracer_provider(provider)
    llm_toll.setup_telemetry(endpoint={receiver.endpoint!r})
    EXTRA = lambda: {{"app_spans": sum(s.kind.name == "CLIENT"
                                       for s in app_exporter.get_finished_spans()),
                      "global_is_apps": trace.get_tracer_provider() is provider}}
    """
    result = run(tmp_path, setup)
    assert result["rows"] == 20
    # Our spans went through the app's provider and exporter, not a second one of ours.
    assert result["app_spans"] == 20
    assert result["global_is_apps"]
    assert receiver.spans() == []


def test_a_dead_collector_neither_fails_nor_stalls_calls(tmp_path: Path) -> None:
    """Export runs in background threads: no call waits for the Collector, none fails, and
    nothing is lost. Every export attempt is recorded with the thread that made it."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    setup = f"""
    import threading
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporting_threads = set()
    exported = threading.Event()
    original_export = OTLPSpanExporter.export
    def export(self, batch, *args, **kwargs):
        exporting_threads.add(threading.get_ident())
        exported.set()
        return original_export(self, batch, *args, **kwargs)
    OTLPSpanExporter.export = export
    llm_toll.setup_telemetry(endpoint={endpoint!r}, timeout_s=1, metric_export_interval_ms=200)
    EXTRA = lambda: {{"exported": exported.wait(60),
                      "by_caller": threading.get_ident() in exporting_threads}}
    """
    result = run(tmp_path, setup, calls=300)
    assert result["rows"] == 300  # nothing lost
    assert result["exported"]  # the spans were sent (to a port nobody listens on)...
    assert not result["by_caller"]  # ...by a background thread, never by a call


def test_grpc_without_its_extra_warns_and_never_fails_a_call(tmp_path: Path) -> None:
    """OTLP over gRPC is the grpc extra: asked for by the environment without it, calls go
    on and are recorded, with one warning that says what to install."""
    hide_grpc = "import sys; sys.modules['opentelemetry.exporter.otlp.proto.grpc'] = None"
    result, stderr = run_with_stderr(
        tmp_path,
        hide_grpc,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
    )
    assert result["rows"] == 20
    assert stderr.count("pip install 'llm-toll[grpc]'") == 1
    # Asked for in code, by setup_telemetry(), it is an ImportError at once: the script fails.
    explicit = hide_grpc + "; llm_toll.setup_telemetry(protocol='grpc')"
    with pytest.raises(AssertionError, match=re.escape("pip install 'llm-toll[grpc]'")):
        run(tmp_path, explicit)
