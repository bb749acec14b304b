"""A parsed command run: its store opened, its result shown (or its tool run), the output
written; failures become exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from functools import partial
from pathlib import Path

from llm_toll.cli._commands import COMMANDS
from llm_toll.cli._parser import CommandFailure
from llm_toll.cli._session import run_command, store_session
from llm_toll.cli._tools import tool_for
from llm_toll.reporter import colour_wanted


def run(args: argparse.Namespace) -> int:
    """Run the command of ``args`` (checked by the parser); return the exit code."""
    try:
        tool = tool_for(args)
        if tool is not None:  # a command that writes as it goes (export, logs --follow...)
            try:
                return tool(args, partial(store_session, args))
            except BrokenPipeError:
                _reader_gone()
                return 0
        result = run_command(args)
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
