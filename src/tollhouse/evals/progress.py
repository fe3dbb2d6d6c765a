"""A one-line progress bar on stderr while the cases run
(`[#####-----] 12/40 case runs, 0 call errors`).

Drawn only where a person watches (a terminal, unless told otherwise), so a CI log or a
redirected stderr gets no carriage-return noise; at most ten redraws a second.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
_REDRAW_SECONDS = 0.1


class Progress:
    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool | None = None):
        self.total = total
        self.done = 0
        self.errors = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._drawn_at = 0.0

    def advance(self, *, error: bool = False) -> None:
        self.done += 1
        self.errors += 1 if error else 0
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= _REDRAW_SECONDS or self.done == self.total):
            self._drawn_at = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def line(self) -> str:
        filled = WIDTH * self.done // self.total if self.total else WIDTH
        bar = "#" * filled + "-" * (WIDTH - filled)
        return f"[{bar}] {self.done}/{self.total} case runs, {self.errors} call errors"

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
