"""The llm-toll command against a real SQLite store populated through the store API."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import BudgetSpec, CallRecord, RefusalCount, RunRecord, ns_of
from llm_toll._version import VERSION
from llm_toll.cli import main
from llm_toll.store import BaseStore, SQLiteStore
from llm_toll.usage._base import Usage

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
    """The cells of each table line below the dashes (cells are separated by 2+ spaces),
    up to the legend of the marks."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---"))
    body = lines[start + 1 :]
    body = body[: body.index("")] if "" in body else body
    return [[cell for cell in line.split("  ") if cell] for line in body]


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
        ("research", "lifetime"): ["$6.9500", "$10.0000", "69.5%"],
        ("chatbot", "lifetime"): ["$0.0303", "-", "-"],
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
        ("saas", "tenant-1", "lifetime"): ["$0.2500", "$1.0000", "25.0%"],
        ("saas", "-", "lifetime"): ["$0.2500", "-", "-"],  # the project's own total
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
    assert run(capsys, "--db", str(empty_db), "budgets") == (0, "No budgets recorded.\n", "")
    assert run(capsys, "--db", str(empty_db), "--json", "models") == (0, "[]\n", "")


# -- machine output -------------------------------------------------------------------------


def test_json_output_is_the_store_rows(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "--db", str(db), "--json", "summary")
    assert code == 0
    projects = json.loads(out)
    assert [(p["project"], p["calls"], p["cost_nanos"]) for p in projects] == [
        ("research", 2, 6_950_000_000),
        ("chatbot", 2, 30_300_000),
    ]


def test_json_is_accepted_after_the_command(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "budgets", "--db", str(db), "--json")
    assert code == 0
    budgets = json.loads(out)
    research = next(b for b in budgets if b["project"] == "research")
    assert (research["period"], research["limit"], research["utilization"]) == (
        "lifetime",
        10.0,
        0.695,
    )


