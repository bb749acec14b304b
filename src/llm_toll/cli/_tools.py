"""The commands that write their own output as they go, instead of returning a result for
``main`` to show: streamed export, ``logs --follow``, the dashboard, reset (which asks
first) and the price commands (which need no store)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager
from importlib import import_module
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from llm_toll.store import BaseStore


class Session(Protocol):
    """Opens the command's store for a ``with`` block; its failures exit with code 1.
    ``reads``: a read, whose ``--project`` must name a project the store knows."""

    def __call__(self, *, reads: bool = False) -> AbstractContextManager[BaseStore]: ...


Tool = Callable[[argparse.Namespace, Session], int]


def tool_for(args: argparse.Namespace) -> Tool | None:
    """The tool that runs ``args``' command, or None for a command ``main`` shows. Its
    module is imported here, for that command only (``--help`` imports none)."""
    command = "logs --follow" if args.command == "logs" and args.follow else args.command
    where = _TOOLS.get(command)
    if where is None:
        return None
    module, function = where
    tool: Tool = getattr(import_module(f"llm_toll.cli.{module}"), function)
    return tool


_TOOLS: dict[str, tuple[str, str]] = {
    "dashboard": ("_dashboard", "run"),
    "export": ("_export", "run"),
    "logs --follow": ("_follow", "run"),
    "reset": ("_reset", "run"),
    "prices": ("_pricing", "run_prices"),
    "cost": ("_pricing", "run_cost"),
    "update-pricing": ("_pricing", "run_update_pricing"),
}
