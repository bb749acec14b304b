"""The store a command runs against: which one the command line names, opened for one
command, its failures turned into ``CommandFailure`` (exit code 1)."""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llm_toll.cli._commands import COMMANDS
from llm_toll.cli._parser import CommandFailure
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
