"""What the end-to-end tests share: the running ``Stack`` (its servers and the webhook
receiver), a ``DemoRun`` of ``python -m llm_toll.demo``, and the environment that
points the demo at the stack's Collector."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.e2e.harness import Service
from tests.e2e.services import Alertmanager, Collector, Jaeger, Prometheus
from tests.e2e.webhook import WebhookReceiver


@dataclass
class Stack:
    jaeger: Jaeger
    collector: Collector
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: WebhookReceiver
    services: list[Service]

    def logs(self, *names: str) -> str:
        """The tails of the named services' logs (all when none is named), for messages."""
        chosen = [s for s in self.services if not names or s.name in names]
        return "\n".join(service.log_tail(25) for service in chosen)


@dataclass(frozen=True)
class DemoRun:
    db: Path
    service_name: str
    started: datetime
    finished: datetime
    seconds: float
    stdout: str


def demo_env(collector: Collector, service_name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.otlp_http_url,
        OTEL_SERVICE_NAME=service_name,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    return env
