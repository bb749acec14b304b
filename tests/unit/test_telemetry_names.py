"""Metric instruments and span attributes carry exactly the names of DESIGN.md's table."""

from __future__ import annotations

from typing import Any

import pytest

from llm_toll import BudgetExceededError, default_registry, track_costs
from llm_toll.store import SQLiteStore
from llm_toll.telemetry._metrics import COST_BUCKETS, DURATION_BUCKETS, TOKEN_BUCKETS
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import chat

METRICS = {
    "gen_ai.client.token.usage": "{token}",
    "gen_ai.client.operation.duration": "s",
    "gen_ai.client.operation.cost": "USD",
    "llm_toll.cost": "USD",
    "llm_toll.budget.limit": "USD",
    "llm_toll.budget.spent": "USD",
    "llm_toll.budget.utilization": "1",
    "llm_toll.budget.rejections": "{call}",
    "llm_toll.calls.unpriced": "{call}",
}


def metrics_by_name(telemetry: Telemetry) -> dict[str, Any]:
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == "llm_toll"
        for metric in scope_metrics.metrics
    }


def test_metric_names_units_buckets_and_attributes(
    store: SQLiteStore, telemetry: Telemetry
) -> None:
    default_registry.register_model("names-model", 0.001, 0.001)

    @track_costs(project="names", max_budget=0.5)
    def ask(model: str) -> dict[str, Any]:
        return chat(1000, 0, model=model)

    with pytest.warns(UserWarning, match="No price"):
        ask("names-unpriced-model")
    ask("names-model")  # $1.00: crosses the $0.50 budget
    with pytest.raises(BudgetExceededError):
        ask("names-model")
    found = metrics_by_name(telemetry)
    for name, unit in METRICS.items():
        assert name in found, name
        assert found[name].unit == unit, name

    tokens = found["gen_ai.client.token.usage"].data.data_points
    assert {p.attributes["gen_ai.token.type"] for p in tokens} >= {"input", "output"}
    assert list(tokens[0].explicit_bounds) == TOKEN_BUCKETS
    duration = found["gen_ai.client.operation.duration"].data.data_points
    assert list(duration[0].explicit_bounds) == DURATION_BUCKETS
    assert set(duration[0].attributes) >= {"gen_ai.operation.name", "gen_ai.request.model"}
    cost = found["gen_ai.client.operation.cost"].data.data_points
    assert list(cost[0].explicit_bounds) == COST_BUCKETS
    counter = [p for p in found["llm_toll.cost"].data.data_points
               if p.attributes.get("llm_toll.project") == "names"]  # fmt: skip
    assert {p.attributes["gen_ai.request.model"] for p in counter} == {
        "names-model",
        "names-unpriced-model",
    }
    gauge = [p for p in found["llm_toll.budget.spent"].data.data_points
             if p.attributes["llm_toll.project"] == "names"]  # fmt: skip
    assert gauge[0].attributes["llm_toll.budget.period"] == "lifetime"
    assert gauge[0].value == pytest.approx(1.0)
