"""The end-to-end harness: the real observability stack, started once per session.

``binaries`` builds (first time, minutes) or finds (cached, milliseconds) the Collector,
Jaeger, Prometheus and Alertmanager with the repository's own scripts. ``stack`` starts
Jaeger, the Collector, Prometheus, Alertmanager and a webhook receiver on free 127.0.0.1
ports, each from a run directory of rendered configuration with its log, and stops them
all at the end of the session, whatever happened. ``demo_run`` runs ``python -m
llm_toll.demo`` once, exporting to that Collector. Nothing is ever skipped: a binary that
cannot be built or a service that does not start fails the tests that need it, with the
reason and the tail of the log concerned.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.e2e.binaries import Binaries, build_binaries
from tests.e2e.harness import Service, StackError, start_all, stop_all, tail
from tests.e2e.services import Alertmanager, Collector, Jaeger, Prometheus
from tests.e2e.stack import DemoRun, Stack, demo_env
from tests.e2e.webhook import WebhookReceiver

DEMO_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    try:
        return build_binaries(tmp_path_factory.mktemp("build"))
    except StackError as error:
        reason = str(error)
    pytest.fail(f"could not build or install the stack's binaries: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def stack(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("stack")
    with WebhookReceiver() as webhook:
        stacks: list[Stack] = []

        def make() -> list[Service]:
            jaeger = Jaeger(binaries.jaeger, run_dir / "jaeger")
            alertmanager = Alertmanager(
                binaries.alertmanager, run_dir / "alertmanager", webhook.url
            )
            collector = Collector(binaries.collector, run_dir / "collector", jaeger.otlp_grpc)
            prometheus = Prometheus(
                binaries.prometheus,
                run_dir / "prometheus",
                scrape=collector.prometheus_exporter,
                alertmanager=alertmanager.address,
            )
            services: list[Service] = [jaeger, alertmanager, collector, prometheus]
            stacks[:] = [Stack(jaeger, collector, prometheus, alertmanager, webhook, services)]
            return services

        try:
            start_all(make)
        except StackError as error:
            reason = str(error)
        else:
            reason = ""
        if reason:
            pytest.fail(f"could not start the stack: {reason}", pytrace=False)
        try:
            yield stacks[0]
        finally:
            stop_all(stacks[0].services)


@pytest.fixture
def lone_collector(binaries: Binaries, stack: Stack, tmp_path: Path) -> Iterator[Collector]:
    """A Collector of its own (sending to the session's Jaeger), for a test that kills it."""
    holder: list[Collector] = []

    def make() -> list[Service]:
        holder[:] = [
            Collector(binaries.collector, tmp_path / "collector", stack.jaeger.otlp_grpc, "lone")
        ]
        return list(holder)

    try:
        start_all(make)
    except StackError as error:
        reason = str(error)
    else:
        reason = ""
    if reason:
        pytest.fail(f"could not start a Collector: {reason}", pytrace=False)
    try:
        yield holder[0]
    finally:
        holder[0].stop()


@pytest.fixture(scope="session")
def demo_run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``python -m llm_toll.demo`` once, exporting to the stack's Collector."""
    run_dir = tmp_path_factory.mktemp("demo")
    db = run_dir / "demo.db"
    service_name = f"llm-toll-e2e-demo-{uuid.uuid4().hex[:8]}"
    log = run_dir / "demo.log"
    started, clock = datetime.now(timezone.utc), time.monotonic()
    with log.open("wb") as out:
        try:
            code = subprocess.run(
                [sys.executable, "-m", "llm_toll.demo", "--db", str(db)],
                env=demo_env(stack.collector, service_name),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=DEMO_TIMEOUT_S,
            ).returncode
            failure = "" if code == 0 else f"the demo failed (exit {code})"
        except subprocess.TimeoutExpired:
            failure = f"the demo did not finish within {DEMO_TIMEOUT_S} s"
    if failure:
        pytest.fail(f"{failure}:\n{tail(log)}\n{stack.logs('collector')}", pytrace=False)
    return DemoRun(
        db=db,
        service_name=service_name,
        started=started,
        finished=datetime.now(timezone.utc),
        seconds=time.monotonic() - clock,
        stdout=log.read_text(),
    )
