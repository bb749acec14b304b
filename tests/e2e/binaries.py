"""The stack's binaries: llm_toll's Collector (``collector/build.sh``), Jaeger,
Prometheus, promtool, Alertmanager and amtool (``scripts/install-services.sh``), built
or installed the first time and found in their caches after."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import REPO, StackError, tail

# A cold build of the Collector and Jaeger takes minutes; a cached one, milliseconds.
BUILD_TIMEOUT_S = 30 * 60


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
