"""llm-toll 0.13.0's own test suite, run against this llm_toll as part of the test run.

``llm-toll-0.13.0.json`` pins the release (version and sdist sha256). Collecting it
collects 0.13's suite: one test here per 0.13 test, under the same name, e.g.

    tests/compat/llm-toll-0.13.0.json::tests/unit/test_cli.py::TestCliReset::test_reset

The suite is fetched once per machine (``sdist.py``) and run in a process of its own
(``run_013.py``), once per test session and only for the selected tests: the first of them
that runs starts it, and each then reports its own 0.13 outcome, with 0.13's traceback when
it fails.

A 0.13 test named in ``expected_differences.py`` is expected to fail (strict xfail, with its
reason): it fails the run if it starts passing, so the list stays honest. So does an entry
that names no 0.13 test, or a reason that is not one of that file's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.expected_differences import EXPECTED, REASONS
from tests.compat.sdist import PIN_FILE, ensure_tests

RUNNER = Path(__file__).resolve().with_name("run_013.py")
RUN_TIMEOUT_S = 900
PER_TEST_TIMEOUT_S = 120


class Failed013(Exception):
    """A 0.13 test failed (or erred) against this llm_toll; the text is its report."""


class NotRun013(Exception):
    """The 0.13 suite did not report this test (the inner run broke)."""


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.resolve() == PIN_FILE:
        return Suite013.from_parent(parent, path=file_path)
    return None


class Suite013(pytest.File):
    """The pinned release's test suite, as a tree of 0.13 node ids."""

    root: Path
    case_ids: list[str]
    results: dict[str, dict[str, Any]] | None = None
    failure: str = ""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        self.root = ensure_tests()
        listing = self.run_013(["--collect-only"])
        names = [*listing["collected"], *listing["collection_errors"]]
        self.case_ids = names
        yield ExpectedDifferencesCheck.from_parent(self, name="expected_differences", names=names)
        tree: dict[str, Any] = {}
        for nodeid in names:
            node = tree
            for part in nodeid.split("::"):
                node = node.setdefault(part, {})
        yield from _build(self, tree, "")

    def run_013(self, args: list[str]) -> dict[str, Any]:
        """Run the 0.13 suite with ``args``; its report."""
        with tempfile.TemporaryDirectory(prefix="llm-toll-013-") as tmp:
            report = Path(tmp) / "report.json"
            command = [
                *(sys.executable, str(RUNNER), "--root", str(self.root)),
                *("--report", str(report), "--basetemp", str(Path(tmp) / "basetemp")),
                *("--continue-on-collection-errors", "-q", "-o", f"timeout={PER_TEST_TIMEOUT_S}"),
                *args,
            ]
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
            if not report.exists():
                raise NotRun013(
                    f"the llm-toll 0.13 suite wrote no report (exit {done.returncode}):\n"
                    + (done.stdout + done.stderr)[-6000:]
                )
            result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
            if done.returncode not in (0, 1):  # 1: some tests failed
                self.failure = f"exit {done.returncode}:\n{(done.stdout + done.stderr)[-6000:]}"
            return result

    def result_of(self, nodeid: str) -> dict[str, Any]:
        """The outcome of 0.13 test ``nodeid``, running the selected tests on first use."""
        if self.results is None:
            selected = [item.nodeid013 for item in self.session.items if isinstance(item, Case013)]
            args = ["tests"] if len(selected) == len(self.case_ids) else selected
            try:
                report = self.run_013(args)
            except (NotRun013, subprocess.TimeoutExpired) as broken:
                self.results, self.failure = {}, str(broken)  # not run again for each test
            else:
                errors = {
                    name: {"outcome": "error", "detail": f"[collect] {text}"}
                    for name, text in report["collection_errors"].items()
                }
                self.results = {**report["tests"], **errors}
        found = self.results.get(nodeid)
        if found is None:
            raise NotRun013(
                f"the llm-toll 0.13 suite did not report {nodeid}"
                + (f" ({self.failure})" if self.failure else "")
            )
        return found


class Group013(pytest.Collector):
    """A 0.13 module or class."""

    children: dict[str, Any]
    prefix: str

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        return _build(self, self.children, self.prefix)


def _build(
    parent: pytest.Collector, tree: dict[str, Any], prefix: str
) -> Iterator[pytest.Item | pytest.Collector]:
    for name, children in tree.items():
        nodeid = f"{prefix}::{name}" if prefix else name
        if children:
            group = Group013.from_parent(parent, name=name)
            group.children, group.prefix = children, nodeid
            yield group
        else:
            yield Case013.from_parent(parent, name=name, nodeid013=nodeid)


def _suite(node: pytest.Item | pytest.Collector) -> Suite013:
    while not isinstance(node, Suite013):
        assert node.parent is not None
        node = node.parent
    return node


class _Item013(pytest.Item):
    """Reports its failures as the text of the exception: 0.13's own report, or the problem."""

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, (Failed013, NotRun013)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class Case013(_Item013):
    """One 0.13 test (or a 0.13 test module that could not be collected)."""

    def __init__(self, *, nodeid013: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nodeid013 = nodeid013
        reason = EXPECTED.get(nodeid013)
        if reason is not None:
            self.add_marker(pytest.mark.xfail(reason=reason, strict=True, raises=Failed013))

    def runtest(self) -> None:
        result = _suite(self).result_of(self.nodeid013)
        outcome, detail = result["outcome"], result["detail"]
        if outcome in ("passed", "xpassed"):
            return
        if outcome == "skipped":
            pytest.skip(f"skipped by llm-toll 0.13's suite: {detail}")
        if outcome == "xfailed":
            pytest.skip(f"expected to fail by llm-toll 0.13's own suite: {detail}")
        raise Failed013(f"llm-toll 0.13 test {self.nodeid013} {outcome}:\n{detail}")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        path = _suite(self).root / self.nodeid013.partition("::")[0]
        return path, None, f"llm-toll 0.13: {self.nodeid013}"


class ExpectedDifferencesCheck(_Item013):
    """``expected_differences.py`` names only 0.13 tests, each with one of its reasons."""

    def __init__(self, *, names: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = set(names)

    def runtest(self) -> None:
        unknown = sorted(set(EXPECTED) - self.names)
        unlisted = sorted({reason for reason in EXPECTED.values() if reason not in REASONS})
        problems = [f"names no llm-toll 0.13 test: {name}" for name in unknown]
        problems += [f"reason not in REASONS: {reason}" for reason in unlisted]
        if problems:
            raise Failed013("expected_differences.py:\n" + "\n".join(problems))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "expected differences name real llm-toll 0.13 tests"
