"""The harness that runs llm-toll 0.13's suite: fetching and caching it, and the inner run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from tests.compat.sdist import MARKER, FetchError, Pin, ensure_tests, load_pin

RUNNER = Path(__file__).resolve().with_name("run_013.py")


def make_sdist(path: Path, members: dict[str, str]) -> Pin:
    """A gzipped tar at ``path`` holding ``members`` (name -> text); its pin."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return Pin("llm-toll", "0.13.0", "llm_toll-0.13.0.tar.gz", sha256)


SDIST = {
    "llm_toll-0.13.0/pyproject.toml": "[project]\n",
    "llm_toll-0.13.0/src/llm_toll/__init__.py": "",
    "llm_toll-0.13.0/tests/__init__.py": "",
    "llm_toll-0.13.0/tests/unit/test_a.py": "def test_a():\n    pass\n",
}


def test_the_pin_is_the_released_sdist() -> None:
    pin = load_pin()
    assert (pin.project, pin.version, pin.sdist) == ("llm-toll", "0.13.0", "llm_toll-0.13.0.tar.gz")
    assert len(pin.sha256) == 64


def test_only_the_tests_are_extracted_once_into_the_cache(tmp_path: Path) -> None:
    archive = tmp_path / "llm_toll-0.13.0.tar.gz"
    pin = make_sdist(archive, SDIST)
    cache = tmp_path / "cache"
    root = ensure_tests(pin, cache, archive)
    assert root == cache / "llm-toll-0.13.0-tests"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        MARKER,
        "tests/__init__.py",
        "tests/unit/test_a.py",
    ]
    archive.unlink()  # cached: the sdist is not needed again
    assert ensure_tests(pin, cache, archive) == root
    assert sorted(p.name for p in cache.iterdir()) == [".llm-toll-0.13.0-tests.lock", root.name]


def test_an_sdist_with_another_checksum_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "llm_toll-0.13.0.tar.gz"
    pin = make_sdist(archive, SDIST)
    wrong = Pin(pin.project, pin.version, pin.sdist, "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match="not the pinned"):
        ensure_tests(wrong, cache, archive)
    assert [p.name for p in cache.iterdir()] == [".llm-toll-0.13.0-tests.lock"]


def test_an_entry_climbing_out_of_the_tests_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "llm_toll-0.13.0.tar.gz"
    pin = make_sdist(archive, {**SDIST, "llm_toll-0.13.0/tests/../../evil.py": ""})
    with pytest.raises(FetchError, match="unsafe path"):
        ensure_tests(pin, tmp_path / "cache", archive)
    assert not (tmp_path / "evil.py").exists()


def test_concurrent_fetches_extract_once(tmp_path: Path) -> None:
    archive = tmp_path / "llm_toll-0.13.0.tar.gz"
    pin = make_sdist(archive, SDIST)
    roots: list[Path] = []
    threads = [
        threading.Thread(target=lambda: roots.append(ensure_tests(pin, tmp_path / "c", archive)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(roots)) == 1 and len(roots) == 8
    assert not list((tmp_path / "c").glob(".*.tmp-*"))


FAKE_SUITE = {
    "tests/__init__.py": "",
    "tests/unit/__init__.py": "",
    "tests/unit/test_isolation.py": """
import os
from pathlib import Path

from llm_toll.streaming import StreamAccumulator  # a 0.13 internal llm_toll has not got


def test_home_is_a_fresh_directory_and_the_environment_is_clean():
    assert Path.home() != Path(os.environ["REAL_HOME"])
    assert not list(Path.home().iterdir())
    assert not [name for name in os.environ if name.startswith("LLM_TOLL_")]
    assert "NO_COLOR" not in os.environ and "FORCE_COLOR" not in os.environ


def test_using_a_placeholder_fails():
    StreamAccumulator()


def test_importing_an_absent_internal_at_run_time_fails():
    import llm_toll.parsers  # noqa: F401


def test_a_module_llm_toll_has_is_the_real_one():
    import llm_toll.rate_limiter

    assert llm_toll.rate_limiter.RateLimiter
""",
}


def test_the_inner_run_isolates_and_stands_in_for_absent_internals(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    for name, text in FAKE_SUITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "REAL_HOME": str(Path.home()),
        "LLM_TOLL_DB": str(tmp_path / "real.db"),
        "NO_COLOR": "1",
        "FORCE_COLOR": "1",
    }
    subprocess.run(
        [sys.executable, str(RUNNER), "--root", str(root), "--report", str(report), "-q"],
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    tests = json.loads(report.read_text())["tests"]
    outcomes = {name.rpartition("::")[2]: entry["outcome"] for name, entry in tests.items()}
    assert outcomes == {
        "test_home_is_a_fresh_directory_and_the_environment_is_clean": "passed",
        "test_using_a_placeholder_fails": "failed",
        "test_importing_an_absent_internal_at_run_time_fails": "failed",
        "test_a_module_llm_toll_has_is_the_real_one": "passed",
    }
    detail = tests["tests/unit/test_isolation.py::test_using_a_placeholder_fails"]["detail"]
    assert "llm_toll.streaming.StreamAccumulator is a private llm-toll 0.13 internal" in detail
    detail = tests[
        "tests/unit/test_isolation.py::test_importing_an_absent_internal_at_run_time_fails"
    ]["detail"]
    assert "ModuleNotFoundError: No module named 'llm_toll.parsers'" in detail
    assert not (tmp_path / "real.db").exists()
