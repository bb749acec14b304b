"""The servers of the stack, each on free 127.0.0.1 ports with its configuration rendered
into its run directory: Jaeger (in-memory, and the spans of a service from its query
APIs), llm_toll's Collector, Prometheus and Alertmanager."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.e2e.harness import (
    REPO,
    Service,
    StackError,
    child_env,
    free_ports,
    get_json,
    http_get,
    http_status,
    port_open,
)
from tests.e2e.jaeger_api import SpanView, spans_from_api_v1, spans_from_api_v3

COLLECTOR_CONFIG = REPO / "collector-config.yaml"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Jaeger(Service):
    """Jaeger v2 with in-memory storage (``deploy/jaeger/config.yaml``)."""

    def __init__(self, binary: Path, run_dir: Path) -> None:
        super().__init__("jaeger", run_dir)
        self.binary = binary
        ports = free_ports(4)
        self.otlp_grpc, self.otlp_http, self.query_http, self.query_grpc = (
            f"127.0.0.1:{port}" for port in ports
        )

    @property
    def query_url(self) -> str:
        return f"http://{self.query_http}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = child_env(
            JAEGER_OTLP_GRPC_ENDPOINT=self.otlp_grpc,
            JAEGER_OTLP_HTTP_ENDPOINT=self.otlp_http,
            JAEGER_QUERY_HTTP_ENDPOINT=self.query_http,
            JAEGER_QUERY_GRPC_ENDPOINT=self.query_grpc,
        )
        return [str(self.binary), "--config", str(REPO / "deploy/jaeger/config.yaml")], env

    def ready(self) -> bool:
        # The OTLP receivers start last (see the config's header).
        return http_status(f"{self.query_url}/api/services") == 200 and port_open(self.otlp_grpc)

    def spans(self, service: str, since: datetime, until: datetime) -> tuple[str, list[SpanView]]:
        """(API used, spans) of ``service`` between two moments.

        The v3 API (``/api/v3/traces``, OTLP JSON) first; Jaeger's older ``/api/traces``
        when there is no v3 API (a server without it answers with its UI page).
        """
        status, body = http_get(
            f"{self.query_url}/api/v3/traces?"
            + urllib.parse.urlencode(
                {
                    "query.service_name": service,
                    "query.start_time_min": _rfc3339(since),
                    "query.start_time_max": _rfc3339(until),
                    "query.num_traces": "1000",
                }
            )
        )
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if status == 200 and isinstance(answer, dict) and "result" in answer:
            return "/api/v3/traces", spans_from_api_v3(answer["result"])
        if status == 404 and isinstance(answer, dict) and "error" in answer:
            return "/api/v3/traces", []  # {"error": {"message": "No traces found"}}
        v1 = get_json(
            f"{self.query_url}/api/traces",
            {
                "service": service,
                "start": str(int(since.timestamp() * 1e6)),
                "end": str(int(until.timestamp() * 1e6)),
                "limit": "1000",
            },
        )
        return "/api/traces", spans_from_api_v1(v1.get("data") or [])


class Collector(Service):
    """llm_toll's Collector on ``collector-config.yaml``, every address from its variables."""

    def __init__(self, binary: Path, run_dir: Path, jaeger_otlp: str, name: str = "collector"):
        super().__init__(name, run_dir)
        self.binary = binary
        grpc, http, exporter, metrics = free_ports(4)
        self.env_vars = {
            "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc}",
            "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http}",
            "JAEGER_OTLP_ENDPOINT": jaeger_otlp,
            "PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{exporter}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(metrics),
            "OTELCOL_MEMORY_LIMIT_MIB": "256",
        }

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self.env_vars['OTLP_HTTP_ENDPOINT']}"

    @property
    def prometheus_exporter(self) -> str:
        """host:port of the prometheus exporter (what Prometheus scrapes)."""
        return self.env_vars["PROMETHEUS_EXPORTER_ENDPOINT"]

    @property
    def self_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env_vars['OTELCOL_METRICS_PORT']}/metrics"

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [str(self.binary), "--config", str(COLLECTOR_CONFIG)], child_env(**self.env_vars)

    def validate(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), "validate", "--config", str(COLLECTOR_CONFIG)],
            env=child_env(**self.env_vars),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ready(self) -> bool:
        # Receivers start after the pipelines behind them: an answer on OTLP/HTTP (405 to a
        # GET) means that data sent now goes all the way through.
        return (
            http_status(self.self_metrics_url) == 200
            and http_status(f"http://{self.prometheus_exporter}/metrics") == 200
            and http_status(f"{self.otlp_http_url}/v1/traces") is not None
        )

    def self_metric(self, name: str) -> float:
        """The sum over all series of one of the Collector's own metrics (0 when absent)."""
        status, body = http_get(self.self_metrics_url)
        if status != 200:
            raise StackError(f"{self.self_metrics_url} answered {status}")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric = series.split("{", 1)[0]
            if metric in (name, name + "_total"):
                total += float(value)
        return total


def _render(template: Path, target: Path, replacements: Mapping[str, str]) -> None:
    """Copies ``template`` with each key replaced (comments too).

    Each key must occur exactly once outside comments, where the file says it is written.
    """
    text = template.read_text()
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for old, new in replacements.items():
        if sum(line.count(old) for line in settings) != 1:
            raise StackError(
                f"{template.relative_to(REPO)}: expected {old!r} once outside comments"
            )
        text = text.replace(old, new)
    target.write_text(text)


class Prometheus(Service):
    """Prometheus on ``deploy/prometheus/`` with the Collector's and Alertmanager's addresses."""

    def __init__(self, binary: Path, run_dir: Path, scrape: str, alertmanager: str) -> None:
        super().__init__("prometheus", run_dir)
        self.binary = binary
        self.address = f"127.0.0.1:{free_ports(1)[0]}"
        self.config = run_dir / "prometheus.yml"
        _render(
            REPO / "deploy/prometheus/prometheus.yml",
            self.config,
            {"otel-collector:8889": scrape, "alertmanager:9093": alertmanager},
        )
        shutil.copy(REPO / "deploy/prometheus/alerts.yaml", run_dir / "alerts.yaml")

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [
            str(self.binary),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.run_dir / 'data'}",
            f"--web.listen-address={self.address}",
        ], child_env()

    def ready(self) -> bool:
        return http_status(f"{self.url}/-/ready") == 200

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (``[{"metric": {...}, "value": [t, "v"]}]``)."""
        answer = get_json(f"{self.url}/api/v1/query", {"query": expr})
        if answer.get("status") != "success":
            raise StackError(f"query {expr!r} failed: {answer}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


class Alertmanager(Service):
    """Alertmanager on ``deploy/alertmanager/alertmanager.yml``, notifying ``webhook_url``."""

    def __init__(self, binary: Path, run_dir: Path, webhook_url: str) -> None:
        super().__init__("alertmanager", run_dir)
        self.binary = binary
        self.address = f"127.0.0.1:{free_ports(1)[0]}"
        self.config = run_dir / "alertmanager.yml"
        _render(
            REPO / "deploy/alertmanager/alertmanager.yml",
            self.config,
            {"http://127.0.0.1:5001/hook": webhook_url},
        )

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [
            str(self.binary),
            f"--config.file={self.config}",
            f"--storage.path={self.run_dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ], child_env()

    def ready(self) -> bool:
        return http_status(f"{self.url}/-/ready") == 200

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts it holds, active, inhibited or silenced."""
        alerts: list[dict[str, Any]] = get_json(f"{self.url}/api/v2/alerts")
        return alerts
