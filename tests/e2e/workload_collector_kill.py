"""The workload of the Collector-kill test, run as a script in a process of its own.

It exports over OTLP/HTTP to a Collector with ``setup_telemetry`` and makes ``--calls``
decorated calls (plain-dict OpenAI chat responses, so no network besides the export). At
half-way it creates ``--halfway`` and waits for ``--resume`` to appear: meanwhile the test
kills the Collector. Then it makes the other half, against a dead Collector, and writes
each call's duration, and whether the span exporter ever ran in the calling thread, to
``--out`` (JSON) before exiting normally (the bounded exit flush included, whose line on
stderr says what was not delivered).

The token counts of call ``i`` and the price of ``MODEL`` are given here, so that the test
knows to the nano-USD what the store must hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from llm_toll import SQLiteStore, default_registry, set_store, setup_telemetry, track_costs

PROJECT = "e2e-collector-kill"
MODEL = "e2e-kill-test-model"
INPUT_NANOS_PER_TOKEN = 1_000  # USD 1e-06
OUTPUT_NANOS_PER_TOKEN = 2_000  # USD 2e-06
EXPORT_TIMEOUT_S = 2.0
PACE_S = 0.01  # between calls: a workload spread over time, not one burst
RESUME_TIMEOUT_S = 60.0


def tokens(i: int) -> tuple[int, int]:
    """(input, output) tokens of call ``i``."""
    return 100 + i, 20 + i % 7


def expected_nanos(calls: int) -> int:
    return sum(
        inp * INPUT_NANOS_PER_TOKEN + out * OUTPUT_NANOS_PER_TOKEN
        for inp, out in map(tokens, range(calls))
    )


def record_exporting_threads() -> set[int]:
    """The idents of the threads the OTLP span exporter runs in, from now on."""
    threads: set[int] = set()
    export = OTLPSpanExporter.export

    def recorded(self: OTLPSpanExporter, *args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return export(self, *args, **kwargs)

    OTLPSpanExporter.export = recorded  # type: ignore[method-assign]
    return threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--endpoint", required=True, help="the Collector's OTLP/HTTP URL")
    parser.add_argument("--service-name", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--halfway", required=True, type=Path)
    parser.add_argument("--resume", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    exporting_threads = record_exporting_threads()
    setup_telemetry(
        endpoint=args.endpoint,
        service_name=args.service_name,
        timeout_s=EXPORT_TIMEOUT_S,
        metric_export_interval_ms=500,
    )
    default_registry.register_model(
        MODEL, INPUT_NANOS_PER_TOKEN / 1e9, OUTPUT_NANOS_PER_TOKEN / 1e9
    )
    set_store(SQLiteStore(args.db))

    @track_costs(project=PROJECT, max_budget=1_000.0)
    def chat(i: int) -> dict[str, Any]:
        inp, out = tokens(i)
        return {
            "id": f"chatcmpl-e2e-{i}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"answer {i}"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out},
        }

    durations: list[float] = []
    half = args.calls // 2
    for i in range(args.calls):
        if i == half:
            args.halfway.touch()
            deadline = time.monotonic() + RESUME_TIMEOUT_S
            while not args.resume.exists():
                if time.monotonic() > deadline:
                    print(f"{args.resume} did not appear", file=sys.stderr)
                    return 3
                time.sleep(0.05)
        started = time.perf_counter()
        response = chat(i)
        durations.append(time.perf_counter() - started)
        if response["id"] != f"chatcmpl-e2e-{i}":
            print(f"call {i} returned {response!r}", file=sys.stderr)
            return 4
        time.sleep(PACE_S)

    result = {
        "durations": durations,
        "half": half,
        "exported": bool(exporting_threads),
        "exported_by_caller": threading.get_ident() in exporting_threads,
    }
    args.out.write_text(json.dumps(result))
    return 0  # the exit flush (to a dead Collector) happens after this


if __name__ == "__main__":
    sys.exit(main())
