"""The ``llm-toll`` command: read the ledger and budgets of a store, reset a budget.

Exit codes: 0 success, 1 the store could not be opened or read, 2 usage error.

The flags of llm-toll 0.13 (``--stats``, ``--reset``, ``--export csv`` with ``--project``,
``--model`` and ``--output``) are still accepted and mapped onto the subcommands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from llm_toll.cli._commands import COMMANDS
from llm_toll.cli._parser import CommandLineError, build_parser, resolve_legacy
from llm_toll.store import (
    STORE_URL_ENV,
    BaseStore,
    StoreError,
    StoreWarning,
    create_store,
)
from llm_toll.store._secrets import redact_url


class CommandFailure(Exception):
    """The store could not be opened or read, or the output not written (exit code 1)."""


def store_target(args: argparse.Namespace) -> str | None:
    """``--store-url``, ``--db``, then ``$LLM_TOLL_STORE_URL``.

    None leaves the choice to the store: ``$LLM_TOLL_DB``, else ``~/.llm_toll.db``.
    """
    for value in (args.store_url, args.db, os.environ.get(STORE_URL_ENV)):
        if value:
            return str(value)
    return None


def open_store(target: str | None, *, create: bool = False) -> BaseStore:
    """The store ``target`` names; a SQLite file must already exist (reading must not create
    an empty one, which would hide a mistyped path), unless ``create``."""
    try:
        store = create_store(target)
    except (ValueError, ImportError, NotImplementedError) as exc:
        shown = None if target is None else redact_url(target)
        raise CommandFailure(f"cannot open the store {shown!r}: {exc}") from exc
    db_path = getattr(store, "db_path", None)  # a store in a file: SQLite's
    if isinstance(db_path, str) and not create and not Path(db_path).exists():
        store.close()
        raise CommandFailure(f"no database at {db_path} (nothing recorded there yet?)")
    return store


def run_command(args: argparse.Namespace) -> Any:
    """Open the store, run the command's store part, and close the store."""
    command = COMMANDS[args.command]
    store = open_store(
        store_target(args), create=command.creates_store is not None and command.creates_store(args)
    )
    with store, warnings.catch_warnings():
        # The 0.13 read methods report a failing store with a StoreWarning and an empty
        # answer; an empty table would hide the failure, so here it is the error it is.
        warnings.simplefilter("error", StoreWarning)
        try:
            return command.fetch(store, args)
        except (StoreError, StoreWarning) as exc:
            raise CommandFailure(str(exc)) from exc


def _write(text: str, output: str | None) -> None:
    if output is None:
        print(text)
        return
    try:
        Path(output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandFailure(f"cannot write {output}: {exc.strerror or exc}") from exc


def main(argv: list[str] | None = None) -> int:
    """Run ``llm-toll`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version
            return done.code if isinstance(done.code, int) else 0
        resolve_legacy(parser, args)
        result = run_command(args)
    except CommandLineError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CommandFailure as exc:
        print(f"llm-toll: error: {exc}", file=sys.stderr)
        return 1
    command = COMMANDS[args.command]
    text = json.dumps(result, indent=2, default=str) if args.json else command.show(result, args)
    try:
        _write(text, getattr(args, "output", None))
    except CommandFailure as exc:
        print(f"llm-toll: error: {exc}", file=sys.stderr)
        return 1
    return 0
