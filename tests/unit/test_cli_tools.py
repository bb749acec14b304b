"""The llm-toll commands that work as they go: export, logs --follow, reset (with its
confirmation), prices, cost and update-pricing; against a real SQLite store and a loopback
price server."""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from genai_prices.data_snapshot import set_custom_snapshot

from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.cli._progress import Progress, progress_bar
from llm_toll.store import SQLiteStore
from llm_toll.usage._base import Usage
from tests.unit.pricing.helpers import SERVED_PROVIDERS, PriceServer
from tests.unit.test_cli import NOW, YESTERDAY, record, run


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
    with SQLiteStore(path) as store:
        record(store, "chatbot", "gpt-4o", (1234, 56), "0.0123", YESTERDAY, daily)
        record(store, "chatbot", "gpt-4o-mini", (100_000, 5000), "0.018", NOW, daily)
        # Nine embedding calls' worth: a cost a float would print as 1.44e-06.
        embedding = CallRecord(
            project="search",
            model="text-embedding-3-small",
            usage=Usage(72, 0, units={"web_searches": 1}),
            cost_nanos=1440,
            started_at=NOW,
            provider="openai",
            budget_key="tenant-a",
            price_known=False,
            estimated=True,
        )
        store.record_call(embedding, None, BudgetSpec(usd_to_nanos("1"), reset="daily"))
    return path


@pytest.fixture
def served_prices() -> Iterator[PriceServer]:
    """A loopback server with a small genai-prices data file; genai-prices' bundled prices
    are back in use after the test."""
    server = PriceServer(json.dumps(SERVED_PROVIDERS).encode())
    set_custom_snapshot(None)
    try:
        yield server
    finally:
        set_custom_snapshot(None)
        server.close()


# -- export ---------------------------------------------------------------------------------


def test_export_csv_has_every_column_and_exact_money(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, err = run(capsys, "--db", str(db), "export")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["project"], r["model"], r["cost"]) for r in rows] == [
        ("chatbot", "gpt-4o", "0.0123"),  # oldest first
        ("chatbot", "gpt-4o-mini", "0.018"),
        ("search", "text-embedding-3-small", "0.00000144"),
    ]
    embedding = rows[2]
    assert {name: embedding[name] for name in ("budget_key", "provider", "input_tokens")} == {
        "budget_key": "tenant-a",
        "provider": "openai",
        "input_tokens": "72",
    }
    assert (embedding["price_known"], embedding["estimated"]) == ("false", "true")
    assert json.loads(embedding["usage_units"]) == {"web_searches": 1}
    assert rows[0]["budget_key"] == ""  # NULL
    with SQLiteStore(db) as store:
        ledger = store.get_usage_logs_filtered(limit=0)
    expected = {name.removesuffix("_nanos") for name in ledger[0]}
    assert set(rows[0]) == expected  # every column of the ledger


def test_export_jsonl_filters_and_keeps_money_exact(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "calls.jsonl"
    argv = ["--db", str(db), "export", "--format", "jsonl", "--output", str(target)]
    code, out, _ = run(capsys, *argv, "--key", "tenant-a")
    assert (code, out) == (0, "")
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    call = json.loads(lines[0])
    assert (call["cost"], call["local_cost"], call["estimated"]) == ("0.00000144", None, True)
    assert call["usage_units"] == {"web_searches": 1}

    # --json means JSON Lines too; --since/--until select by time (until exclusive).
    since = YESTERDAY.isoformat()
    code, out, _ = run(capsys, "--db", str(db), "--json", "export", "--since", since)
    assert [json.loads(line)["model"] for line in out.splitlines()] == [
        "gpt-4o",
        "gpt-4o-mini",
        "text-embedding-3-small",
    ]
    code, out, _ = run(capsys, "--db", str(db), "--json", "export", "--until", NOW.isoformat())
    assert [json.loads(line)["model"] for line in out.splitlines()] == ["gpt-4o"]
    code, out, _ = run(capsys, "--db", str(db), "export", "--model", "gpt-4o-mini")
    assert [r["model"] for r in csv.DictReader(io.StringIO(out))] == ["gpt-4o-mini"]


def test_old_export_flag_keeps_the_six_columns_with_exact_money(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "--db", str(db), "--export", "csv", "--project", "search")
    assert code == 0
    assert out == (
        "project,model,input_tokens,output_tokens,cost,created_at\n"
        f"search,text-embedding-3-small,72,0,0.00000144,{NOW.isoformat()}\n"
    )


def test_export_shows_no_progress_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "--db", str(db), "export", "--output", str(tmp_path / "a.csv"))
    assert (code, err) == (0, "")


