"""A progress line on stderr for long commands, shown only when stderr is a terminal (a
redirected or piped stderr gets nothing, so logs stay clean)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

# Redrawing on every row would cost more than the export; every so many rows, the clock
# decides whether the line is due.
_CHECK_EVERY = 1024
_REDRAW_S = 0.2


class Progress:
    """``advance()`` once per item; ``close()`` clears the line."""

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
