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

import argparse
import json
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from llm_toll.cli._commands import COMMANDS
from llm_toll.cli._parser import (
    CommandFailure,
    CommandLineError,
    build_parser,
    check_args,
    resolve_legacy,
)
from llm_toll.cli._tools import tool_for
from llm_toll.reporter import colour_wanted
from llm_toll.store import (
    STORE_URL_ENV,
    BaseStore,
    StoreError,
    StoreWarning,
    create_store,
)
from llm_toll.store._secrets import redact_url


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


@contextmanager
def store_session(
    args: argparse.Namespace, *, reads: bool = False, create: bool = False
) -> Iterator[BaseStore]:
    """The store of ``args``, open for one command; its failures become CommandFailure.
    ``reads``: a read, whose ``--project`` must name a project the store knows;
    ``create``: a write that may create a SQLite file not there yet."""
    with open_store(store_target(args), create=create) as store, warnings.catch_warnings():
        # The 0.13 read methods report a failing store with a StoreWarning and an empty
        # answer; an empty table would hide the failure, so here it is the error it is.
        warnings.simplefilter("error", StoreWarning)
        try:
            if reads:
                _check_project(store, getattr(args, "project", None))
            yield store
        except (StoreError, StoreWarning) as exc:
            raise CommandFailure(str(exc)) from exc


def run_command(args: argparse.Namespace) -> Any:
    """Open the store, run the command's store part, and close the store."""
    command = COMMANDS[args.command]
    create = command.creates_store is not None and command.creates_store(args)
    with store_session(args, reads=command.reads, create=create) as store:
        return command.fetch(store, args)


def _check_project(store: BaseStore, project: str | None) -> None:
    """A read of a project the store does not know is a mistake (a typo), not 'nothing'."""
    if project is None:
        return
    known = store.projects()
    if project not in known:
        listed = ", ".join(known) if known else "none yet"
        raise CommandFailure(f"unknown project {project!r} (projects in the store: {listed})")


def _reader_gone() -> None:
    """The reader of stdout went away (`| head`): say nothing, and keep the interpreter's
    own flush at exit from failing again on the closed pipe."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _write(text: str, output: str | None) -> None:
    if output is None:
        try:
            print(text, flush=True)
        except BrokenPipeError:
            _reader_gone()
        return
    try:
        Path(output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandFailure(f"cannot write {output}: {exc.strerror or exc}") from exc


def _json_value(value: object) -> str:
    """A time as ISO 8601 (``2026-11-30T09:00:00+00:00``), anything else as its text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


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
        tool = tool_for(args)
        if tool is not None:  # a command that writes as it goes (export, logs --follow...)
            try:
                return tool(args, partial(store_session, args))
            except BrokenPipeError:
                _reader_gone()
                return 0
        result = run_command(args)
    except CommandLineError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CommandFailure as exc:
        print(f"llm-toll: error: {exc}", file=sys.stderr)
        return 1
    command = COMMANDS[args.command]
    output = getattr(args, "output", None)
    args.colour = output is None and colour_wanted(sys.stdout)
    text = (
        json.dumps(result, indent=2, default=_json_value)
        if args.json
        else command.show(result, args)
    )
    try:
        _write(text, output)
    except CommandFailure as exc:
        print(f"llm-toll: error: {exc}", file=sys.stderr)
        return 1
    return 0