# -- reset ----------------------------------------------------------------------------------


def test_reset_refuses_without_yes_when_stdin_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # a pipe, not a terminal
    code, out, err = run(capsys, "--db", str(db), "reset", "chatbot")
    assert (code, out) == (1, "")
    assert "add --yes" in err
    with SQLiteStore(db) as store:
        assert store.get_total_cost("chatbot") == pytest.approx(0.0303)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code", "left"), [("y\n", 0, 0.0), ("n\n", 1, 0.0303)])
def test_reset_asks_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
    left: float,
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    result, out, _ = run(capsys, "--db", str(db), "reset", "chatbot")
    assert result == code
    assert out.startswith("Reset project 'chatbot' (spent $0.0303)? [y/N] ")
    with SQLiteStore(db) as store:
        assert store.get_total_cost("chatbot") == pytest.approx(left)


def test_reset_of_one_key_and_one_period(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "--db", str(db), "reset", "search", "--key", "tenant-a", "--yes")
    assert code == 0
    assert out == "Budget reset for project 'search', key 'tenant-a' (was $0.00000144).\n"
    today = f"{NOW:%Y-%m-%d}"
    code, out, _ = run(capsys, "--db", str(db), "reset", "chatbot", "--period", today, "--yes")
    assert out == f"Budget reset for project 'chatbot', period '{today}' (was $0.0180).\n"
    with SQLiteStore(db) as store:
        totals = {
            (r["project"], r["budget_key"], r["period"]): r["total_cost_nanos"]
            for r in store.get_budget_utilization()
        }
    assert totals[("search", "tenant-a", "all")] == 0
    assert totals[("search", "", "all")] == 1440  # the project's own stay
    assert totals[("chatbot", "", today)] == 0
    assert totals[("chatbot", "", "all")] == usd_to_nanos("0.0303")


# -- prices, cost, update-pricing -----------------------------------------------------------


def test_prices_and_cost_of_fetched_price_data(
    capsys: pytest.CaptureFixture[str], served_prices: PriceServer
) -> None:
    code, out, _ = run(capsys, "update-pricing", "--url", served_prices.url)
    assert (code, served_prices.requests) == (0, 1)
    assert out.startswith("Prices updated: genai-prices data ")

    code, out, _ = run(capsys, "prices", "toll-model")
    assert code == 0
    assert out.splitlines()[1:] == [
        "  input       $1.5 / 1M tokens",
        "  cache read  $0.15 / 1M tokens",
        "  output      $4 / 1M tokens",
    ]
    assert out.startswith("toll-model (as tollprov/toll-model): genai-prices ")
    code, out, _ = run(capsys, "--json", "prices", "toll-cliff")
    rates = json.loads(out)["rates"]
    assert rates[0] == {
        "unit": "input",
        "usd": "1",
        "per": "1M tokens",
        "tiers": [{"above": 0, "usd": "2"}, {"above": 1, "usd": "3"}],
    }

    argv = ["cost", "--model", "toll-model", "--in", "1000", "--out", "10", "--cached", "401"]
    code, out, _ = run(capsys, *argv)
    nanos = 599 * 1_500 + 401 * 150 + 10 * 4_000  # per-token rates in nano-USD
    assert (code, out.split()[0]) == (0, "$0.00099865")
    result = json.loads(run(capsys, "--json", *argv)[1])
    assert (result["cost_nanos"], result["cost"]) == (nanos, "0.00099865")


