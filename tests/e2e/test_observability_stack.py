"""End to end: the demo's calls, through the Collector, in Jaeger, Prometheus and Alertmanager.

The stack is real and local (see conftest.py): llm_toll's own Collector build, Jaeger v2,
Prometheus, Alertmanager and a webhook receiver, all on 127.0.0.1. ``python -m
llm_toll.demo`` runs once against it; each test then checks one destination against the
SQLite store the demo recorded into. Results are polled against deadlines (export,
batching, scrape and rule evaluation all take their time), never waited for with sleeps.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from llm_toll import SQLiteStore
from llm_toll._budget.forecast import forecast_budget
from tests.e2e import workload_collector_kill as workload
from tests.e2e.binaries import Binaries
from tests.e2e.harness import REPO, child_env, eventually, tail
from tests.e2e.jaeger_api import SpanView
from tests.e2e.services import Alertmanager, Collector, Prometheus
from tests.e2e.stack import DemoRun, Stack, demo_env

# The tests' own deadlines bound everything below; the first (cold) build of the binaries
# happens in fixture set-up, which this timeout does not count (func_only).
pytestmark = pytest.mark.timeout(240, func_only=True)

DASHBOARD = REPO / "deploy/grafana/dashboards/llm_toll.json"
DEMO_PROVIDERS = {
    "support-bot": "openai",
    "research-agent": "anthropic",
    "summarizer": "gcp.gemini",
    "experiments": "openai",
}
# (limit in USD, period) of the demo's budgets; "experiments" has none.
DEMO_BUDGETS = {
    "support-bot": (1.0, "daily"),
    "research-agent": (0.1, "lifetime"),
    "summarizer": (5.0, "monthly"),
}
EXPORT_DEADLINE_S = 60.0  # export + Collector batch + scrape + rule evaluation, with slack


class Ledger(NamedTuple):
    calls: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int


def ledger(db: Path) -> dict[str, Ledger]:
    """What the store recorded, per project: exact integers."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT project, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)"
            " FROM usage_logs GROUP BY project"
        )
        return {row[0]: Ledger(*row[1:]) for row in rows}


