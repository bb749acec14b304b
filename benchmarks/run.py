"""`make bench`: llm_toll against llm-toll 0.13.0, measured in the same run on this machine.

llm-toll 0.13.0 is installed once into its own virtualenv under ~/.cache/llm-toll/ (it
shares the import name ``llm_toll``, so it cannot live in this project's venv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
OLD_VERSION = "0.13.0"
CACHE = Path(os.environ.get("LLM_TOLL_CACHE", Path.home() / ".cache" / "llm-toll"))
OLD_VENV = CACHE / f"llm-toll-{OLD_VERSION}-venv"

ROWS = [
    ("sync_us", "sync call overhead, budget checked (µs)"),
    ("async_seq_us", "sequential async call (µs)"),
    ("async_gather_1000_us", "asyncio.gather of 1,000 calls, per call (µs)"),
    ("check_10_rows_us", "budget check, 10 rows of history (µs)"),
    ("check_1m_rows_us", "budget check, 1,000,000 rows of history (µs)"),
    ("sync_10_rows_us", "sync call overhead, 10 rows of history (µs)"),
    ("sync_1m_rows_us", "sync call overhead, 1,000,000 rows of history (µs)"),
    ("sync_otel_us", "sync call overhead, with OTel SDK span + metrics (µs)"),
]


def old_python() -> Path:
    python = OLD_VENV / "bin" / "python"
    marker = OLD_VENV / ".ready"
    if not marker.exists():
        print(f"installing llm-toll=={OLD_VERSION} into {OLD_VENV} (once)", file=sys.stderr)
        venv.create(OLD_VENV, with_pip=True, clear=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", f"llm-toll=={OLD_VERSION}", "openai"],
            check=True,
        )
        marker.touch()
    return python


def measure(python: Path | str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_TOLL_"))}
    env.pop("PYTHONPATH", None)
    output = subprocess.run(
        [str(python), str(HERE / "workload.py")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE,  # not the project root, so the old venv cannot import this project's src
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def main() -> None:
    old = measure(old_python())
    new = measure(sys.executable)
    print(f"llm_toll {new['version']} vs llm-toll {old['version']}, same machine, same run")
    print(f"{'':52} {'llm_toll':>10} {'0.13.0':>10} {'ratio':>7}")
    for key, label in ROWS:
        if key not in old:  # llm-toll 0.13 has no telemetry to compare with
            print(f"{label:52} {new[key]:10.1f} {'—':>10} {'':>7}")
            continue
        ratio = new[key] / old[key] if old[key] else float("nan")
        print(f"{label:52} {new[key]:10.1f} {old[key]:10.1f} {ratio:7.2f}")
    growth_new = new["check_1m_rows_us"] / new["check_10_rows_us"]
    growth_old = old["check_1m_rows_us"] / old["check_10_rows_us"]
    print(f"budget check 1M rows / 10 rows: llm_toll {growth_new:.2f}, 0.13.0 {growth_old:.2f}")


if __name__ == "__main__":
    main()
