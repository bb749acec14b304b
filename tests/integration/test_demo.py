"""`make demo`: runs with no API key, hits a budget, and exports over OTLP when asked to."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.otlp import OTLPReceiver


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
    assert projects == {"support-bot", "research-agent", "summarizer", "experiments"}
    assert "rate limited" in done.stdout and "No price is known" in done.stdout
    # Read back as the CLI shows it: the unpriced call marked, not a bare $0, and the
    # period without reset named as everywhere else.
    summary = done.stdout.split("Summary, read back from the store:")[1]
    assert "$0.0000*" in summary and "* unpriced" in summary
    assert "research-agent  lifetime" in summary


def test_demo_exports_spans_and_metrics_over_otlp(tmp_path: Path, receiver: OTLPReceiver) -> None:
    done = run_demo(
        tmp_path / "demo.db",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="llm-toll-demo",
    )
    assert done.returncode == 0, done.stderr
    names = {span.name for span in receiver.spans()}
    expected = {"chat gpt-4o-mini", "chat claude-sonnet-4-6", "generate_content gemini-2.5-flash"}
    assert expected <= names
    assert receiver.resource_attributes()["service.name"] == "llm-toll-demo"
    wanted = {"llm_toll.cost", "gen_ai.client.token.usage", "llm_toll.budget.rejections"}
    assert wanted <= receiver.metric_names()
