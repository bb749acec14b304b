"""The real llm-toll 0.13.0, installed once per machine into a virtualenv of its own.

It shares the import name ``llm_toll`` with this project, so it cannot live in this
project's venv: it goes to ``${LLM_TOLL_CACHE:-~/.cache/llm-toll}/llm-toll-0.13.0-venv``,
created on first use (``make bench`` and the mixed-fleet tests use it). Run its Python
with a working directory outside this checkout and without ``PYTHONPATH``
(:func:`clean_env`), so that it imports 0.13, not this project's ``src``.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import venv
from pathlib import Path

from tests.compat.sdist import cache_root

OLD_VERSION = "0.13.0"
OLD_VENV = cache_root() / f"llm-toll-{OLD_VERSION}-venv"


def old_python() -> Path:
    """The Python of the 0.13.0 venv, which is created (once, under a lock) if missing."""
    python = OLD_VENV / "bin" / "python"
    marker = OLD_VENV / ".ready"
    if not marker.exists():
        OLD_VENV.parent.mkdir(parents=True, exist_ok=True)
        with (OLD_VENV.parent / f".{OLD_VENV.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent runs wait for the first one
            if not marker.exists():
                _create(python)
                marker.touch()
    try_psycopg2(python)
    return python


def _create(python: Path) -> None:
    print(f"installing llm-toll=={OLD_VERSION} into {OLD_VENV} (once)", file=sys.stderr)
    venv.create(OLD_VENV, with_pip=True, clear=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", f"llm-toll=={OLD_VERSION}", "openai"],
        check=True,
    )


def try_psycopg2(python: Path) -> bool:
    """0.13's optional PostgreSQL store needs psycopg2; install it once if it can be."""
    marker = OLD_VENV / ".psycopg2-tried"
    if not marker.exists():
        marker.touch()
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "psycopg2-binary"],
            check=False,
            capture_output=True,
        )
    return subprocess.run([python, "-c", "import psycopg2"], capture_output=True).returncode == 0


def clean_env() -> dict[str, str]:
    """This environment without llm_toll's, OpenTelemetry's or Python's path settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))}
    env.pop("PYTHONPATH", None)
    return env