def test_unknown_models_and_bad_counts_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "prices", "gpt-4oo")
    assert (code, out) == (1, "")
    assert "no price known for model 'gpt-4oo'. Did you mean: gpt-4o" in err
    code, _, err = run(capsys, "cost", "--model", "gpt-4oo", "--in", "1", "--out", "1")
    assert code == 1
    assert "Did you mean: gpt-4o" in err
    code, _, err = run(
        capsys, "cost", "--model", "gpt-4o", "--in", "1", "--out", "1", "--cached", "5"
    )
    assert (code, err) == (1, "llm-toll: error: cached input tokens (5) exceed input tokens (1)\n")


def test_update_pricing_failure_and_the_old_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = PriceServer(b"not json")
    try:
        code, out, err = run(capsys, "update-pricing", "--url", bad.url)
        assert (code, out) == (1, "")
        assert err.startswith(f"llm-toll: error: Could not update prices from {bad.url}")
        # 0.13's flag runs the same command (with genai-prices' default URL).
        monkeypatch.setattr("llm_toll.pricing._update.DEFAULT_PRICING_URL", bad.url)
        assert run(capsys, "--update-pricing")[0] == 1
        assert bad.requests == 2
    finally:
        bad.close()


# -- logs --follow, through the console script ----------------------------------------------


def test_logs_follow_prints_calls_as_another_process_records_them(db: Path) -> None:
    script = shutil.which("llm-toll", path=os.path.dirname(sys.executable))
    assert script is not None
    argv = [script, "--db", str(db), "logs", "--follow", "--interval", "0.05", "--limit", "1"]
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read_lines() -> None:
        for line in follower.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read_lines)
    reader.start()
    try:
        first = lines.get(timeout=60)  # the latest recorded call
        assert "search  text-embedding-3-small" in first
        assert "[unpriced]  [estimated]" in first
        with SQLiteStore(db) as store:  # this process is the writer
            record(store, "live", "gpt-4o", (7, 3), "0.25", NOW)
            line = lines.get(timeout=60)
            assert "live  gpt-4o  in 7  out 3  $0.2500" in line
            record(store, "live", "gpt-4o", (8, 4), "0.5", NOW)
            assert "in 8  out 4  $0.5000" in lines.get(timeout=60)
        follower.send_signal(signal.SIGINT)  # Ctrl-C
        assert follower.wait(timeout=60) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        reader.join()
    assert follower.stderr is not None
    assert follower.stderr.read() == ""
    follower.stderr.close()


def test_export_into_a_pipe_closed_early_exits_quietly(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    with SQLiteStore(db) as store:
        for i in range(3_000):  # far more than a pipe's buffer holds
            record(store, "bulk", f"model-{i}", (i, i), "0.000001", NOW)
    script = shutil.which("llm-toll", path=os.path.dirname(sys.executable))
    assert script is not None
    reader = subprocess.Popen(
        [script, "--db", str(db), "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline().startswith("id,project,model,")
    reader.stdout.close()  # as `| head -1` does
    assert reader.wait(timeout=60) == 0
    assert reader.stderr.read() == ""
    reader.stderr.close()


def test_export_of_an_unknown_project_exits_1(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, err = run(capsys, "--db", str(db), "export", "--project", "chatbto")
    assert (code, out) == (1, "")
    assert "unknown project 'chatbto'" in err


@pytest.mark.parametrize("terminal", [True, False])
def test_the_progress_line_is_drawn_on_a_terminal_only(terminal: bool) -> None:
    stream = _Terminal() if terminal else io.StringIO()
    progress = Progress(4096, "Exporting", stream)
    for _ in range(4096):
        progress.advance()
    progress.close()
    if terminal:
        assert stream.getvalue().startswith(f"\rExporting [{'#' * 7}{'.' * 23}]  25% 1,024/4,096")
        assert stream.getvalue().endswith("\r\033[K")  # cleared: the shell prompt comes next
    else:
        assert stream.getvalue() == ""


def test_with_rich_installed_the_bar_is_rich_s() -> None:
    pytest.importorskip("rich")
    stream = _Terminal()
    bar = progress_bar(4096, "Exporting", stream)
    for _ in range(4096):
        bar.advance()
    bar.close()
    assert "Exporting" in stream.getvalue()
    assert progress_bar(4096, "Exporting", io.StringIO()).__class__ is Progress  # no terminal