def test_export_writes_every_call_as_csv(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "calls.csv"
    code, out, _ = run(
        capsys, "--db", str(db), "export", "--project", "chatbot", "--output", str(target)
    )
    assert (code, out) == (0, "")
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [(r["model"], r["input_tokens"], r["cost"]) for r in rows] == [
        ("gpt-4o", "1234", "0.0123"),  # oldest first, money exact
        ("gpt-4o-mini", "100000", "0.018"),
    ]


# -- reset ----------------------------------------------------------------------------------


def test_reset_zeroes_the_running_totals_and_keeps_history(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "reset", "research", "--yes")
    assert (code, out) == (0, "Budget reset for project 'research' (was $6.9500).\n")
    with SQLiteStore(db) as store:
        assert store.get_total_cost("research") == 0.0
        assert store.get_total_cost("chatbot") == pytest.approx(0.0303)
        assert len(store.get_usage_logs("research")) == 2


def test_reset_of_a_project_without_cost_changes_nothing(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "reset", "nobody", "--yes")
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
        (["--update-pricing", "summary"], "cannot be combined with a command"),
        (["logs", "--interval", "0"], "must be more than 0"),
        (["--dashboard", "summary"], "cannot be combined with a command"),
        (["dashboard", "--port", "65536"], "must be 0 (a free port) to 65535"),
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


def test_help_imports_no_command_machinery() -> None:
    """``--help`` builds the parser and nothing else: no store, ledger records, tables or
    reporter (each command imports its own when it runs). A fresh interpreter: this
    process has imported them all."""
    code = (
        "import sys; from llm_toll.cli import main; main(['--help']); "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'llm_toll.store._base', 'llm_toll._budget.records', 'llm_toll.usage', "
        "'llm_toll.reporter', 'llm_toll.cli._commands', 'llm_toll.cli._tables', "
        "'opentelemetry', 'decimal', 'json'))), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: llm-toll" in done.stdout
    assert done.stderr.strip() == "[]"


# -- date ranges, grouping, exact money --------------------------------------------------------


@pytest.fixture
def week_db(tmp_path: Path) -> Path:
    """Calls of the week of Monday 2026-11-23 (ISO week 2026-W48) and the week before."""
    path = tmp_path / "week.db"
    monday = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
    with SQLiteStore(path) as store:
        for hour in range(9):  # nine embedding calls of 160 nano-USD
            at = monday + timedelta(hours=hour)
            store.record_call(
                CallRecord(
                    project="search",
                    model="text-embedding-3-small",
                    usage=Usage(10, 0),
                    cost_nanos=160,
                    started_at=at,
                    provider="openai",
                )
            )
        last_week = monday - timedelta(days=3)
        unpriced = CallRecord(
            project="chatbot",
            model="mystery-model",
            usage=Usage(100, 20),
            cost_nanos=0,
            started_at=last_week,
            price_known=False,
            budget_key="team-a",
        )
        store.record_call(unpriced)
        estimated = CallRecord(
            project="chatbot",
            model="gpt-4o",
            usage=Usage(1000, 200),
            cost_nanos=usd_to_nanos("0.0123"),
            started_at=monday + timedelta(days=1),
            estimated=True,
            provider="openai",
        )
        store.record_call(estimated, BudgetSpec(usd_to_nanos("1"), reset="weekly"))
    return path


def legend_of(out: str) -> list[str]:
    return out.split("\n\n")[-1].splitlines()


def test_tiny_costs_are_exact_and_unpriced_or_estimated_ones_marked(
    capsys: pytest.CaptureFixture[str], week_db: Path
) -> None:
    code, out, err = run(capsys, "--db", str(week_db), "models")
    assert (code, err) == (0, "")
    assert [cells(row) for row in table_rows(out)] == [
        ["gpt-4o", "1", "1,000", "200", "$0.0123~"],
        ["text-embedding-3-small", "9", "90", "0", "$0.00000144"],
        ["mystery-model", "1", "100", "20", "$0.0000*"],
        ["TOTAL", "11", "1,190", "220", "$0.01230144*~"],
    ]
    assert legend_of(out) == [
        "* unpriced: no price known for the model, counted as $0",
        "~ estimated: the provider reported no usage, the tokens were counted locally",
    ]
    # Amounts stay right-aligned with the marks beside them.
    lines = out.split("\n\n")[1].splitlines()  # the title, the table, the legend
    ends = {
        line.index("$") + len(line.split("$")[1].rstrip("*~ ")) for line in lines if "$" in line
    }
    assert len(ends) == 1


def test_spend_groups_by_iso_week_and_model(
    capsys: pytest.CaptureFixture[str], week_db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(week_db), "spend", "--by", "week,model")
    assert code == 0
    assert out.startswith("Spend by week, model\n")
    assert [cells(row) for row in table_rows(out)] == [
        ["2026-W47", "mystery-model", "1", "100", "20", "$0.0000*"],
        ["2026-W48", "gpt-4o", "1", "1,000", "200", "$0.0123~"],
        ["2026-W48", "text-embedding-3-small", "9", "90", "0", "$0.00000144"],
        ["TOTAL", "11", "1,190", "220", "$0.01230144*~"],
    ]
    code, out, _ = run(
        capsys, "--db", str(week_db), "--json", "spend", "--by", "provider", "--by", "key"
    )
    groups = [(row["provider"], row["key"], row["calls"]) for row in json.loads(out)]
    assert groups == [(None, "team-a", 1), ("openai", None, 10)]


def test_spend_groups_by_day_by_default_and_filters(
    capsys: pytest.CaptureFixture[str], week_db: Path
) -> None:
    code, out, _ = run(
        capsys, "--db", str(week_db), "--json", "spend", "--project", "search", "--model",
        "text-embedding-3-small", "--provider", "openai",
    )  # fmt: skip
    assert code == 0
    [day] = json.loads(out)
    assert (day["day"], day["calls"], day["cost_nanos"]) == ("2026-11-23", 9, 1_440)
    code, out, _ = run(capsys, "--db", str(week_db), "--json", "spend", "--key", "team-a")
    assert [row["cost_nanos"] for row in json.loads(out)] == [0]
    code, out, _ = run(capsys, "--db", str(week_db), "--json", "spend", "--by", "month")
    assert [(row["month"], row["calls"]) for row in json.loads(out)] == [("2026-11", 11)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["spend", "--by", "year"], "cannot group by 'year': choose among day, week"),
        (["spend", "--by", "day,model", "--by", "day"], "--by names day more than once"),
        (["logs", "--since", "2026-11-31"], "not a date (YYYY-MM-DD) or ISO 8601 time"),
        (["summary", "--since", "2026-11-24", "--until", "2026-11-23"], "must be after"),
        (["trends", "--days", "3", "--since", "2026-11-23"], "not allowed with argument"),
    ],
)
def test_bad_groupings_and_ranges_are_usage_errors(
    capsys: pytest.CaptureFixture[str], week_db: Path, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "--db", str(week_db), *argv)
    assert (code, out) == (2, "")
    assert message in err


