"""A progress bar on stderr for long commands, shown only when stderr is a terminal (a
redirected or piped stderr gets nothing, so logs stay clean): rich's when the ``cli`` extra
is installed, else a one-line one of its own."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

# Redrawing on every row would cost more than the export; every so many rows, the clock
# decides whether the line is due.
_CHECK_EVERY = 1024
_REDRAW_S = 0.2


class Bar(Protocol):
    def advance(self) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int | None, label: str, stream: TextIO | None = None) -> Bar:
    """A bar on ``stream`` (default stderr) for ``total`` items (None: a count only)."""
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        try:
            return _RichBar(total, label, stream)
        except ImportError:
            pass
    return Progress(total, label, stream)


class _RichBar:
    """rich's progress bar, told every so many items (once per item would cost more than
    the export)."""

    def __init__(self, total: int | None, label: str, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        console = Console(file=stream, force_terminal=True)
        self._bar: Any = RichProgress(console=console, transient=True)
        self._task = self._bar.add_task(label, total=total)
        self._pending = 0
        self._bar.start()

    def advance(self) -> None:
        self._pending += 1
        if self._pending == _CHECK_EVERY:
            self._bar.advance(self._task, self._pending)
            self._pending = 0

    def close(self) -> None:
        self._bar.advance(self._task, self._pending)
        self._bar.stop()


class Progress:
    """The bar without rich: ``advance()`` once per item; ``close()`` clears the line."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._shown = self._stream.isatty()
        self._total = total
        self._label = label
        self._done = 0
        self._next_draw = 0.0

    def advance(self) -> None:
        self._done += 1
        if self._shown and self._done % _CHECK_EVERY == 0:
            now = time.monotonic()
            if now >= self._next_draw:
                self._next_draw = now + _REDRAW_S
                self._draw()

    def close(self) -> None:
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()

    def _draw(self) -> None:
        done, total = self._done, self._total
        if total:
            share = min(done / total, 1.0)
            bar = ("#" * int(share * 30)).ljust(30, ".")
            line = f"{self._label} [{bar}] {share:4.0%} {done:,}/{total:,}"
        else:
            line = f"{self._label} {done:,}"
        self._stream.write(f"\r{line}\033[K")
        self._stream.flush()
