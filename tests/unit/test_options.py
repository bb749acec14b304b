"""Every option is checked where it is given (a decorator, a run, ``instrument``, a callback,
``setup_telemetry``, a store's constructor), with a ValueError that names it: never an
error from deep inside (``decimal.InvalidOperation``, ``OverflowError``), never a value
accepted that the store cannot hold."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import LangChainCallback, LiteLLMCallback, track_costs
from llm_toll._hooks import installed
from llm_toll.store import SQLiteStore
from llm_toll.store.postgres import PostgresStore
from tests.unit.test_decorator_shapes import chat

MAX_USD = Decimal("9223372036.854775807")  # 2**63 - 1 nano-USD: a signed 64-bit column
NOT_USD = [math.inf, -math.inf, math.nan, -1, -0.01, 1e12, 10**30, "5", True, Decimal("NaN")]
NOT_COUNTS = [0, -1, 1.5, True, "10", 2**63, math.inf]
NOT_NAMES = [5, "", b"gpt-4o"]


def named(option: str) -> str:
    """The start of the message of a ValueError about ``option``."""
    return rf"^{re.escape(option)} "


# -- @track_costs, llm_toll.run, llm_toll.instrument ------------------------------------------


@pytest.mark.parametrize("value", NOT_USD)
@pytest.mark.parametrize("option", ["max_budget", "key_budget", "max_run_cost"])
def test_a_usd_option_that_is_not_a_finite_storable_amount_is_refused_by_name(
    option: str, value: object
) -> None:
    options: dict[str, Any] = {option: value}
    if option == "key_budget":
        options["budget_key"] = lambda: "k"
    with pytest.raises(ValueError, match=named(option)):
        track_costs(**options)


def test_the_largest_budget_the_store_holds_is_accepted_and_its_calls_recorded(
    store: SQLiteStore,
) -> None:
    @track_costs(project="huge-budget", max_budget=float(MAX_USD) / 2, reset="daily")
    def ask() -> dict[str, Any]:
        return chat(10, 5)

    ask()
    ask()
    assert len(store.get_usage_logs("huge-budget")) == 2
    # Exactly the most the store holds, then one nano-USD more (decimals are accepted too).
    track_costs(max_budget=MAX_USD)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match=r"^max_budget must be at most 9223372036\.85"):
        track_costs(max_budget=MAX_USD + Decimal("1e-9"))  # type: ignore[call-overload]


@pytest.mark.parametrize("value", NOT_COUNTS)
@pytest.mark.parametrize("option", ["rate_limit", "tpm_limit"])
def test_a_rate_limit_that_is_not_a_positive_storable_integer_is_refused_by_name(
    option: str, value: object
) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=named(option)):
        track_costs(**options)


@pytest.mark.parametrize("value", NOT_NAMES)
def test_model_must_be_a_non_empty_string(value: object) -> None:
    with pytest.raises(ValueError, match=named("model")):
        track_costs(model=value)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match=named("model")):
        llm_toll.run(project="p", model=value)


@pytest.mark.parametrize("value", NOT_NAMES)
def test_a_project_must_be_a_non_empty_string_wherever_it_is_given(value: object) -> None:
    with pytest.raises(ValueError, match=named("project")):
        track_costs(project=value)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match=named("project")):
        llm_toll.run(project=value)  # type: ignore[arg-type]  # never quietly "default"
    with pytest.raises(ValueError, match=named("project")):
        llm_toll.run(project=value, max_budget=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", NOT_USD)
def test_a_run_cap_is_checked_like_a_budget(value: object) -> None:
    with pytest.raises(ValueError, match=named("max_cost")):
        llm_toll.run(max_cost=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=named("max_budget")):
        llm_toll.run(project="p", max_budget=value)


def test_instrument_checks_its_options_before_it_hooks_anything() -> None:
    hooked_before = bool(installed())
    llm_toll.uninstrument()
    try:
        for options in ({"max_budget": math.inf}, {"max_cost": -1}, {"rate_limit": 0}):
            with pytest.raises(ValueError, match=named(next(iter(options)))):
                llm_toll.instrument(project="p", **options)
            assert not installed()
        with pytest.raises(ValueError, match=named("project")):
            llm_toll.instrument(project="")
        assert not installed()
    finally:  # as the other tests found them
        llm_toll.uninstrument()
        if hooked_before:
            llm_toll.instrument()


# -- the framework callbacks -------------------------------------------------------------------


@pytest.mark.parametrize("callback", [LiteLLMCallback, LangChainCallback])
@pytest.mark.parametrize("value", NOT_USD)
def test_a_callbacks_budget_is_checked_like_the_decorators(
    callback: type[LiteLLMCallback | LangChainCallback], value: object
) -> None:
    with pytest.raises(ValueError, match=named("max_budget")):
        callback(max_budget=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=named("project")):
        callback(project="")


# -- setup_telemetry ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, 1e300, "5", True])
def test_setup_telemetry_checks_its_timeout(value: object) -> None:
    with pytest.raises(ValueError, match=named("timeout_s")):
        llm_toll.setup_telemetry(timeout_s=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, 1.5, math.inf, True])
def test_setup_telemetry_checks_its_export_interval(value: object) -> None:
    with pytest.raises(ValueError, match=named("metric_export_interval_ms")):
        llm_toll.setup_telemetry(metric_export_interval_ms=value)  # type: ignore[arg-type]


# -- the stores' constructors -------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, math.inf, math.nan, "10", None])
def test_sqlite_store_checks_its_busy_timeout(tmp_path: Path, value: object) -> None:
    with pytest.raises(ValueError, match=named("busy_timeout_s")):
        SQLiteStore(tmp_path / "ledger.db", busy_timeout_s=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("pool_min", -1),
        ("pool_min", 1.5),
        ("pool_max", 0),
        ("pool_max", True),
        ("pool_timeout_s", 0),
        ("pool_timeout_s", math.inf),
        ("pool_timeout_s", math.nan),
        ("connect_timeout_s", math.inf),
        ("connect_timeout_s", -2),
        ("connect_timeout_s", "10"),
    ],
)
def test_postgres_store_checks_its_numbers(option: str, value: object) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=named(option)):
        PostgresStore("postgresql://u@127.0.0.1/db", **options)
