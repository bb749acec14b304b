"""llm-toll 0.13.0's own test suite, fetched once per machine and cached outside the checkout.

The suite ships in llm-toll's source distribution on PyPI. It is fetched with the running
interpreter's ``pip download``, checked against the sha256 pinned in
``llm-toll-0.13.0.json``, and only its ``tests/`` directory is extracted, to::

    ${LLM_TOLL_CACHE:-~/.cache/llm-toll}/llm-toll-0.13.0-tests/tests/...

The extraction happens in a temporary directory of the cache that is renamed into place
when complete, under a file lock: concurrent runs wait for the first one, and a run that
is killed half-way leaves nothing that looks complete. None of 0.13's files are kept in
this repository.

Without network access, point ``LLM_TOLL_013_SDIST`` at a copy of the sdist already on
disk (it is checked against the same sha256).

``python tests/compat/sdist.py`` fetches the suite (once) and prints its directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PIN_FILE = Path(__file__).resolve().with_name("llm-toll-0.13.0.json")
SDIST_ENV = "LLM_TOLL_013_SDIST"
MARKER = ".sdist-sha256"  # written last, before the rename: the tree is complete


class FetchError(RuntimeError):
    """The pinned sdist could not be fetched, verified or extracted."""


@dataclass(frozen=True)
class Pin:
    project: str
    version: str
    sdist: str
    sha256: str

    @property
    def prefix(self) -> str:
        """The sdist's top directory, ``llm_toll-0.13.0/``."""
        return self.sdist.removesuffix(".tar.gz") + "/"

    @property
    def cache_name(self) -> str:
        return f"{self.project}-{self.version}-tests"


def load_pin(path: Path = PIN_FILE) -> Pin:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Pin(data["project"], data["version"], data["sdist"], data["sha256"].lower())


def cache_root() -> Path:
    return Path(os.environ.get("LLM_TOLL_CACHE") or Path.home() / ".cache" / "llm-toll")


def ensure_tests(
    pin: Pin | None = None, cache: Path | None = None, sdist_file: Path | None = None
) -> Path:
    """The directory holding the pinned release's ``tests/``, fetched if not cached yet."""
    pin = pin or load_pin()
    cache = cache or cache_root()
    final = cache / pin.cache_name
    if _complete(final, pin):
        return final
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f".{pin.cache_name}.lock"):
        if _complete(final, pin):  # fetched by whoever held the lock
            return final
        # Holding the lock, no other fetch runs: what a killed run left behind can go.
        for stale in cache.glob(f".{pin.cache_name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # a tree of another sdist (the pin changed)
            shutil.rmtree(final)
        work = Path(tempfile.mkdtemp(prefix=f".{pin.cache_name}.tmp-", dir=cache))
        try:
            if sdist_file is None and os.environ.get(SDIST_ENV):
                sdist_file = Path(os.environ[SDIST_ENV])
            archive = sdist_file or _download(pin, work / "download")
            _verify(archive, pin.sha256)
            tree = work / "tree"
            _extract_tests(archive, pin.prefix, tree)
            (tree / MARKER).write_text(pin.sha256 + "\n", encoding="utf-8")
            os.rename(tree, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _complete(final: Path, pin: Pin) -> bool:
    try:
        marker = (final / MARKER).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return marker == pin.sha256 and (final / "tests").is_dir()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(pin: Pin, dest: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--dest",
        str(dest),
        f"{pin.project}=={pin.version}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise FetchError(f"pip download of {pin.sdist} failed: {error}") from error
    archive = dest / pin.sdist
    if done.returncode != 0 or not archive.is_file():
        raise FetchError(
            f"pip download of {pin.project}=={pin.version} failed (exit {done.returncode});"
            f" without network access set {SDIST_ENV} to a copy of {pin.sdist}.\n"
            + (done.stderr or done.stdout)[-2000:]
        )
    return archive


def _verify(archive: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with archive.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise FetchError(
            f"{archive} has sha256 {digest.hexdigest()}, not the pinned {sha256};"
            " refusing to run it"
        )


def _extract_tests(archive: Path, prefix: str, dest: Path) -> None:
    """Extract ``<prefix>tests/**`` (regular files and directories only) into ``dest``."""
    dest.mkdir()
    found = False
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.name.startswith(prefix):
                continue
            relative = PurePosixPath(member.name[len(prefix) :])
            if not relative.parts or relative.parts[0] != "tests":
                continue
            if relative.is_absolute() or ".." in relative.parts:
                raise FetchError(f"unsafe path in {archive.name}: {member.name}")
            target = dest.joinpath(*relative.parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is None:
                    raise FetchError(f"cannot read {member.name} in {archive.name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                found = True
            else:
                raise FetchError(f"unexpected entry (not a file) in {archive.name}: {member.name}")
    if not found:
        raise FetchError(f"{archive.name} has no {prefix}tests/ directory")


if __name__ == "__main__":
    try:
        print(ensure_tests() / "tests")
    except FetchError as failure:
        sys.exit(f"sdist.py: {failure}")
