"""``llm-toll reset PROJECT [--key K] [--period P]``: zero running budget totals, after a
confirmation on a terminal (``--yes`` skips it; without a terminal it is required)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.periods import LIFETIME
from llm_toll.cli._parser import CommandFailure
from llm_toll.cli._tables import nanos_usd
from llm_toll.store import BaseStore
from llm_toll.store._sql import SQLStore
from llm_toll.store._totals import PROJECT_KEY

if TYPE_CHECKING:
    from llm_toll.cli._tools import Session


def run(args: argparse.Namespace, session: Session) -> int:
    if not args.yes and not sys.stdin.isatty():
        raise CommandFailure(
            "reset asks for confirmation and there is no terminal to ask on; "
            "add --yes to reset without asking"
        )
    scope = _scope(args)
    narrowed = args.key is not None or args.period is not None
    with session() as store:
        if narrowed and not isinstance(store, SQLStore):
            raise CommandFailure(f"{type(store).__name__} cannot reset one budget key or period")
        spent = _spent(store, args, narrowed)
        if not spent:
            print(f"{scope[0].upper()}{scope[1:]} has no recorded cost; nothing to reset.")
            return 0
        if not args.yes and not _confirmed(f"Reset {scope} (spent {nanos_usd(spent)})? [y/N] "):
            print("Nothing was reset.")
            return 1
        if isinstance(store, SQLStore):
            store.reset_budget(args.project, budget_key=args.key, period=args.period)
        else:  # a store of one's own, written for llm-toll 0.13
            store.reset_budget(args.project)
    if args.json:
        result = {"project": args.project, "budget_key": args.key, "period": args.period}
        print(json.dumps({**result, "previous_cost_nanos": spent}))
    else:
        print(f"Budget reset for {scope} (was {nanos_usd(spent)}).")
    return 0


def _spent(store: BaseStore, args: argparse.Namespace, narrowed: bool) -> int | None:
    """What the scope has spent: the project's lifetime total (llm-toll 0.13's read, which
    every store has), or the key's lifetime total, or the named period's."""
    if not narrowed:
        return usd_to_nanos(store.get_total_cost(args.project))
    wanted = (args.project, args.key or PROJECT_KEY, args.period or LIFETIME)
    for row in store.get_budget_utilization():
        if (row["project"], row["budget_key"], row["period"]) == wanted:
            return int(row["total_cost_nanos"])
    return None


def _scope(args: argparse.Namespace) -> str:
    parts = [f"project '{args.project}'"]
    if args.key is not None:
        parts.append(f"key '{args.key}'")
    if args.period is not None:
        parts.append(f"period '{args.period}'")
    return ", ".join(parts)


def _confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}
