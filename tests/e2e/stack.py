"""The observability stack of the end-to-end tests: binaries, services and HTTP polling.

Every server runs on 127.0.0.1 on free ports, from a run directory of its own (rendered
configuration, data, ``<name>.log`` with its stdout and stderr). Nothing here sleeps for a
fixed time: readiness and results are polled against deadlines, and a failure message
carries the tail of the log of the service concerned.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from tests.e2e.webhook import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_CONFIG = REPO / "collector-config.yaml"

# A cold build of the Collector and Jaeger takes minutes; a cached one, milliseconds.
BUILD_TIMEOUT_S = 30 * 60
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
START_ATTEMPTS = 3  # free ports are picked, then bound by the server: another may win

T = TypeVar("T")


class StackError(Exception):
    """A binary could not be built, or a service started or reached; the message says why."""


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours without OTEL_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env


# --- binaries -------------------------------------------------------------------------


@dataclass(frozen=True)
class Binaries:
    collector: Path
    jaeger: Path
    prometheus: Path
    promtool: Path
    alertmanager: Path
    amtool: Path
    seconds: float  # how long building (or finding) them took


def build_binaries(log_dir: Path) -> Binaries:
    """Builds or finds every binary: ``collector/build.sh`` and ``scripts/install-services.sh``.

    Both scripts run at once (each caches its results and returns at once when cached).
    """
    started = time.monotonic()
    log_dir.mkdir(parents=True, exist_ok=True)
    scripts = {"collector": "collector/build.sh", "services": "scripts/install-services.sh"}
    running: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    try:
        for name, script in scripts.items():
            out, err = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
            with out.open("wb") as stdout, err.open("wb") as stderr:
                process = subprocess.Popen(
                    ["bash", str(REPO / script)],
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                )
            running[name] = (process, out, err)
        deadline = started + BUILD_TIMEOUT_S
        for name, (process, _, err) in running.items():
            try:
                code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                limit = f"{BUILD_TIMEOUT_S} s"
                raise StackError(
                    f"`bash {scripts[name]}` did not finish within {limit}:\n{tail(err)}"
                ) from None
            if code != 0:
                raise StackError(f"`bash {scripts[name]}` failed (exit {code}):\n{tail(err)}")
    finally:
        for process, _, _ in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    collector_lines = running["collector"][1].read_text().split()
    if not collector_lines:
        raise StackError("`bash collector/build.sh` printed no binary path")
    paths = {"COLLECTOR": collector_lines[-1]}
    for line in running["services"][1].read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            paths[name.strip()] = value.strip()
    wanted = ["COLLECTOR", "JAEGER", "PROMETHEUS", "PROMTOOL", "ALERTMANAGER", "AMTOOL"]
    for name in wanted:
        path = paths.get(name, "")
        if not path or not os.access(path, os.X_OK):
            raise StackError(f"no executable {name} from the build scripts (got {path!r})")
    return Binaries(
        collector=Path(paths["COLLECTOR"]),
        jaeger=Path(paths["JAEGER"]),
        prometheus=Path(paths["PROMETHEUS"]),
        promtool=Path(paths["PROMTOOL"]),
        alertmanager=Path(paths["ALERTMANAGER"]),
        amtool=Path(paths["AMTOOL"]),
        seconds=time.monotonic() - started,
    )


# --- HTTP -----------------------------------------------------------------------------


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of a GET; an HTTP error status is returned, a connection error raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        return http_get(url, timeout)[0]
    except OSError:
        return None


def get_json(url: str, params: Mapping[str, str] | None = None, timeout: float = 10.0) -> Any:
    if params:
        url += "?" + urllib.parse.urlencode(params)
    status, body = http_get(url, timeout)
    if status != 200:
        raise StackError(f"GET {url} answered {status}: {body[:500]!r}")
    return json.loads(body)


def port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (all held at once, so that they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def eventually(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    timeout: float,
    interval: float = 0.25,
) -> T:
    """Calls ``probe`` until ``done(result)`` or the deadline, and returns the last result.

    The caller asserts on what is returned, so that a timeout fails with the last values
    seen. Connection errors are retried; if the probe never answered, the last one is raised.
    """
    deadline = time.monotonic() + timeout
    result: T
    answered = False
    last_error: OSError | None = None
    while True:
        try:
            result = probe()
            answered = True
            if done(result):
                return result
        except OSError as error:  # a service not answering (yet)
            last_error = error
        if time.monotonic() >= deadline:
            if answered:
                return result
            raise StackError(f"no answer within {timeout} s: {last_error}")
        time.sleep(interval)


# --- services -------------------------------------------------------------------------

_live: set[Service] = set()
SETPRIV = shutil.which("setpriv")  # util-linux, for --pdeathsig


@atexit.register
def _kill_leftovers() -> None:
    """A last resort, should the interpreter exit without the fixtures' teardown."""
    for service in list(_live):
        service.kill()


class Service:
    """One server process, its stdout and stderr going to ``<run_dir>/<name>.log``."""

    def __init__(self, name: str, run_dir: Path) -> None:
        self.name = name
        self.run_dir = run_dir
        self.log_path = run_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        run_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        argv, env = self.command()
        if SETPRIV:  # the kernel kills the server should this process die without teardown
            argv = [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                argv,
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _live.add(self)

    def log_tail(self, lines: int = 40) -> str:
        return f"--- last lines of {self.log_path} ---\n{tail(self.log_path, lines)}"

    def wait_ready(self, deadline: float) -> None:
        """Polls ``ready()`` until it holds; fails at once if the process exits."""
        started = time.monotonic()
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise StackError(
                    f"{self.name} exited (code {code}) before ready\n{self.log_tail()}"
                )
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{self.name} not ready after {time.monotonic() - started:.0f} s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        _live.discard(self)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_GRACE_S)
        self.kill()


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


def start_all(make: Callable[[], Iterable[Service]]) -> list[Service]:
    """Starts the services ``make()`` builds and waits until each is ready.

    Ports are picked free but bound later by the servers; if another process took one in
    between, everything is started again on new ports (up to START_ATTEMPTS times).
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        services = list(make())
        try:
            for service in services:
                service.start()
            deadline = time.monotonic() + READY_TIMEOUT_S
            for service in services:
                service.wait_ready(deadline)
            return services
        except BaseException as error:  # not one left running, whatever went wrong
            stop_all(services)
            retry = isinstance(error, StackError) and "address already in use" in str(error)
            if not retry or attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def stop_all(services: Iterable[Service]) -> None:
    for service in reversed(list(services)):
        service.stop()


# --- Jaeger's query APIs --------------------------------------------------------------

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


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


# --- what the tests share ---------------------------------------------------------------


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
