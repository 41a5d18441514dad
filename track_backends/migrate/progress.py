"""Showing a migration's progress: plain lines for logs and pipes, tqdm bars for terminals."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called after each page; labels are a collection name (or
``"blobs"``, called after each blob), or ``"verify <collection>"`` during verification."""


class LineProgress:
    """Progress as plain lines (``trials: 1500/10000``) for logs and pipes.

    A line is written when a label starts, when it completes, and otherwise at most once per
    ``interval`` seconds.

    Args:
        stream: Where to write (default: ``sys.stderr`` at the time of each line).
        interval: Seconds between two lines of the same label.
    """

    def __init__(self, stream: IO[str] | None = None, interval: float = 1.0) -> None:
        self.stream = stream
        self.interval = interval
        self._label: str | None = None
        self._last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if label == self._label and done < total and now - self._last < self.interval:
            return
        self._label, self._last = label, now
        stream = self.stream or sys.stderr
        print(f"{label}: {done}/{total}", file=stream, flush=True)

    def close(self) -> None:
        """Nothing to release (for symmetry with :class:`BarProgress`)."""


class BarProgress:
    """Progress as one tqdm bar per label, for terminals.

    Args:
        stream: Where to draw (default: ``sys.stderr``).
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._label: str | None = None
        self._bar: Any = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self._label:
            self.close()
            from tqdm import tqdm

            self._label = label
            unit = "blob" if label.endswith("blobs") else "doc"
            self._bar = tqdm(total=total, desc=label, unit=unit, file=self.stream or sys.stderr, leave=True)
        bar = self._bar
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        """Close the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._label = None


def make_progress(stream: IO[str] | None = None) -> LineProgress | BarProgress:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, plain lines otherwise.

    Args:
        stream: Where progress goes.

    Returns:
        A progress callback with a ``close()`` method.
    """
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return BarProgress(stream) if isatty is not None and isatty() else LineProgress(stream)