def spent_nanos(db: Path) -> dict[str, int]:
    """The running totals of the budget store (period 'all'), per project."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT project, spent_nanos FROM budget_totals WHERE period = 'all'")
        return dict(rows)


def store_summaries(db: Path) -> dict[str, float]:
    """``SQLiteStore.get_all_project_summaries()``: total_cost (USD) per project."""
    with SQLiteStore(db) as store:
        return {row["project"]: row["total_cost"] for row in store.get_all_project_summaries()}


# --- 1. configuration ------------------------------------------------------------------


def test_collector_config_validates(binaries: Binaries, tmp_path: Path) -> None:
    collector = Collector(binaries.collector, tmp_path, jaeger_otlp="127.0.0.1:4317")
    done = collector.validate()
    assert done.returncode == 0, f"`validate` failed:\n{done.stdout}{done.stderr}"

    # The check is real: without its one required variable the same config is refused.
    del collector.env_vars["JAEGER_OTLP_ENDPOINT"]
    refused = collector.validate()
    assert refused.returncode != 0
    assert "otlp_grpc/jaeger" in refused.stdout + refused.stderr


def test_prometheus_and_alertmanager_configs_check(binaries: Binaries, tmp_path: Path) -> None:
    """The rendered configurations, as the stack runs them, pass promtool and amtool."""
    prometheus = Prometheus(binaries.prometheus, tmp_path, "127.0.0.1:8889", "127.0.0.1:9093")
    checked = subprocess.run(
        [str(binaries.promtool), "check", "config", str(prometheus.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "rules found" in checked.stdout  # alerts.yaml too

    alertmanager = Alertmanager(binaries.alertmanager, tmp_path, "http://127.0.0.1:1/hook")
    checked = subprocess.run(
        [str(binaries.amtool), "check-config", str(alertmanager.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- 2. traces in Jaeger ---------------------------------------------------------------


def test_jaeger_has_every_call_with_tokens_cost_and_budget_events(
    stack: Stack, demo_run: DemoRun
) -> None:
    recorded = ledger(demo_run.db)
    assert set(recorded) == set(DEMO_PROVIDERS), demo_run.stdout
    # What the demo says it was refused: one span each, besides one per recorded call.
    refusals = Counter(
        BudgetExceededError=demo_run.stdout.count("  refused:"),
        LocalRateLimitError=demo_run.stdout.count("  rate limited:"),
    )
    assert refusals["BudgetExceededError"] >= 1 and refusals["LocalRateLimitError"] >= 1
    expected = sum(row.calls for row in recorded.values()) + refusals.total()

    def ours(found: tuple[str, list[SpanView]]) -> list[SpanView]:
        """llm_toll's request spans (each call's run has an INTERNAL span too)."""
        return [span for span in found[1] if span.scope == "llm_toll" and span.kind == "client"]

    api, spans = eventually(
        lambda: stack.jaeger.spans(
            demo_run.service_name,
            demo_run.started - timedelta(minutes=1),
            demo_run.finished + timedelta(minutes=1),
        ),
        lambda found: len(ours(found)) >= expected,
        timeout=EXPORT_DEADLINE_S,
    )
    llm_spans = ours((api, spans))
    assert len(llm_spans) == expected, (
        f"{api}: {len(llm_spans)} llm_toll spans of {demo_run.service_name}, "
        f"expected {expected}\n{stack.logs('collector', 'jaeger')}"
    )

    # Every recorded call is a span with its tokens and cost: per project, the spans add up
    # to the store's ledger (tokens exactly, money to the micro-dollar).
    priced = [span for span in llm_spans if "gen_ai.usage.cost.amount" in span.attributes]
    seen: dict[str, list[Any]] = {}
    for span in priced:
        a = span.attributes
        assert span.kind == "client" and not span.error, span
        assert span.service == demo_run.service_name
        assert a["gen_ai.operation.name"] in {"chat", "generate_content"}
        model = a.get("gen_ai.request.model", a.get("gen_ai.response.model"))
        assert span.name == f"{a['gen_ai.operation.name']} {model}"
        assert a["gen_ai.usage.cost.currency"] == "USD"
        assert a["gen_ai.provider.name"] == DEMO_PROVIDERS[a["llm_toll.project"]]
        assert (
            isinstance(a["gen_ai.usage.input_tokens"], int) and a["gen_ai.usage.input_tokens"] > 0
        )
        assert isinstance(a["gen_ai.usage.output_tokens"], int)
        assert a["llm_toll.price.known"] is (a["llm_toll.project"] != "experiments")
        totals = seen.setdefault(a["llm_toll.project"], [0, 0, 0, 0.0])
        totals[0] += 1
        totals[1] += a["gen_ai.usage.input_tokens"]
        totals[2] += a["gen_ai.usage.output_tokens"]
        totals[3] += a["gen_ai.usage.cost.amount"]
    assert {p: tuple(t[:3]) for p, t in seen.items()} == {
        p: (row.calls, row.input_tokens, row.output_tokens) for p, row in recorded.items()
    }
    for project, row in recorded.items():
        assert seen[project][3] == pytest.approx(row.cost_nanos / 1e9, abs=1e-6), project

    # The budget state after each call: the project's limit and period, and the spend so far
    # (research-agent's budget never resets: its last call's spend is the store's total).
    for span in priced:
        project = span.attributes["llm_toll.project"]
        budget = (
            span.attributes.get("llm_toll.budget.limit"),
            span.attributes.get("llm_toll.budget.period"),
        )
        assert budget == DEMO_BUDGETS.get(project, (None, None)), span
    research = [
        s.attributes for s in priced if s.attributes["llm_toll.project"] == "research-agent"
    ]
    assert max(a["llm_toll.budget.spent"] for a in research) == pytest.approx(
        recorded["research-agent"].cost_nanos / 1e9, abs=1e-9
    )

    # The refused calls: error spans of their own, the budget refusal with its event.
    refused = [span for span in llm_spans if span not in priced]
    assert all(span.error and span.kind == "client" for span in refused), refused
    assert Counter(span.attributes.get("error.type") for span in refused) == refusals
    for span in refused:
        if span.attributes["error.type"] == "BudgetExceededError":
            assert span.attributes["llm_toll.project"] == "research-agent"
            assert [name for name, _ in span.events] == ["llm_toll.budget.exceeded"]

    # research-agent's $0.10 budget: each threshold once, then "exceeded" on the crossing
    # call and on each refusal.
    events = [(name, attrs) for span in llm_spans for name, attrs in span.events]
    assert {attrs["llm_toll.project"] for _, attrs in events} == {"research-agent"}
    thresholds = sorted(a["llm_toll.budget.threshold"] for n, a in events if "threshold" in n)
    assert thresholds == [0.5, 0.8, 1.0]
    exceeded = [a for n, a in events if n == "llm_toll.budget.exceeded"]
    assert len(exceeded) == 1 + refusals["BudgetExceededError"]
    assert all(a["llm_toll.budget.limit"] == 0.1 for a in exceeded)
    assert all(a["llm_toll.budget.spent"] >= 0.1 for a in exceeded)

    # Structure. The demo traces like an app running OpenTelemetry: a span per scenario
    # ("demo <project>"); under it, a run span (INTERNAL) per decorated call, which carries
    # the run's totals; under the run, the spans of the requests its code made (the provider
    # SDK's own spans, such as the anthropic SDK's `anthropic.messages.create`, sit between
    # the run and the request that the SDK sends). A call refused before it ran has no run:
    # its refusal span is right under the scenario's.
    by_id = {span.span_id: span for span in spans}
    runs = [span for span in spans if span.scope == "llm_toll" and span.kind == "internal"]
    for run in runs:
        parent = by_id.get(run.parent_id) if run.parent_id else None
        assert parent is not None and parent.name == f"demo {run.attributes['llm_toll.project']}"
        assert "gen_ai.usage.cost.amount" not in run.attributes  # never counted twice
    for span in llm_spans:
        chain = []
        parent = by_id.get(span.parent_id) if span.parent_id else None
        while parent is not None and not parent.name.startswith("demo "):
            chain.append(parent)
            parent = by_id.get(parent.parent_id) if parent.parent_id else None
        assert parent is not None, f"llm_toll span outside its scenario: {span}"
        assert parent.name == f"demo {span.attributes['llm_toll.project']}", parent
        assert parent.trace_id == span.trace_id
        if span in priced:
            assert any(s in runs for s in chain), f"a recorded request outside a run: {span}"
    sdk_spans = [span for span in spans if span.scope not in ("llm_toll", "llm_toll.demo")]
    assert sdk_spans, "no provider SDK span was exported under llm_toll's spans"
    for span in sdk_spans:
        parent = by_id.get(span.parent_id) if span.parent_id else None
        assert parent is not None and parent.scope == "llm_toll", span
    # The runs' totals add up to the ledger, per project.
    run_totals: dict[str, list[float]] = {}
    for run in runs:
        totals = run_totals.setdefault(run.attributes["llm_toll.project"], [0, 0.0])
        totals[0] += run.attributes["llm_toll.run.requests"]
        totals[1] += run.attributes["llm_toll.run.cost"]
    for project, row in recorded.items():
        assert run_totals[project][0] == row.calls, project
        assert run_totals[project][1] == pytest.approx(row.cost_nanos / 1e9, abs=1e-6), project


# --- 3. metrics in Prometheus ----------------------------------------------------------


def test_prometheus_cost_counter_equals_the_store(stack: Stack, demo_run: DemoRun) -> None:
    totals = spent_nanos(demo_run.db)
    expected = {project: nanos / 1e9 for project, nanos in totals.items()}
    assert set(expected) == set(DEMO_PROVIDERS)
    # The running totals, the ledger and the store's own summary agree.
    assert totals == {p: row.cost_nanos for p, row in ledger(demo_run.db).items()}
    assert store_summaries(demo_run.db) == pytest.approx(expected, abs=1e-9)

    query = f'sum by (llm_toll_project) (llm_toll_cost_USD_total{{job="{demo_run.service_name}"}})'

    def per_project() -> dict[str, float]:
        return {
            row["metric"].get("llm_toll_project", ""): float(row["value"][1])
            for row in stack.prometheus.query(query)
        }

    def matches(got: dict[str, float]) -> bool:
        return got.keys() == expected.keys() and all(
            abs(got[p] - expected[p]) <= 1e-6 for p in expected
        )

    got = eventually(per_project, matches, timeout=EXPORT_DEADLINE_S)
    assert got == pytest.approx(expected, abs=1e-6), (
        f"{query}\n{stack.logs('collector', 'prometheus')}"
    )


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the Grafana dashboard, rows included."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))  # panels inside a collapsed row
        for target in panel.get("targets", []):
            if target.get("expr"):
                queries.append((panel.get("title", "?"), target["expr"]))
    return queries


def test_every_dashboard_query_returns_data(stack: Stack, demo_run: DemoRun) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    assert "$" not in "".join(expr for _, expr in queries), "template variables are not resolved"

    def empty() -> list[tuple[str, str]]:
        return [(title, expr) for title, expr in queries if not stack.prometheus.query(expr)]

    # rate() needs two scrapes of a series: a few seconds after the first.
    left = eventually(empty, lambda found: not found, timeout=EXPORT_DEADLINE_S)
    assert left == [], f"panels without data:\n{stack.logs('collector', 'prometheus')}"


# --- 4. budget alerts ------------------------------------------------------------------

# One alert of each path: the Collector counts the budget span events (count connector),
# and a Prometheus rule watches the utilization gauge.
BUDGET_ALERTS = {"LlmTollBudgetExceeded", "LlmTollBudgetExhausted"}


def test_a_budget_crossing_alerts_by_both_paths(stack: Stack, demo_run: DemoRun) -> None:
    job = demo_run.service_name

    def research_agent(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            alert
            for alert in alerts
            if alert["labels"].get("llm_toll_project") == "research-agent"
            and alert["labels"].get("job") == job
        ]

    def at_alertmanager_done(alerts: list[dict[str, Any]]) -> bool:
        active = {a["labels"]["alertname"] for a in alerts if a["status"]["state"] == "active"}
        inhibited = {a["labels"]["alertname"] for a in alerts if a["status"]["inhibitedBy"]}
        return active >= BUDGET_ALERTS and "LlmTollBudgetHigh" in inhibited

    held = eventually(
        lambda: research_agent(stack.alertmanager.alerts()),
        at_alertmanager_done,
        timeout=EXPORT_DEADLINE_S,
    )
    states = {a["labels"]["alertname"]: a["status"]["state"] for a in held}
    logs = stack.logs("collector", "prometheus", "alertmanager")
    for name in BUDGET_ALERTS:
        assert states.get(name) == "active", f"{name} not active at Alertmanager: {states}\n{logs}"
    # The 80 % warning is inhibited while the budget is exhausted (alertmanager.yml).
    assert states.get("LlmTollBudgetHigh") == "suppressed", states
    exceeded = next(a for a in held if a["labels"]["alertname"] == "LlmTollBudgetExceeded")
    assert exceeded["labels"]["severity"] == "critical"
    assert "research-agent" in exceeded["annotations"]["summary"]

    def firing_at_webhook() -> list[dict[str, Any]]:
        return [a for a in research_agent(stack.webhook.alerts()) if a["status"] == "firing"]

    def webhook_done(alerts: list[dict[str, Any]]) -> bool:
        return {a["labels"]["alertname"] for a in alerts} >= BUDGET_ALERTS

    delivered = eventually(firing_at_webhook, webhook_done, timeout=EXPORT_DEADLINE_S)
    names = {a["labels"]["alertname"] for a in delivered}
    assert names >= BUDGET_ALERTS, f"webhook got {stack.webhook.payloads()}\n{logs}"
    # The event path carries each threshold too (50, 80 and 100 %).
    thresholds = eventually(
        lambda: {
            a["labels"].get("llm_toll_budget_threshold")
            for a in firing_at_webhook()
            if a["labels"]["alertname"] == "LlmTollBudgetThresholdCrossed"
        },
        lambda found: found >= {"0.5", "0.8", "1"},
        timeout=EXPORT_DEADLINE_S,
    )
    assert thresholds == {"0.5", "0.8", "1"}


# --- 4b. budget forecasts ------------------------------------------------------------------

FORECAST_PANEL = "Budget time remaining (forecast)"
FORECAST_WORKLOAD = """
import sys
from llm_toll import CostReporter, SQLiteStore, default_registry, set_reporter, set_store
from llm_toll import track_costs
set_store(SQLiteStore(sys.argv[1]))
set_reporter(CostReporter(enabled=False))
default_registry.register_model("forecast-model", 0.001, 0.001)

