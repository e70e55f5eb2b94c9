"""A plain-text progress bar for the operator commands (no dependency).

On a terminal it is redrawn in place; written to a file or a pipe (a log,
a test) it prints a line at each tenth instead, so the record stays readable.
"""

from __future__ import annotations

import time
from typing import TextIO

_WIDTH = 30
_STEPS = 10  # lines printed when not on a terminal


class ProgressBar:
    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._live = stream.isatty()
        self._started = time.monotonic()
        self._printed_step = -1
        self._last = (0, 0)

    def update(self, done: int, total: int) -> None:
        self._last = (done, total)
        fraction = 1.0 if total <= 0 else min(1.0, done / total)
        if self._live:
            self._stream.write("\r" + self._line(done, total, fraction))
            self._stream.flush()
            return
        step = int(fraction * _STEPS)
        if step > self._printed_step:
            self._printed_step = step
            self._stream.write(self._line(done, total, fraction) + "\n")
            self._stream.flush()

    def finish(self) -> None:
        """Ends the bar (at 100 %, with the time taken)."""
        done, total = self._last
        self.update(total if total > done else done, max(total, done))
        if self._live:
            self._stream.write("\n")
        self._stream.flush()

    def _line(self, done: int, total: int, fraction: float) -> str:
        filled = int(fraction * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        elapsed = time.monotonic() - self._started
        return (
            f"{self._label:10} [{bar}] {fraction * 100:5.1f}%  {done:,}/{total:,}  {elapsed:.1f}s"
        )
