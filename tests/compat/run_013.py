"""Run llm-toll 0.13.0's own test suite against the installed llm_toll.

    python tests/compat/run_013.py [--root DIR] [--report FILE] [pytest arguments...]

``DIR`` holds 0.13's ``tests/`` (default: the cached copy, fetched once by ``sdist.py``).
Test paths and node ids are given as 0.13 names them (``tests/unit/test_cli.py::...``);
with none, the whole suite runs. This is a script with a process of its own because 0.13's
tests are a package named ``tests``, like ours: the two suites cannot share an interpreter.
``make test`` runs it through ``conftest.py``, which turns its ``--report`` into one test
per 0.13 test; run directly, it prints pytest's usual output.

The plugin below adds three things to 0.13's suite, and changes none of its tests:

- Isolation. ``HOME`` is a fresh temporary directory for the process and for each test,
  and ``LLM_TOLL_*``, ``OTEL_*``, ``NO_COLOR``, ``FORCE_COLOR`` and ``CLICOLOR*`` are unset:
  0.13's tests see 0.13's defaults (``~/.llm_toll.db``, colours on) and can never touch
  the developer's own database.
- Absent 0.13 internals. Some 0.13 test modules import, at their top, private 0.13 modules
  that llm_toll has not got (``llm_toll.parsers``, ``llm_toll.streaming``...). While test
  modules are being imported, such an import gets a placeholder module, so that the
  module's other tests are still collected; every name taken from a placeholder raises
  ``Missing013Internal`` when used. The placeholders are gone before the first test runs:
  a test that imports one of these modules itself meets the real ``ModuleNotFoundError``.
  A module llm_toll does have is always the real one.
- A report. ``--report FILE`` writes every test's outcome, and every collection error, as
  JSON.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

# Every module of llm-toll 0.13.0's source tree.
MODULES_013 = frozenset(
    {
        "llm_toll._postgres_store",
        "llm_toll.async_streaming",
        "llm_toll.cli",
        "llm_toll.dashboard",
        "llm_toll.decorator",
        "llm_toll.exceptions",
        "llm_toll.integrations",
        "llm_toll.integrations.langchain",
        "llm_toll.integrations.litellm",
        "llm_toll.parsers",
        "llm_toll.parsers.anthropic",
        "llm_toll.parsers.gemini",
        "llm_toll.parsers.openai",
        "llm_toll.pricing",
        "llm_toll.rate_limiter",
        "llm_toll.remote_pricing",
        "llm_toll.reporter",
        "llm_toll.store",
        "llm_toll.streaming",
    }
)
PACKAGES_013 = frozenset({"llm_toll.integrations", "llm_toll.parsers"})


def isolated_env_var(name: str) -> bool:
    """Variables that would make 0.13's tests see something else than 0.13's defaults."""
    return name.startswith(("LLM_TOLL_", "OTEL_", "CLICOLOR")) or name in {
        "NO_COLOR",
        "FORCE_COLOR",
    }


class Missing013Internal(ImportError):
    """A name from a private llm-toll 0.13 module that llm_toll has not got."""


class _Placeholder:
    def __init__(self, module: str, name: str) -> None:
        self._where = f"{module}.{name}"
        self._module = module

    def _fail(self, *args: object, **kwargs: object) -> Any:
        raise Missing013Internal(
            f"{self._where} is a private llm-toll 0.13 internal:"
            f" llm_toll has no module {self._module}"
        )

    __call__ = _fail
    __mro_entries__ = _fail

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # probes by pytest, inspect, mock...
            raise AttributeError(name)
        return self._fail()

    def __repr__(self) -> str:
        return f"<placeholder for {self._where}>"


class MissingModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves placeholder modules for the 0.13 modules that llm_toll has not got."""

    def __init__(self) -> None:
        self.served: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES_013:
            return None
        for finder in sys.meta_path:
            if finder is not self and finder.find_spec(fullname, path, target) is not None:
                return None  # llm_toll has it: the real module
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname in PACKAGES_013)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__

        def __getattr__(attribute: str) -> Any:
            if attribute.startswith("__"):
                raise AttributeError(attribute)
            return _Placeholder(name, attribute)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        self.served.append(name)

    def install(self) -> None:
        sys.meta_path.append(self)

    def uninstall(self) -> None:
        sys.meta_path.remove(self)
        for name in self.served:
            sys.modules.pop(name, None)
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and isinstance(
                sys.modules[parent].__dict__.get(child), types.ModuleType
            ):
                delattr(sys.modules[parent], child)
        self.served.clear()


class Compat013:
    """The pytest plugin of the inner run: isolation, placeholders, report."""

    def __init__(self, report: Path | None) -> None:
        self.report = report
        self.missing = MissingModules()
        self.tests: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.collected: list[str] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self, session: pytest.Session) -> Generator[None, object, object]:
        self.missing.install()
        try:
            return (yield)
        finally:
            self.missing.uninstall()

    @pytest.fixture(autouse=True)
    def _isolated_home(
        self, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        for name in list(os.environ):
            if isolated_env_var(name):
                monkeypatch.delenv(name)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors[report.nodeid] = report.longreprtext

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = [item.nodeid for item in session.items]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(report.nodeid, {"outcome": "passed", "detail": ""})
        entry.setdefault("duration", 0.0)
        entry["duration"] += report.duration
        if hasattr(report, "wasxfail"):
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
            entry["detail"] = report.wasxfail
        elif report.skipped:
            entry["outcome"] = "skipped"
            longrepr = report.longrepr
            entry["detail"] = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        elif report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["detail"] = _describe(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.report is None:
            return
        data = {
            "exitstatus": int(exitstatus),
            "collected": self.collected,
            "collection_errors": self.errors,
            "tests": self.tests,
        }
        tmp = self.report.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(self.report)


def _describe(report: pytest.TestReport) -> str:
    text = f"[{report.when}] {report.longreprtext}"
    for title, content in report.sections:
        text += f"\n----- {title} -----\n{content[-4000:]}"
    return text


def main(argv: list[str]) -> int:
    root: Path | None = None
    report: Path | None = None
    args: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--root":
            root = Path(next(rest)).resolve()
        elif arg == "--report":
            report = Path(next(rest)).resolve()
        else:
            args.append(arg)
    if root is None:
        from sdist import ensure_tests  # type: ignore[import-not-found]  # beside this script

        root = ensure_tests()

    # Paths as 0.13 names them, relative to its root.
    targets = [str(root / arg) for arg in args if arg == "tests" or arg.startswith("tests/")]
    options = [arg for arg in args if arg != "tests" and not arg.startswith("tests/")]
    if not targets:
        targets = [str(root / "tests")]

    for name in list(os.environ):
        if isolated_env_var(name):
            del os.environ[name]
    work = Path(tempfile.mkdtemp(prefix="llm-toll-013-"))
    os.environ["HOME"] = str(work / "home")
    (work / "home").mkdir()
    previous = os.getcwd()
    os.chdir(work)  # a test that writes to the working directory writes here
    sys.dont_write_bytecode = True  # nothing is written into the cached suite
    try:
        return int(
            pytest.main(
                [
                    *("-c", os.devnull, "--rootdir", str(root), "--confcutdir", str(root)),
                    *("-p", "no:cacheprovider"),
                    *("-o", "asyncio_default_fixture_loop_scope=function"),
                    *options,
                    *targets,
                ],
                plugins=[Compat013(report)],
            )
        )
    finally:
        os.chdir(previous)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