def test_every_read_takes_a_utc_range_since_inclusive_until_exclusive(
    capsys: pytest.CaptureFixture[str], week_db: Path
) -> None:
    week = ("--since", "2026-11-23", "--until", "2026-11-30")

    def json_of(*argv: str) -> list[dict[str, object]]:
        code, out, err = run(capsys, "--db", str(week_db), "--json", *argv)
        assert (code, err) == (0, "")
        return list(json.loads(out))

    assert [(r["project"], r["calls"]) for r in json_of("summary", *week)] == [
        ("chatbot", 1),
        ("search", 9),
    ]
    assert [r["model"] for r in json_of("models", *week, "--project", "chatbot")] == ["gpt-4o"]
    logs = json_of("logs", *week, "--limit", "0")
    assert len(logs) == 10
    assert logs[-1]["created_at"] == "2026-11-23T09:00:00+00:00"
    # A time, with its offset: 10:00 at +01:00 is 09:00 UTC, the first call, included.
    since = "2026-11-23T10:00:00+01:00"
    assert len(json_of("logs", "--since", since, "--until", "2026-11-23T10:00")) == 1
    assert [
        r["day"] for r in json_of("trends", "--since", "2026-11-20", "--until", "2026-11-24")
    ] == [
        "2026-11-20",
        "2026-11-23",
    ]
    assert run(capsys, "--db", str(week_db), "summary", "--until", "2026-11-01") == (
        0,
        "No usage data found (until 2026-11-01 00:00:00 UTC).\n",
        "",
    )
    _, out, _ = run(capsys, "--db", str(week_db), "models", *week)
    assert out.startswith(
        "llm-toll usage by model (since 2026-11-23 00:00:00 until 2026-11-30 00:00:00 UTC)\n"
    )


def test_budget_periods_read_lifetime_and_iso_weeks(
    capsys: pytest.CaptureFixture[str], week_db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(week_db), "budgets", "--project", "chatbot")
    assert code == 0
    periods = {cells(row)[1]: cells(row)[2:5] for row in table_rows(out)}
    assert periods == {
        "lifetime": ["$0.0123", "-", "-"],
        "2026-W48": ["$0.0123", "$1.0000", "1.2%"],
    }


def test_reset_takes_a_period_as_budgets_shows_it(
    capsys: pytest.CaptureFixture[str], week_db: Path
) -> None:
    argv = ("--db", str(week_db), "reset", "chatbot", "--yes", "--period")
    code, out, _ = run(capsys, *argv, "2026-W48")
    assert (code, out) == (
        0,
        "Budget reset for project 'chatbot', period '2026-W48' (was $0.0123).\n",
    )
    code, out, _ = run(capsys, "--db", str(week_db), "budgets", "--project", "chatbot")
    periods = {cells(row)[1]: cells(row)[2] for row in table_rows(out)}
    assert periods == {"lifetime": "$0.0123", "2026-W48": "$0.0000"}
    code, out, _ = run(capsys, *argv, "lifetime")
    assert out == "Budget reset for project 'chatbot', period 'lifetime' (was $0.0123).\n"
    code, _, err = run(capsys, *argv, "2026-W60")
    assert code == 2 and "no ISO week '2026-W60'" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "--project", "nope"],
        ["spend", "--model", "gpt-4o", "--project", "nope"],
        ["logs", "--project", "nope"],
        ["budgets", "--project", "nope"],
        ["trends", "--project", "nope"],
        ["--stats", "--project", "nope"],
    ],
)
def test_an_unknown_project_is_an_error(
    capsys: pytest.CaptureFixture[str], week_db: Path, argv: list[str]
) -> None:
    code, out, err = run(capsys, "--db", str(week_db), *argv)
    assert (code, out) == (1, "")
    assert err == (
        "llm-toll: error: unknown project 'nope' (projects in the store: chatbot, search)\n"
    )


