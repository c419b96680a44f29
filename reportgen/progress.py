"""Progress lines on stderr with an estimate of the time left; silent when quiet."""

from __future__ import annotations

import sys
import time


LOG_INTERVAL = 5.0   # seconds between progress lines when stderr is not a terminal


class Progress:
    """Counts units of network work (one forward + backward of one image through one model;
    SmoothGrad's and IG's copies and the faithfulness forwards count as their share) and
    prints a line per step with the share done: on a terminal the line is rewritten in
    place, in a log a new line is written."""

    def __init__(self, total_units: float, quiet: bool = False, stream=None, log=None):
        self.total = max(1, total_units)
        self.done = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.log = log            # a RunLog: gets messages and warnings, not every step
        self.started = time.monotonic()
        self._inline = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_line = -float("inf")

    def message(self, text: str) -> None:
        if self.log:
            self.log.line(text)
        if not self.quiet:
            self._end_inline()
            print(text, file=self.stream, flush=True)

    def warn(self, text: str) -> None:
        """Printed even when quiet: a cron job's log must say what was skipped and why."""
        if self.log:
            self.log.line(text)
        self._end_inline()
        print(text, file=self.stream, flush=True)

    def advance(self, units: float, label: str) -> None:
        self.done = min(self.total, self.done + units)
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        line = (f"[{100 * self.done / self.total:3.0f} %] {label} "
                f"({elapsed:.0f} s elapsed, ~{left:.0f} s left)")
        if self._inline:
            print("\r\033[K" + line, end="", file=self.stream, flush=True)
        elif self.done >= self.total or time.monotonic() - self._last_line >= LOG_INTERVAL:
            # Not a terminal (a cron log): a line every LOG_INTERVAL seconds at most, or
            # SmoothGrad's and IG's chunks would write thousands.
            self._last_line = time.monotonic()
            print(line, file=self.stream, flush=True)

    def _end_inline(self) -> None:
        if self._inline and self.done and not self.quiet:
            print(file=self.stream, flush=True)
