"""CostReporter: the 0.13 line formats, colours only on a terminal, exact session totals."""

from __future__ import annotations

import io
import threading
import warnings
from decimal import Decimal

import pytest

from llm_toll.reporter import CostReporter, SessionTotals, format_usd, reporter_from_env

GREEN, YELLOW, RED, CYAN, RESET = "\033[32m", "\033[33m", "\033[31m", "\033[36m", "\033[0m"


class Terminal(io.StringIO):
    """An in-memory stream that says it is a TTY."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_inherited_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "LLM_TOLL_REPORT"):
        monkeypatch.delenv(name, raising=False)


def test_call_line_keeps_the_013_format() -> None:
    out = io.StringIO()
    CostReporter(file=out).report_call("gpt-4o", 1234, 56, 0.0123)
    assert out.getvalue() == "[cost] gpt-4o: 1,234 in / 56 out -> $0.0123\n"


def test_session_line_keeps_the_013_format() -> None:
    out = io.StringIO()
    reporter = CostReporter(file=out)
    reporter.report_call("gpt-4o", 1000, 200, 0.25)
    reporter.report_call("claude-sonnet-4", 500, 50, 0.5)
    reporter.report_session()
    assert out.getvalue().splitlines()[-1] == "[session] 2 calls, 1,500 in / 250 out, total $0.7500"


def test_costs_are_shown_exactly_never_rounded_to_zero() -> None:
    out = io.StringIO()
    CostReporter(file=out).report_call("m", 1, 1, 0.00005)
    assert out.getvalue().endswith("-> $0.00005\n")


def test_format_usd_keeps_four_decimals_or_every_one_the_amount_has() -> None:
    assert format_usd(1_440) == "$0.00000144"  # nine embedding calls
    assert format_usd(1) == "$0.000000001"
    assert format_usd(12_300_000) == "$0.0123"
    assert format_usd(1_500_000_000) == "$1.5000"
    assert format_usd(0) == "$0.0000"


def test_format_usd_groups_thousands_on_request() -> None:
    assert format_usd(1_234_567_850_000) == "$1234.56785"
    assert format_usd(1_234_567_850_000, grouping=True) == "$1,234.56785"
    assert format_usd(100_000_000_000_000, grouping=True) == "$100,000.0000"


def test_session_is_silent_without_calls() -> None:
    out = io.StringIO()
    CostReporter(file=out).report_session()
    assert out.getvalue() == ""


def test_a_disabled_reporter_prints_nothing_but_keeps_totals() -> None:
    out = io.StringIO()
    reporter = CostReporter(enabled=False, file=out)
    reporter.report_call("gpt-4o", 10, 20, 0.5)
    reporter.report_session()
    assert out.getvalue() == ""
    assert not reporter.enabled
    assert reporter.totals == SessionTotals(
        calls=1, input_tokens=10, output_tokens=20, cost_nanos=500_000_000
    )


def test_session_totals_are_exact_for_sub_cent_costs() -> None:
    # Four nano-dollars per call: rounding a float sum to 8 places (as 0.13 did) loses them all.
    reporter = CostReporter(enabled=False)
    for _ in range(1000):
        reporter.report_call("text-embedding-3-small", 1, 0, 0.000000004)
    for _ in range(10):
        reporter.report_call("gpt-4o", 0, 0, 0.1)
    assert reporter.totals.cost_nanos == 1_000_004_000


def test_decimal_costs_are_accepted() -> None:
    reporter = CostReporter(enabled=False)
    reporter.report_call("m", 0, 0, Decimal("0.123456789"))
    assert reporter.totals.cost_nanos == 123_456_789


def test_reset_starts_a_new_session() -> None:
    out = io.StringIO()
    reporter = CostReporter(file=out)
    reporter.report_call("a", 5, 5, 1.0)
    reporter.reset()
    assert reporter.totals == SessionTotals()
    reporter.report_call("b", 7, 3, 0.002)
    reporter.report_session()
    assert out.getvalue().splitlines()[-1] == "[session] 1 calls, 7 in / 3 out, total $0.0020"


def test_totals_are_exact_under_concurrent_calls() -> None:
    reporter = CostReporter(enabled=False)

    def worker() -> None:
        for _ in range(500):
            reporter.report_call("m", 3, 2, 0.000001)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reporter.totals == SessionTotals(
        calls=8000, input_tokens=24_000, output_tokens=16_000, cost_nanos=8_000_000
    )


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "cost", "message"),
    [
        (-1, 0, 0.0, "input_tokens"),
        (0, 1.5, 0.0, "output_tokens"),
        (True, 0, 0.0, "input_tokens"),
        (0, 0, -0.01, "must not be negative"),
        (0, 0, float("nan"), "finite"),
        (0, 0, "0.1", "number of USD"),
    ],
)
def test_bad_values_are_rejected_without_touching_the_session(
    input_tokens: int, output_tokens: int, cost: float, message: str
) -> None:
    out = io.StringIO()
    reporter = CostReporter(file=out)
    with pytest.raises(ValueError, match=message):
        reporter.report_call("m", input_tokens, output_tokens, cost)
    assert reporter.totals == SessionTotals()
    assert out.getvalue() == ""


# -- colours --------------------------------------------------------------------------------


def test_no_colours_when_the_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    CostReporter(file=out).report_call("gpt-4o", 1, 1, 5.0)
    assert "\033[" not in out.getvalue()


@pytest.mark.parametrize(
    ("cost", "colour"),
    [(0.0099, GREEN), (0.01, YELLOW), (0.10, YELLOW), (0.1001, RED)],
)
def test_call_cost_colour_on_a_terminal(cost: float, colour: str) -> None:
    out = Terminal()
    CostReporter(file=out).report_call("gpt-4o", 1, 1, cost)
    line = out.getvalue()
    assert line.startswith(f"[cost] {CYAN}gpt-4o{RESET}: ")
    assert line.endswith(f"-> {colour}${cost:.4f}{RESET}\n")


def test_session_total_is_bold_and_coloured_on_a_terminal() -> None:
    out = Terminal()
    reporter = CostReporter(file=out)
    reporter.report_call("gpt-4o", 1, 1, 0.05)
    reporter.report_call("gpt-4o", 1, 1, 0.06)
    reporter.report_session()
    assert out.getvalue().splitlines()[-1].endswith("total \033[1;31m$0.1100\033[0m")


def test_no_color_turns_colours_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    CostReporter(file=out).report_call("gpt-4o", 1, 1, 5.0)
    assert out.getvalue() == "[cost] gpt-4o: 1 in / 1 out -> $5.0000\n"


def test_an_empty_no_color_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "")
    out = Terminal()
    CostReporter(file=out).report_call("gpt-4o", 1, 1, 5.0)
    assert RED in out.getvalue()


@pytest.mark.parametrize(
    ("name", "value", "coloured"),
    [
        ("FORCE_COLOR", "1", True),
        ("FORCE_COLOR", "3", True),
        ("FORCE_COLOR", "0", False),
        ("FORCE_COLOR", "false", False),
        ("FORCE_COLOR", "", False),
        ("CLICOLOR_FORCE", "1", True),
        ("CLICOLOR_FORCE", "0", False),
    ],
)
def test_colours_can_be_forced_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, coloured: bool
) -> None:
    """For a CI log that renders colours, say; as llm-toll 0.13 printed them."""
    monkeypatch.setenv(name, value)
    out = io.StringIO()
    CostReporter(file=out).report_call("gpt-4o", 1, 1, 0.005)
    assert (f"{CYAN}gpt-4o{RESET}" in out.getvalue()) is coloured


def test_no_color_wins_over_a_forced_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    CostReporter(file=out).report_call("gpt-4o", 1, 1, 0.005)
    assert "\033[" not in out.getvalue()


# -- default stream and environment -----------------------------------------------------


def test_default_output_is_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    CostReporter().report_call("gpt-4o", 2, 3, 0.0)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "[cost] gpt-4o: 2 in / 3 out -> $0.0000\n"


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", " Yes "])
def test_env_factory_enables_on_true_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LLM_TOLL_REPORT", value)
    assert reporter_from_env().enabled


@pytest.mark.parametrize("value", [None, "", "0", "false", "no"])
def test_env_factory_stays_off_otherwise(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv("LLM_TOLL_REPORT", value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not reporter_from_env().enabled


def test_env_factory_warns_about_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_TOLL_REPORT", "sometimes")
    with pytest.warns(UserWarning, match="LLM_TOLL_REPORT='sometimes'"):
        reporter = reporter_from_env()
    assert not reporter.enabled
