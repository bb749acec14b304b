"""The ``llm-toll`` command: read the ledger and budgets of a store, reset a budget.

Exit codes: 0 success (also when the reader of the output went away, as ``| head`` does),
1 the store could not be opened or read, a ``--project`` it does not know, the output not
written, a model not priced, or a reset not confirmed; 2 usage error.

Tables are coloured (by ``rich``, the ``cli`` extra) only on a terminal, without
``NO_COLOR``, as the reporter decides; otherwise plain text.

The flags of llm-toll 0.13 (``--stats``, ``--reset``, ``--export csv`` with ``--project``,
``--model`` and ``--output``) are still accepted and mapped onto the subcommands.
"""

from __future__ import annotations

import sys

# Only the parser at import: --help and --version need nothing else. A command's machinery
# (the store, its tables, the tools) is imported once the command is known.
from llm_toll.cli._parser import CommandLineError, build_parser, check_args, resolve_legacy


def main(argv: list[str] | None = None) -> int:
    """Run ``llm-toll`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version
            return done.code if isinstance(done.code, int) else 0
        resolve_legacy(parser, args)
        check_args(parser, args)
    except CommandLineError as exc:
        print(exc, file=sys.stderr)
        return 2
    from llm_toll.cli import _run

    return _run.run(args)
