"""One process of a fleet crossing a budget together, for the alert tests.

Takes its store from ``LLM_TOLL_STORE_URL``; prices the model ``alert-fleet-model`` so a
call costs 0.002 USD; prints ``ready``, waits for a line on stdin (so that every process
starts its calls at once), makes ``calls`` calls under ``max_budget`` with ``on_threshold``,
``on_exceeded`` and ``alert_webhook`` set, and exits. Each alert its callbacks receive is
printed as one JSON line, from the alert thread; the exit delivers the alerts still queued.

    python alert_worker.py PROJECT CALLS MAX_BUDGET WEBHOOK_URL
"""

from __future__ import annotations

import contextlib
import json
import sys

from llm_toll import BudgetExceededError, default_registry, track_costs
from llm_toll.alerts import Alert

MODEL = "alert-fleet-model"
INPUT_TOKENS, OUTPUT_TOKENS = 1000, 500
INPUT_USD, OUTPUT_USD = 1e-6, 2e-6  # per token: a call costs 0.002 USD


def show(alert: Alert) -> None:
    line = {"kind": alert.kind, "threshold": alert.threshold, "refused": alert.refused,
            "spent": str(alert.spent), "period": alert.period}  # fmt: skip
    print(json.dumps(line), flush=True)


def main() -> None:
    project, calls, max_budget, webhook = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    default_registry.register_model(MODEL, INPUT_USD, OUTPUT_USD)

    @track_costs(
        project=project,
        model=MODEL,
        max_budget=float(max_budget),
        reset="daily",
        extract_usage=lambda _: (MODEL, INPUT_TOKENS, OUTPUT_TOKENS),
        on_threshold=show,
        on_exceeded=show,
        alert_webhook=webhook,
    )
    def call() -> str:
        return "answer"

    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(calls):
        with contextlib.suppress(BudgetExceededError):
            call()


if __name__ == "__main__":
    main()
