"""Live progress on a terminal: one line per running table, redrawn in place.

Off a terminal nothing is drawn: the backup stage logs one line per chunk and
per file instead, which is what cron and Airflow logs want.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO


class LiveProgress:
    """Redraws ``table: rows, rows/s, ETA`` lines on stderr as chunks arrive."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._lines: dict[str, str] = {}
        self._drawn = 0
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}

    def update(self, result: Any) -> None:
        """Called by the backup stage after each chunk with its running BackupResult."""
        if not self.enabled:
            return
        now = time.monotonic()
        start = self._started.setdefault(result.table, now - max(result.seconds, 0.0))
        elapsed = max(now - start, 1e-6)
        rate = result.rows / elapsed
        line = f"{result.table}: {result.rows:,} rows, {rate:,.0f} rows/s"
        if result.estimated_rows and rate > 0:
            left = max(result.estimated_rows - result.rows, 0) / rate
            line += f", ETA {int(left // 60)}:{int(left % 60):02d}"
        with self._lock:
            self._lines[result.table] = line
            self._draw()

    def done(self, table: str) -> None:
        """Forget a finished table's line (its summary line is printed by the caller)."""
        if not self.enabled:
            return
        with self._lock:
            self._lines.pop(table, None)
            self._draw()

    def _draw(self) -> None:
        out = self.stream
        if self._drawn:
            out.write(f"\x1b[{self._drawn}F")  # back to the first drawn line
        for line in self._lines.values():
            out.write("\x1b[2K" + line + "\n")
        for _ in range(self._drawn - len(self._lines)):
            out.write("\x1b[2K\n")
        extra = self._drawn - len(self._lines)
        if extra > 0:
            out.write(f"\x1b[{extra}F")
        self._drawn = len(self._lines)
        out.flush()
