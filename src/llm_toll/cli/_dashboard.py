"""``llm-toll dashboard``: serve the local page over the store until interrupted."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from llm_toll.cli._parser import CommandFailure

if TYPE_CHECKING:
    from llm_toll.cli._tools import Session


def run(args: argparse.Namespace, session: Session) -> int:
    from llm_toll.dashboard import serve  # the server is loaded only by this command

    with session() as store:
        try:
            serve(
                store,
                host=args.host,
                port=args.port,
                token=args.token,
                open_browser=args.open,
                say=lambda line: print(line, flush=True),
            )
        except (ValueError, OSError) as exc:
            where = f"{args.host}:{args.port}"
            raise CommandFailure(f"cannot serve the dashboard on {where}: {exc}") from exc
    print("Dashboard stopped.")
    return 0