def test_colour_is_forced_by_force_color_and_refused_by_no_color(
    capsys: pytest.CaptureFixture[str], week_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    code, out, _ = run(capsys, "--db", str(week_db), "models")
    assert code == 0 and "\x1b[" in out
    assert "$0.00000144" in out and "text-embedding-3-small" in out
    monkeypatch.setenv("NO_COLOR", "1")
    code, plain, _ = run(capsys, "--db", str(week_db), "models")
    assert "\x1b[" not in plain
    assert [cells(row)[0] for row in table_rows(plain)][-1] == "TOTAL"
    monkeypatch.delenv("NO_COLOR")
    code, out, _ = run(capsys, "--db", str(week_db), "--json", "models")
    assert "\x1b[" not in out


def test_without_rich_a_terminal_gets_the_plain_table(
    capsys: pytest.CaptureFixture[str], week_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setitem(sys.modules, "rich", None)  # what `import rich` meets uninstalled
    code, out, err = run(capsys, "--db", str(week_db), "models")
    assert (code, err) == (0, "")
    assert "\x1b[" not in out
    assert [cells(row)[-1] for row in table_rows(out)][-1] == "$0.01230144*~"


# -- runs and refused calls -------------------------------------------------------------------


@pytest.fixture
def runs_db(db: Path) -> Path:
    with SQLiteStore(db) as store:
        for run_id, project, minutes_ago, status in (
            ("r1", "chatbot", 30, "ok"),
            ("r2", "research", 20, "refused"),
            ("r3", "chatbot", 10, "error"),
        ):
            started = NOW - timedelta(minutes=minutes_ago)
            store.record_runs(
                [
                    RunRecord(
                        id=run_id,
                        parent_id=None,
                        project=project,
                        name=f"agent_{run_id}",
                        budget_key=None,
                        status=status,  # type: ignore[arg-type]
                        requests=3,
                        cost_nanos=usd_to_nanos("0.00000144"),
                        max_cost_nanos=usd_to_nanos("0.5") if status == "refused" else None,
                        started_ns=ns_of(started),
                        ended_ns=ns_of(started + timedelta(seconds=2.5)),
                    )
                ]
            )
        minute = NOW.replace(second=0, microsecond=0)
        refused = RefusalCount(
            "research", "acme", "gpt-4o", "key", minute, 1, NOW, "Budget exceeded for acme"
        )
        store.record_refusals([refused] * 100)
    return db


def test_runs_are_newest_first_with_their_figures(
    capsys: pytest.CaptureFixture[str], runs_db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(runs_db), "runs")
    assert code == 0
    assert [cells(row)[1:] for row in table_rows(out)] == [
        ["chatbot", "agent_r3", "2.50 s", "3", "$0.00000144", "-", "error"],
        ["research", "agent_r2", "2.50 s", "3", "$0.00000144", "$0.5000", "refused"],
        ["chatbot", "agent_r1", "2.50 s", "3", "$0.00000144", "-", "ok"],
    ]
    since = (NOW - timedelta(minutes=25)).isoformat()
    code, out, _ = run(
        capsys, "--db", str(runs_db), "runs", "--project", "chatbot", "--since", since
    )
    assert [cells(row)[2] for row in table_rows(out)] == ["agent_r3"]
    code, out, _ = run(capsys, "--db", str(runs_db), "--json", "runs", "--limit", "1")
    [shown] = json.loads(out)
    assert (shown["id"], shown["cost_nanos"], shown["duration_s"]) == ("r3", 1440, 2.5)


def test_refusals_show_one_counted_row_per_minute(
    capsys: pytest.CaptureFixture[str], runs_db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(runs_db), "refusals")
    assert code == 0
    [row] = map(cells, table_rows(out))
    assert row[1:6] == ["research", "acme", "gpt-4o", "key", "100"]
    assert row[-1] == "Budget exceeded for acme"
    code, out, _ = run(capsys, "--db", str(runs_db), "refusals", "--project", "chatbot")
    assert (code, out.strip()) == (0, "No refused calls found for project 'chatbot'.")
