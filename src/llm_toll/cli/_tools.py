"""The commands that write their own output as they go, instead of returning a result for
``main`` to show: streamed export, ``logs --follow``, reset (which asks first) and the
price commands (which need no store)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from llm_toll.cli import _export, _follow, _pricing, _reset
from llm_toll.store import BaseStore


class Session(Protocol):
    """Opens the command's store for a ``with`` block; its failures exit with code 1.
    ``reads``: a read, whose ``--project`` must name a project the store knows."""

    def __call__(self, *, reads: bool = False) -> AbstractContextManager[BaseStore]: ...


Tool = Callable[[argparse.Namespace, Session], int]


def tool_for(args: argparse.Namespace) -> Tool | None:
    """The tool that runs ``args``' command, or None for a command ``main`` shows."""
    if args.command == "logs" and args.follow:
        return _follow.run
    return _TOOLS.get(args.command)


_TOOLS: dict[str, Tool] = {
    "export": _export.run,
    "reset": _reset.run,
    "prices": lambda args, session: _pricing.run_prices(args),
    "cost": lambda args, session: _pricing.run_cost(args),
    "update-pricing": lambda args, session: _pricing.run_update_pricing(args),
}
