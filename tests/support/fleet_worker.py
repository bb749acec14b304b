"""One process of a mixed fleet: decorated calls under whichever ``llm_toll`` it imports.

Run by this project's Python (llm_toll) or by the llm-toll 0.13.0 venv's (see
``v013_venv.py``): both libraries take the same decorator, registry and store URL
(``LLM_TOLL_STORE_URL``). The worker prices the model ``fleet-model`` the same way in
both, opens the store, prints ``ready``, waits for a line on stdin (so that every worker of
a test starts its calls at once), makes ``calls`` calls under ``max_budget``, and prints
one JSON line: how many calls returned, how many were refused, and every warning given
(a write that failed is a warning in both libraries).

    python fleet_worker.py PROJECT CALLS MAX_BUDGET
"""

from __future__ import annotations

import json
import sys
import warnings

from llm_toll import BudgetExceededError, default_registry, track_costs

MODEL = "fleet-model"
INPUT_TOKENS, OUTPUT_TOKENS = 1000, 500
INPUT_USD, OUTPUT_USD = 1e-6, 2e-6  # per token: a call costs 0.002 USD in both libraries
CALL_NANOS = 2_000_000


def main() -> None:
    project, calls, max_budget = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    default_registry.register_model(MODEL, INPUT_USD, OUTPUT_USD)

    @track_costs(
        project=project,
        model=MODEL,
        max_budget=max_budget,
        extract_usage=lambda _: (MODEL, INPUT_TOKENS, OUTPUT_TOKENS),
    )
    def call() -> str:
        return "answer"

    returned = refused = 0
    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(calls):
            try:
                call()
            except BudgetExceededError:
                refused += 1
            else:
                returned += 1
    report = {"returned": returned, "refused": refused, "warnings": [str(w.message) for w in given]}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