@track_costs(project="forecast-e2e", max_budget=1.0)
def ask(i):
    return {"object": "chat.completion", "model": "forecast-model", "id": f"f{i}", "choices": [],
            "usage": {"prompt_tokens": 200, "completion_tokens": 0}}

for i in range(4):
    ask(i)
"""


def test_a_budget_running_out_is_forecast_on_the_dashboard_and_alerted(
    stack: Stack, demo_run: DemoRun, tmp_path: Path
) -> None:
    """$0.80 of a $1.00 budget spent in the last hour: the gauge, the dashboard's panel and
    the store's own forecast agree on 900 s left, and LlmTollBudgetRunningOut fires; the
    demo's spent budget shows 0 and is left to LlmTollBudgetExhausted."""
    service = f"llm-toll-e2e-forecast-{time.time_ns()}"
    db = tmp_path / "forecast.db"
    done = subprocess.run(
        [sys.executable, "-c", FORECAST_WORKLOAD, str(db)],
        env=demo_env(stack.collector, service),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with SQLiteStore(db) as store:
        expected = forecast_budget(
            store, "forecast-e2e", limit_nanos=10**9, reset=None, now=datetime.now(timezone.utc)
        )
    assert (expected.spent_nanos, expected.window_spent_nanos) == (800_000_000, 800_000_000)
    assert expected.seconds_left == 900.0

    panel = [expr for title, expr in dashboard_queries() if title == FORECAST_PANEL]
    assert len(panel) == 1, dashboard_queries()

    def per_project() -> dict[str, float]:
        return {
            row["metric"].get("llm_toll_project", ""): float(row["value"][1])
            for row in stack.prometheus.query(panel[0])
        }

    shown = eventually(
        per_project,
        # The last export is the final state (one made between calls may come first).
        lambda got: got.get("forecast-e2e") == expected.seconds_left and "research-agent" in got,
        timeout=EXPORT_DEADLINE_S,
    )
    logs = stack.logs("collector", "prometheus", "alertmanager")
    assert shown.get("forecast-e2e") == expected.seconds_left, f"{shown}\n{logs}"
    assert shown.get("research-agent") == 0.0, shown  # the demo's $0.10, spent

    def running_out(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a for a in alerts if a["labels"]["alertname"] == "LlmTollBudgetRunningOut"]

    held = eventually(
        lambda: running_out(stack.alertmanager.alerts()),
        lambda found: any(a["labels"].get("job") == service for a in found),
        timeout=EXPORT_DEADLINE_S,
    )
    ours = [a for a in held if a["labels"].get("job") == service]
    assert len(ours) == 1, f"{held}\n{logs}"
    alert = ours[0]
    assert alert["status"]["state"] == "active"
    assert alert["labels"]["llm_toll_project"] == "forecast-e2e"
    assert alert["labels"]["llm_toll_budget_period"] == "lifetime"
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"].endswith("runs out in 15m 0s"), alert
    # A spent budget is not "running out": LlmTollBudgetExhausted fires for it instead.
    assert not [a for a in held if a["labels"].get("job") == demo_run.service_name], held


# --- 5. a Collector that dies ----------------------------------------------------------


def test_killing_the_collector_neither_fails_nor_stalls_the_app(
    lone_collector: Collector, tmp_path: Path
) -> None:
    """SIGKILL the Collector half-way through a workload: no call exports (waits for the
    Collector) itself, the exit says in one line what was not delivered, and the store
    holds every call, to the nano-dollar. How long calls and exit take is `make bench`'s."""
    calls = 200
    db, out, log = tmp_path / "kill.db", tmp_path / "durations.json", tmp_path / "workload.log"
    halfway, resume = tmp_path / "halfway", tmp_path / "resume"
    env = demo_env(lone_collector, "llm-toll-e2e-collector-kill")
    del env["OTEL_EXPORTER_OTLP_ENDPOINT"]  # the script calls setup_telemetry(endpoint=...)
    argv = [sys.executable, workload.__file__, "--db", str(db)]
    argv += ["--endpoint", lone_collector.otlp_http_url, "--service-name", env["OTEL_SERVICE_NAME"]]
    argv += ["--calls", str(calls), "--halfway", str(halfway), "--resume", str(resume)]
    argv += ["--out", str(out)]

    with log.open("wb") as output:
        app = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        reached = eventually(
            lambda: halfway.exists() or app.poll() is not None, timeout=EXPORT_DEADLINE_S
        )
        assert reached and halfway.exists(), f"the workload did not get half-way:\n{tail(log)}"
        # Some data went through before the kill (the first half is exported as it runs).
        accepted = eventually(
            lambda: lone_collector.self_metric("otelcol_receiver_accepted_spans"),
            lambda n: n > 0,
            timeout=EXPORT_DEADLINE_S,
        )
        assert accepted > 0, lone_collector.log_tail()
        lone_collector.kill()
        assert lone_collector.process is not None
        assert lone_collector.process.returncode == -signal.SIGKILL
        resume.touch()  # the second half runs against a dead Collector
        resumed = time.monotonic()
        try:
            code = app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the workload stalled after the Collector died:\n{tail(log)}")
        after_resume = time.monotonic() - resumed
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()

    assert code == 0, f"the workload failed (exit {code}):\n{tail(log)}"
    result = json.loads(out.read_text())
    durations: list[float] = result["durations"]
    assert len(durations) == calls
    half = result["half"]
    # Only the first half could have reached the Collector: two spans a call (its run's and
    # its request's).
    assert accepted <= 2 * half
    # The first call also sets up the exporters, the store and the prices.
    first, before, after = durations[0], durations[1:half], durations[half:]
    print(
        f"\ncall durations: first {first * 1e3:.1f} ms; slowest before the kill "
        f"{max(before) * 1e3:.1f} ms, after {max(after) * 1e3:.1f} ms; resume to exit "
        f"{after_resume:.1f} s (exporter timeout {workload.EXPORT_TIMEOUT_S} s)"
    )
    # Spans were exported, and never by a call: no call waits for the Collector.
    assert result["exported"] and not result["exported_by_caller"]
    # The exit said what the dead Collector did not get: at least the second half's spans
    # (two a call), and no OpenTelemetry traceback.
    printed = log.read_text()
    assert "Traceback" not in printed, printed
    dropped = [line for line in printed.splitlines() if line.startswith("llm_toll: ")]
    assert len(dropped) == 1, printed
    spans = re.fullmatch(
        r"llm_toll: (\d+) spans(?: and \d+ metric exports?)? not delivered to "
        + re.escape(lone_collector.otlp_http_url)
        + r" \(connection refused\)",
        dropped[0],
    )
    assert spans is not None, dropped[0]
    assert 2 * (calls - half) <= int(spans[1]) <= 2 * calls

    # Nothing lost: every call recorded once, the running total exact.
    expected = workload.expected_nanos(calls)
    recorded = ledger(db)
    assert recorded == {
        workload.PROJECT: Ledger(
            calls,
            sum(workload.tokens(i)[0] for i in range(calls)),
            sum(workload.tokens(i)[1] for i in range(calls)),
            expected,
        )
    }
    assert spent_nanos(db) == {workload.PROJECT: expected}
    assert store_summaries(db) == pytest.approx({workload.PROJECT: expected / 1e9}, abs=1e-9)


# --- 6. OTLP over gRPC -------------------------------------------------------------------

GRPC_WORKLOAD = """
import sys
from llm_toll import CostReporter, SQLiteStore, set_reporter, set_store, track_costs
set_store(SQLiteStore(sys.argv[1]))
set_reporter(CostReporter(enabled=False))

@track_costs(project="grpc-export")
def ask(i):
    return {"object": "chat.completion", "model": "gpt-4o", "id": f"g{i}", "choices": [],
            "usage": {"prompt_tokens": 10 + i, "completion_tokens": 2}}

for i in range(5):
    ask(i)
"""


def test_spans_reach_jaeger_over_otlp_grpc(stack: Stack, tmp_path: Path) -> None:
    service = f"llm-toll-e2e-grpc-{time.time_ns()}"
    started = datetime.now(timezone.utc)
    done = subprocess.run(
        [sys.executable, "-c", GRPC_WORKLOAD, str(tmp_path / "grpc.db")],
        env=child_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{stack.collector.env_vars['OTLP_GRPC_ENDPOINT']}",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_SERVICE_NAME=service,
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    _, found = eventually(
        lambda: stack.jaeger.spans(
            service, started - timedelta(minutes=1), datetime.now(timezone.utc)
        ),
        lambda found: sum(span.kind == "client" for span in found[1]) >= 5,
        timeout=EXPORT_DEADLINE_S,
    )
    spans = [span for span in found if span.kind == "client"]
    assert sorted(span.attributes["gen_ai.usage.input_tokens"] for span in spans) == [
        10, 11, 12, 13, 14
    ]  # fmt: skip
