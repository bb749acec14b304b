"""The llm-toll command against a real SQLite store populated through the store API."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll._version import VERSION
from llm_toll.cli import main
from llm_toll.store import BaseStore, SQLiteStore
from llm_toll.usage.base import Usage

NOW = datetime.now(timezone.utc)
YESTERDAY = NOW - timedelta(days=1)
LONG_AGO = NOW - timedelta(days=40)


def record(
    store: BaseStore,
    project: str,
    model: str,
    tokens: tuple[int, int],
    cost: str,
    at: datetime,
    budget: BudgetSpec | None = None,
) -> None:
    call = CallRecord(
        project=project,
        model=model,
        usage=Usage(*tokens),
        cost_nanos=usd_to_nanos(cost),
        started_at=at,
    )
    store.record_call(call, budget)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No store configured by the environment, and a home without a default database."""
    monkeypatch.delenv("LLM_TOLL_STORE_URL", raising=False)
    monkeypatch.delenv("LLM_TOLL_DB", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "usage.db"
    daily = BudgetSpec(usd_to_nanos("0.05"), reset="daily")
    lifetime = BudgetSpec(usd_to_nanos("10"))
    with SQLiteStore(path) as store:
        record(store, "chatbot", "gpt-4o", (1234, 56), "0.0123", YESTERDAY, daily)
        record(store, "chatbot", "gpt-4o-mini", (100_000, 5000), "0.018", NOW, daily)
        record(store, "research", "claude-sonnet-4", (2_000_000, 30_000), "6.45", LONG_AGO)
        record(store, "research", "claude-sonnet-4", (10, 10), "0.5", NOW, lifetime)
    return path


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    path = tmp_path / "empty.db"
    with SQLiteStore(path) as store:
        assert store.get_all_project_summaries() == []  # opening creates the schema
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_rows(out: str) -> list[list[str]]:
    """The cells of each table line below the dashes (cells are separated by 2+ spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---"))
    return [[cell for cell in line.split("  ") if cell] for line in lines[start + 1 :]]


def cells(row: list[str]) -> list[str]:
    return [cell.strip() for cell in row]


# -- reports --------------------------------------------------------------------------------


def test_models_table_is_aligned_with_an_exact_total(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, err = run(capsys, "--db", str(db), "models")
    assert (code, err) == (0, "")
    assert out == (
        "llm-toll usage by model\n"
        "\n"
        "Model            Calls  Input Tokens  Output Tokens  Total Cost\n"
        "---------------  -----  ------------  -------------  ----------\n"
        "claude-sonnet-4      2     2,000,010         30,010     $6.9500\n"
        "gpt-4o-mini          1       100,000          5,000     $0.0180\n"
        "gpt-4o               1         1,234             56     $0.0123\n"
        "TOTAL                4     2,101,244         35,066     $6.9803\n"
    )


def test_summary_lists_projects_costliest_first(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "summary")
    assert code == 0
    assert out.startswith("llm-toll Usage Summary\n")  # 0.13's title
    rows = [cells(row) for row in table_rows(out)]
    assert rows == [
        ["research", "2", "2,000,010", "30,010", "$6.9500", NOW.strftime("%Y-%m-%d %H:%M:%S")],
        ["chatbot", "2", "101,234", "5,056", "$0.0303", NOW.strftime("%Y-%m-%d %H:%M:%S")],
        ["TOTAL", "4", "2,101,244", "35,066", "$6.9803"],
    ]


def test_summary_of_one_model_lists_its_projects(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "summary", "--model", "gpt-4o")
    assert code == 0
    assert out.startswith("Usage for model: gpt-4o\n")  # 0.13's title
    assert [cells(row) for row in table_rows(out)] == [
        ["chatbot", "1", "1,234", "56", "$0.0123"],
        ["TOTAL", "1", "1,234", "56", "$0.0123"],
    ]


def test_models_of_one_project(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "--db", str(db), "models", "--project", "chatbot")
    assert code == 0
    assert out.startswith("Usage for project: chatbot\n")  # 0.13's title
    assert [row[0].strip() for row in table_rows(out)] == ["gpt-4o-mini", "gpt-4o", "TOTAL"]


def test_logs_are_newest_first_filtered_and_limited(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "logs", "--project", "research", "--limit", "1")
    assert code == 0
    assert [cells(row)[1:] for row in table_rows(out)] == [
        ["research", "claude-sonnet-4", "10", "10", "$0.5000"]
    ]

    code, out, _ = run(capsys, "--db", str(db), "logs", "--model", "claude-sonnet-4")
    assert [cells(row)[0] for row in table_rows(out)] == [
        NOW.strftime("%Y-%m-%d %H:%M:%S"),
        LONG_AGO.strftime("%Y-%m-%d %H:%M:%S"),
    ]


def test_logs_limit_zero_shows_all(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "--db", str(db), "logs", "--limit", "0")
    assert code == 0
    assert len(table_rows(out)) == 4


def test_budgets_show_every_period_with_limit_and_use(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "budgets")
    assert code == 0
    shown = {(row[0], row[1]): row[2:5] for row in map(cells, table_rows(out))}
    assert shown == {
        ("research", "all"): ["$6.9500", "$10.0000", "69.5%"],
        ("chatbot", "all"): ["$0.0303", "-", "-"],
        ("chatbot", period_key("daily", NOW)): ["$0.0180", "$0.0500", "36.0%"],
        ("chatbot", period_key("daily", YESTERDAY)): ["$0.0123", "$0.0500", "24.6%"],
    }


def test_budgets_show_budget_keys_when_there_are_some(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "keyed.db"
    call = CallRecord(
        project="saas",
        model="gpt-4o",
        usage=Usage(10, 10),
        cost_nanos=usd_to_nanos("0.25"),
        started_at=NOW,
        budget_key="tenant-1",
    )
    with SQLiteStore(path) as store:
        store.record_call(call, None, BudgetSpec(usd_to_nanos("1")))
    code, out, _ = run(capsys, "--db", str(path), "budgets")
    assert code == 0
    shown = {(row[0], row[1], row[2]): row[3:6] for row in map(cells, table_rows(out))}
    assert shown == {
        ("saas", "tenant-1", "all"): ["$0.2500", "$1.0000", "25.0%"],
        ("saas", "-", "all"): ["$0.2500", "-", "-"],  # the project's own total
    }


def test_trends_cover_the_requested_days(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "--db", str(db), "trends", "--days", "7")
    assert code == 0
    assert [cells(row) for row in table_rows(out)] == [
        [YESTERDAY.strftime("%Y-%m-%d"), "1", "1,234", "56", "$0.0123"],
        [NOW.strftime("%Y-%m-%d"), "2", "100,010", "5,010", "$0.5180"],
        ["TOTAL", "3", "101,244", "5,066", "$0.5303"],
    ]
    code, out, _ = run(capsys, "--db", str(db), "trends", "--days", "60")
    assert table_rows(out)[-1][1].strip() == "4"


def test_an_empty_store_says_so(capsys: pytest.CaptureFixture[str], empty_db: Path) -> None:
    assert run(capsys, "--db", str(empty_db), "summary") == (0, "No usage data found.\n", "")
    assert run(capsys, "--db", str(empty_db), "logs", "--project", "x") == (
        0,
        "No usage data found for project 'x'.\n",
        "",
    )
    assert run(capsys, "--db", str(empty_db), "budgets") == (0, "No budgets recorded.\n", "")
    assert run(capsys, "--db", str(empty_db), "--json", "models") == (0, "[]\n", "")


# -- machine output -------------------------------------------------------------------------


def test_json_output_is_the_store_rows(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "--db", str(db), "--json", "summary")
    assert code == 0
    projects = json.loads(out)
    assert [(p["project"], p["call_count"], p["total_cost_nanos"]) for p in projects] == [
        ("research", 2, 6_950_000_000),
        ("chatbot", 2, 30_300_000),
    ]


def test_json_is_accepted_after_the_command(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "budgets", "--db", str(db), "--json")
    assert code == 0
    budgets = json.loads(out)
    research = next(b for b in budgets if b["project"] == "research")
    assert (research["period"], research["limit"], research["utilization"]) == ("all", 10.0, 0.695)


def test_export_writes_every_call_as_csv(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "calls.csv"
    code, out, _ = run(
        capsys, "--db", str(db), "export", "--project", "chatbot", "--output", str(target)
    )
    assert (code, out) == (0, "")
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [(r["model"], r["input_tokens"], float(r["cost"])) for r in rows] == [
        ("gpt-4o-mini", "100000", 0.018),
        ("gpt-4o", "1234", 0.0123),
    ]


# -- reset ----------------------------------------------------------------------------------


def test_reset_zeroes_the_running_totals_and_keeps_history(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "reset", "research")
    assert (code, out) == (0, "Budget reset for project 'research' (was $6.9500).\n")
    with SQLiteStore(db) as store:
        assert store.get_total_cost("research") == 0.0
        assert store.get_total_cost("chatbot") == pytest.approx(0.0303)
        assert len(store.get_usage_logs("research")) == 2


def test_reset_of_a_project_without_cost_changes_nothing(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "reset", "nobody")
    assert (code, out) == (0, "Project 'nobody' has no recorded cost; nothing to reset.\n")


def test_migrate_on_a_current_database_has_nothing_to_do(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    # A file of llm-toll 0.13: tests/stores/test_v013_sharing.py.
    names = sorted(db.parent.iterdir())
    assert run(capsys, "--db", str(db), "migrate") == (0, "The schema is up to date.\n", "")
    assert sorted(db.parent.iterdir()) == names  # no backup: nothing was changed


# -- llm-toll 0.13 flags --------------------------------------------------------------------


def test_old_stats_flags_map_to_the_commands(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    assert run(capsys, "--db", str(db), "--stats") == run(capsys, "--db", str(db), "summary")
    assert run(capsys, "--db", str(db), "--stats", "--project", "chatbot") == run(
        capsys, "--db", str(db), "models", "--project", "chatbot"
    )
    assert run(capsys, "--db", str(db), "--stats", "--model", "gpt-4o") == run(
        capsys, "--db", str(db), "summary", "--model", "gpt-4o"
    )


def test_old_reset_and_export_flags(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "old.csv"
    code, _, _ = run(capsys, "--db", str(db), "--export", "csv", "--output", str(target))
    assert code == 0
    assert target.read_text(encoding="utf-8").startswith(
        "project,model,input_tokens,output_tokens,cost,created_at\n"
    )
    code, out, _ = run(capsys, "--db", str(db), "--reset", "--project", "chatbot")
    assert (code, out) == (0, "Budget reset for project 'chatbot' (was $0.0303).\n")


# -- choosing the store ---------------------------------------------------------------------


def test_store_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TOLL_STORE_URL", f"sqlite:///{db}")
    code, out, _ = run(capsys, "--json", "summary")
    assert code == 0
    assert len(json.loads(out)) == 2


def test_db_path_from_the_environment_and_db_overrides_it(
    capsys: pytest.CaptureFixture[str], db: Path, empty_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TOLL_DB", str(db))
    assert len(json.loads(run(capsys, "--json", "summary")[1])) == 2
    assert json.loads(run(capsys, "--db", str(empty_db), "--json", "summary")[1]) == []


# -- failures -------------------------------------------------------------------------------


def test_a_missing_database_is_an_error_and_is_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "typo.db"
    code, out, err = run(capsys, "--db", str(missing), "summary")
    assert (code, out) == (1, "")
    assert err == f"llm-toll: error: no database at {missing} (nothing recorded there yet?)\n"
    assert not missing.exists()


def test_the_default_database_is_in_the_home_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "summary")
    assert code == 1
    assert str(tmp_path / "home" / ".llm_toll.db") in err


def test_a_corrupt_database_is_a_store_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database, just text " * 100)
    code, out, err = run(capsys, "--db", str(corrupt), "logs")
    assert (code, out) == (1, "")
    assert err.startswith("llm-toll: error: ")
    assert str(corrupt) in err


def test_an_unsupported_store_url_is_a_store_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--store-url", "mongodb://somewhere/db", "summary")
    assert code == 1
    assert "unsupported store URL" in err


def test_an_unwritable_output_is_an_error(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "no-such-dir" / "out.csv"
    code, _, err = run(capsys, "--db", str(db), "export", "--output", str(target))
    assert code == 1
    assert f"cannot write {target}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "a command is required"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["logs", "--limit", "-1"], "must be 0 (all) or more"),
        (["logs", "--limit", "ten"], "not a whole number: 'ten'"),
        (["trends", "--days", "0"], "must be at least 1"),
        (["reset"], "the following arguments are required: project"),
        (["--reset"], "--reset requires --project"),
        (["--stats", "summary"], "cannot be combined with a command"),
        (["--db", "a.db", "--store-url", "sqlite:///b.db", "summary"], "not allowed with"),
        (["--dashboard", "summary"], "cannot be combined with a command"),
        (["dashboard", "--port", "65536"], "must be 0 (a free port) to 65535"),
        (["--update-pricing"], "--update-pricing was removed"),
    ],
)
def test_usage_errors_exit_with_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("usage: llm-toll")
    assert message in err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    commands = ("summary", "models", "logs", "budgets", "trends", "reset", "migrate")
    assert all(name in out for name in commands)
    assert run(capsys, "--version") == (0, f"llm-toll {VERSION}\n", "")
