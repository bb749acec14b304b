"""A running process under budgets kept in the store: decorated calls of the real openai
client to the loopback replay server, one per line read from stdin.

    python budget_worker.py BASE_URL PROJECT MAX_BUDGET

The store is ``LLM_TOLL_STORE_URL``; stored limits are read again every
``LLM_TOLL_BUDGET_REFRESH_S`` seconds. Prints ``ready``, then for each line ``call`` one
JSON line: ``{"ok": true}``, or ``{"ok": false, "max_budget": ...}`` for a refusal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import openai

import llm_toll
from llm_toll import BudgetExceededError, track_costs


def main() -> None:
    base_url, project, max_budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)

    @track_costs(project=project, max_budget=max_budget)
    def ask() -> Any:
        return client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Say hi."}]
        )

    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "call":
            break
        try:
            ask()
        except BudgetExceededError as refused:
            print(json.dumps({"ok": False, "max_budget": refused.max_budget}), flush=True)
        else:
            print(json.dumps({"ok": True}), flush=True)
    client.close()


if __name__ == "__main__":
    main()
