"""Files done out of the total, on a terminal's standard error, for runs long enough to need it: nothing
for the first two seconds (a pre-commit run never shows it), then one line rewritten in place at most ten
times a second, erased at the end. Never shown when standard error is not a terminal or with ``-q``."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, delay: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.delay = _delay() if delay is None else delay
        self.clock = clock
        self.start = clock()
        self._last = float("-inf")
        self._width = 0

    @classmethod
    def for_terminal(cls, quiet: bool) -> "Callable[[int], Progress] | None":
        """A factory for a run's progress when standard error is a terminal, else None."""
        try:
            interactive = sys.stderr.isatty()
        except (AttributeError, ValueError):
            interactive = False
        return None if quiet or not interactive else cls

    def update(self, done: int) -> None:
        now = self.clock()
        if now - self.start < self.delay or (now - self._last < 0.1 and done < self.total):
            return
        self._last = now
        text = f"nanlint: checked {done}/{self.total} files"
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _delay() -> float:
    """Seconds before the line appears: 2, or ``NANLINT_PROGRESS_DELAY`` (a number) where it is set."""
    try:
        return max(0.0, float(os.environ.get("NANLINT_PROGRESS_DELAY", "2")))
    except ValueError:
        return 2.0
