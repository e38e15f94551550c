"""A minimal text progress bar for long command-line runs (no dependency beyond the standard library).

It draws one line on a stream (stderr by default) and redraws it in place with a carriage return::

    evaluate  12/40 [#########-----------------------]  30%  0:07 elapsed, 0:16 left

The bar is only drawn when the stream is an interactive terminal, so logs, pipes and CI output never
receive carriage-return noise; pass ``enabled=False`` to silence it on a terminal too (``--quiet``).
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def _clock(seconds: float) -> str:
    """``seconds`` as ``m:ss`` (or ``h:mm:ss`` from one hour on)."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Progress of ``total`` steps, drawn as a single self-overwriting line.

    Use as a context manager (the line is finished on exit) or call :meth:`close` yourself::

        with Progress(len(pairs), "evaluate") as bar:
            for pair in pairs:
                ...
                bar.update()

    Args:
        total: number of steps (>= 0).
        desc: short text printed before the counter.
        stream: where to draw; default ``sys.stderr`` (looked up at construction, so tests can swap it).
        enabled: None draws only when ``stream.isatty()`` is true; False never draws; True always draws
            (for tests, or a caller that knows better).
        width: number of characters of the bar itself.
        min_interval: seconds between redraws, so a fast loop does not flood the terminal; the first
            and the last step are always drawn.
    """

    def __init__(
        self,
        total: int,
        desc: str = "",
        stream: Optional[TextIO] = None,
        enabled: Optional[bool] = None,
        width: int = 30,
        min_interval: float = 0.1,
    ):
        total = int(total)
        if total < 0:
            raise ValueError(f"Progress: total must be >= 0, got {total}")
        self.total = total
        self.desc = desc
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty()) if callable(isatty) else False
        self.enabled = bool(enabled)
        self.width = int(width)
        self.min_interval = float(min_interval)
        self.count = 0
        self._start = time.monotonic()
        self._last_draw = None  # monotonic time of the last draw; None: nothing drawn yet
        self._line_len = 0  # characters currently on the line, to blank it fully when clearing
        self._drawn_count = None  # the count shown by the last draw
        self._closed = False

    # ------------------------------------------------------------------ drawing
    def render(self) -> str:
        """The text of the bar for the current count (without the leading carriage return)."""
        frac = self.count / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        elapsed = time.monotonic() - self._start
        text = f"{self.desc + ' ' if self.desc else ''}{self.count}/{self.total} "
        text += f"[{'#' * filled}{'-' * (self.width - filled)}] {100 * frac:3.0f}%  {_clock(elapsed)} elapsed"
        if 0 < self.count < self.total:
            # linear extrapolation from the steps done so far
            text += f", {_clock(elapsed * (self.total - self.count) / self.count)} left"
        return text

    def _draw(self) -> None:
        text = self.render()
        # pad with spaces so a shorter line fully covers the previous, longer one
        pad = max(self._line_len - len(text), 0)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._line_len = len(text)
        self._last_draw = time.monotonic()
        self._drawn_count = self.count

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps and redraw if enough time has passed (always on the first and last)."""
        self.count = min(self.count + int(n), self.total) if self.total else self.count + int(n)
        if not self.enabled or self._closed:
            return
        now = time.monotonic()
        due = self._last_draw is None or now - self._last_draw >= self.min_interval
        if due or self.count >= self.total:
            self._draw()

    def clear(self) -> None:
        """Blank the current line so a message (a warning) can be printed; the next update redraws it."""
        if self.enabled and self._line_len:
            self.stream.write("\r" + " " * self._line_len + "\r")
            self.stream.flush()
            self._line_len = 0
            self._drawn_count = None
            self._last_draw = None  # redraw at the next update whatever the interval

    def close(self) -> None:
        """Draw the final state and end the line (once; further calls do nothing)."""
        if self._closed:
            return
        if self.enabled:
            if self._drawn_count != self.count or not self._line_len:
                self._draw()  # the last update may have been skipped by min_interval, or cleared
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["Progress"]
