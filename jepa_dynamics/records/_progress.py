"""Progress on stderr: a live tqdm bar on a terminal, plain lines elsewhere.

A command's long loops report through :func:`progress_bar`.  With ``enabled=None`` (no
``--progress`` / ``--no-progress``) a terminal gets the live bar; stderr that is not a terminal (a
log file, a pipe, a batch job) gets one plain line at most every :data:`INTERVAL_S` seconds
(``sweep (ode): 1200/5000 row (24%), 12 s, about 38 s left``), so a long run is never silent
there and a short one prints nothing.  ``enabled=True`` forces the bar, ``enabled=False``
prints nothing at all.  What a command writes to its files never depends on it.
"""

from __future__ import annotations

import sys
import time

__all__ = ["INTERVAL_S", "ProgressLines", "progress_bar"]

INTERVAL_S = 10.0  # seconds between two plain progress lines (tqdm's mininterval on a terminal is 0.1 s)


def _seconds(s: float) -> str:
    s = int(round(s))
    return f"{s} s" if s < 120 else (f"{s // 60} min {s % 60:02d} s" if s < 7200 else f"{s // 3600} h {s // 60 % 60:02d} min")


class ProgressLines:
    """The same calls as a tqdm bar (``update``, ``close``, ``set_postfix_str``, ``n``), printing a
    plain line to stderr when :data:`INTERVAL_S` seconds have passed since the last one."""

    def __init__(self, total: int, *, desc: str, unit: str, initial: int = 0):
        self.total, self.desc, self.unit, self.n = int(total), desc, unit, int(initial)
        self._last_n, self._postfix, self._printed, self._closed = self.n, "", False, False
        self._start = self._last = time.monotonic()

    def update(self, k: int = 1) -> None:
        self.n += int(k)
        now = time.monotonic()
        if now - self._last >= INTERVAL_S and self.n < self.total:  # the last line is close's
            self._line(now)

    def set_postfix_str(self, text: str) -> None:
        self._postfix = str(text)

    def _line(self, now: float, done: bool = False) -> None:
        # the time left at the pace since the last line (loops such as the matrix flow slow down as they go)
        moved, took = self.n - self._last_n, now - self._last
        self._last, self._last_n, self._printed = now, self.n, True
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total > 0 else ""
        text = f"{self.desc}: {self.n}/{self.total} {self.unit}{share}, {_seconds(now - self._start)}"
        if not done and 0 < moved and self.n < self.total:
            text += f", about {_seconds(took / moved * (self.total - self.n))} left"
        if self._postfix:
            text += f" [{self._postfix}]"
        print(text + (" (done)" if done else ""), file=sys.stderr, flush=True)

    def close(self) -> None:
        """A last line, if the loop ran for :data:`INTERVAL_S` or longer (a short one stays silent)."""
        now = time.monotonic()
        if not self._closed and (self._printed or now - self._start >= INTERVAL_S):
            self._line(now, done=self.n >= self.total)
        self._closed = True


def progress_bar(total: int, *, desc: str, unit: str, enabled=None, initial: int = 0, leave: bool = True):
    """The package's progress report on stderr: with ``enabled=None`` a tqdm bar when stderr is a
    terminal, else :class:`ProgressLines`; ``True`` always the bar; ``False`` nothing (a bar that
    still takes ``update``/``close`` calls as no-ops)."""
    if enabled is None and not sys.stderr.isatty():
        return ProgressLines(total, desc=desc, unit=unit, initial=initial)
    from tqdm import tqdm  # not tqdm.auto: the bar is for a terminal, and auto warns in a notebook without ipywidgets

    return tqdm(total=total, initial=initial, unit=unit, desc=desc, disable=enabled is False,
                leave=leave, file=sys.stderr, dynamic_ncols=True)
