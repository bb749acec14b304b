"""How limits kept in the store combine with the code's (``_budget.limits``), the plan a
call is checked under (``_budget.stored``), and ``llm-toll budget``'s errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_toll._budget.limits import combine, every_limit
from llm_toll._budget.records import BudgetSpec
from llm_toll._budget.stored import with_stored_limits
from llm_toll._call.plan import BudgetScope, Plan
from llm_toll.cli import main as cli


def test_a_stored_limit_over_the_code_period_is_one_limit_the_smaller() -> None:
    assert combine(BudgetSpec(100, "daily"), [BudgetSpec(40, "daily")]) == BudgetSpec(40, "daily")
    assert combine(BudgetSpec(10, "daily"), [BudgetSpec(40, "daily")]) == BudgetSpec(10, "daily")
    assert combine(BudgetSpec(None, "daily"), [BudgetSpec(40, "daily")]) == BudgetSpec(40, "daily")


def test_other_periods_are_kept_each_after_the_code_period() -> None:
    combined = combine(BudgetSpec(100, "monthly"), [BudgetSpec(5, "daily"), BudgetSpec(900)])
    assert combined is not None
    assert every_limit(combined) == (
        BudgetSpec(100, "monthly"),
        BudgetSpec(5, "daily"),
        BudgetSpec(900, None),
    )
    assert combine(None, []) is None
    assert combine(None, [BudgetSpec(5, "weekly")]) == BudgetSpec(5, "weekly")


def test_a_call_is_checked_against_every_limit_of_its_scopes() -> None:
    plan = Plan(name="f", project="p", budget=BudgetSpec(100, "monthly"))
    limits = {("p", ""): (BudgetSpec(5, "daily"),), ("p", "acme"): (BudgetSpec(1, "weekly"),)}
    checked = with_stored_limits(plan, "acme", limits)
    assert checked.scopes("acme") == (
        BudgetScope(BudgetSpec(100, "monthly"), None),
        BudgetScope(BudgetSpec(5, "daily"), None),
        # The key's scope starts at the project's period; its stored weekly limit comes
        # after.
        BudgetScope(BudgetSpec(1, "weekly"), "acme"),
    )
    assert checked.key_budget is not None and checked.key_budget.reset == "monthly"
    assert with_stored_limits(plan, "other", limits).scopes("other") == (
        BudgetScope(BudgetSpec(100, "monthly"), None),
        BudgetScope(BudgetSpec(5, "daily"), None),
    )
    assert with_stored_limits(plan, None, {("q", ""): (BudgetSpec(1),)}) is plan


def test_a_strict_reservation_holds_every_period_of_both_scopes() -> None:
    plan = Plan(name="f", project="p", budget=BudgetSpec(100, "monthly"), strict=True)
    limits = {("p", ""): (BudgetSpec(5, "daily"),), ("p", "acme"): (BudgetSpec(1, "weekly"),)}
    checked = with_stored_limits(plan, "acme", limits)
    # The project's rows of the key's periods too: a reservation locks the project's row
    # of each period it holds before the key's.
    assert every_limit(checked.reserved_budget("acme")) == (
        BudgetSpec(100, "monthly"),
        BudgetSpec(5, "daily"),
        BudgetSpec(None, "weekly"),
    )
    assert every_limit(checked.reserved_budget(None)) == (
        BudgetSpec(100, "monthly"),
        BudgetSpec(5, "daily"),
    )


def test_budget_commands_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "new.db")
    assert cli(["budget", "list", "--db", db]) == 1  # reading never creates a file
    assert not Path(db).exists()
    assert cli(["budget", "set", "p", "--limit", "-1", "--db", db]) == 2
    assert cli(["budget", "set", "p", "--limit", "lots", "--db", db]) == 2
    assert cli(["budget", "set", "p", "--limit", "1", "--reset", "hourly", "--db", db]) == 2
    assert not Path(db).exists()
    assert cli(["budget", "set", "p", "--limit", "0.000000001", "--key", "k", "--db", db]) == 0
    assert "$0.000000001 lifetime" in capsys.readouterr().out
    assert cli(["budget", "list", "--json", "--db", db]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["project"], row["key"], row["limit"], row["limit_nanos"]) == (
        "p",
        "k",
        "0.000000001",
        1,
    )
    assert cli(["budget", "rm", "p", "--db", db]) == 1  # the project has none; the key has
    assert "no limit is kept for project 'p'" in capsys.readouterr().err
    assert cli(["budget", "rm", "p", "--key", "k", "--reset", "daily", "--db", db]) == 1
    assert cli(["budget", "rm", "p", "--key", "k", "--db", db]) == 0
    assert cli(["budget", "list", "--db", db]) == 0
    assert "No budget limits" in capsys.readouterr().out
