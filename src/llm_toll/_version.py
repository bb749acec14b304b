"""The installed version, read once from the package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION: str = version("llm-toll")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0"
