"""This process's peak resident memory, sampled in a thread while something runs."""

from __future__ import annotations

import threading

import psutil


class PeakRSS:
    """Samples this process's RSS every ``interval_s`` seconds; ``peak`` holds the largest, bytes.

    Example:
        >>> with PeakRSS() as rss:
        ...     block = bytearray(1 << 20)
        >>> rss.peak > 0
        True
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self._proc = psutil.Process()
        self._interval = interval_s
        self.peak = self._proc.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
