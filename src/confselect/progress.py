"""One progress line for scripts that run for minutes (Snakemake shows job-level progress itself)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Print ``label: k/N (pct %), elapsed, ETA`` to stderr at most every ``interval_s`` seconds (and at the end)."""

    def __init__(self, label: str, total: int, interval_s: float = 10.0, stream=None):
        self.label = label
        self.total = max(int(total), 1)
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._last = -float("inf")

    def __call__(self, done: int, *_, note: str = "") -> None:
        now = time.perf_counter()
        if done < self.total and now - self._last < self.interval_s:
            return
        self._last = now
        elapsed = now - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        extra = f", {note}" if note else ""
        print(
            f"{self.label}: {done}/{self.total} ({100.0 * done / self.total:.0f} %), "
            f"{elapsed:.0f} s elapsed, ETA {eta:.0f} s{extra}",
            file=self.stream,
            flush=True,
        )
