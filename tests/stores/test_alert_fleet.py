"""A fleet crossing one budget together raises each alert once: processes sharing a SQLite
file or a PostgreSQL database, the store's marks deciding which process fires."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from llm_toll.store._sql import SQLStore
from tests.stores.conftest import StoreFactory
from tests.support.alert_receiver import AlertReceiver, fields

WORKER = Path(__file__).resolve().parents[1] / "support" / "alert_worker.py"
PROCESSES = 4
CALLS = 30  # each; 120 calls of 0.002 USD against a budget of 50 such calls
MAX_BUDGET = "0.1"
EXIT_S = 120.0  # a bound for a hung process, not a measured limit


def test_a_fleet_raises_each_alert_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert isinstance(store, SQLStore)
    store.upgrade_schema()  # the schema made once, not raced by the fleet
    environment = {**os.environ, "LLM_TOLL_STORE_URL": store_factory.location}
    with AlertReceiver() as receiver:
        fleet = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "fleet", str(CALLS), MAX_BUDGET, receiver.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
            for _ in range(PROCESSES)
        ]
        try:
            for process in fleet:
                assert process.stdout is not None
                assert process.stdout.readline().strip() == "ready"
            for process in fleet:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            outputs = [process.communicate(timeout=EXIT_S) for process in fleet]
        finally:
            for process in fleet:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        for process, (_, errors) in zip(fleet, outputs, strict=True):
            assert process.returncode == 0, errors
        # Every process has exited: its alerts were delivered at exit, or never will be.
        bodies = receiver.bodies()
    seen = Counter(
        (alert["kind"], alert["threshold"], alert["refused"])
        for out, _ in outputs
        for alert in map(json.loads, out.splitlines())
    )
    assert seen == {
        ("threshold", 50, False): 1,
        ("threshold", 80, False): 1,
        ("threshold", 100, False): 1,
        ("exceeded", 100, False): 1,
        ("exceeded", 100, True): 1,
    }
    # The webhook's: the 100 % threshold is told by the exceeded alert of the same call.
    posted = Counter((fields(body)["kind"], fields(body)["threshold (%)"]) for body in bodies)
    assert posted == {
        ("threshold", "50"): 1,
        ("threshold", "80"): 1,
        ("exceeded", "100"): 1,
        ("refused", "100"): 1,
    }
    crossing = next(body for body in bodies if fields(body)["kind"] == "exceeded")
    assert fields(crossing)["spent (USD)"] == "0.100000000"  # the 50th call's total
