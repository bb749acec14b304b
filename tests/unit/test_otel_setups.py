"""Accounting does not depend on the app's OpenTelemetry set-up.

Global providers can be set once per process, so each set-up runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PRELUDE = """
import json, sys
from llm_toll import SQLiteStore, CostReporter, set_store, set_reporter, track_costs
store = SQLiteStore(sys.argv[1])
set_store(store)
set_reporter(CostReporter(enabled=False))

def response(i):
    return {"object": "chat.completion", "model": "gpt-4o", "id": f"c{i}", "choices": [],
            "usage": {"prompt_tokens": 10 + i, "completion_tokens": 5}}

@track_costs(project="setup", max_budget=100.0)
def ask(i):
    return response(i)
"""

SETUPS = {
    "no_sdk": """
for i in range(20):
    ask(i)
out = {}
""",
    "sampler_drops_everything": """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
exporter = InMemorySpanExporter()
provider = TracerProvider(sampler=ALWAYS_OFF)
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
for i in range(20):
    ask(i)
out = {"exported": len(exporter.get_finished_spans())}
""",
    "app_tracer_provider": """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from llm_toll import CostSpanProcessor
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
for i in range(20):
    ask(i)
processors = provider._active_span_processor._span_processors
spans = exporter.get_finished_spans()
requests = [s for s in spans if s.kind.name == "CLIENT"]
out = {
    "exported": len(requests),
    "runs": sorted({s.name for s in spans if s.kind.name == "INTERNAL"}),
    "run_spans": len(spans) - len(requests),
    "names": sorted({s.name for s in requests}),
    "cost_processors": sum(isinstance(p, CostSpanProcessor) for p in processors),
}
""",
}

EPILOGUE = """
out["rows"] = len(store.get_usage_logs("setup", limit=1000))
out["input_tokens"] = sum(r["input_tokens"] for r in store.get_usage_logs("setup", limit=1000))
print(json.dumps(out))
"""


def run_setup(name: str, tmp_path: Path) -> dict[str, object]:
    script = textwrap.dedent(PRELUDE) + textwrap.dedent(SETUPS[name]) + EPILOGUE
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ledger.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # nothing printed with nothing configured
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_every_call_recorded_exactly_once(setup: str, tmp_path: Path) -> None:
    result = run_setup(setup, tmp_path)
    assert result["rows"] == 20
    assert result["input_tokens"] == sum(10 + i for i in range(20))


def test_sampled_out_spans_are_not_exported_but_recorded(tmp_path: Path) -> None:
    assert run_setup("sampler_drops_everything", tmp_path)["exported"] == 0


def test_app_provider_gets_our_spans_and_one_processor(tmp_path: Path) -> None:
    result = run_setup("app_tracer_provider", tmp_path)
    assert result["exported"] == 20  # one span per request, under one per call (its run)
    assert result["names"] == ["chat gpt-4o"]
    assert result["run_spans"] == 20 and result["runs"] == ["ask"]
    assert result["cost_processors"] == 1
