"""Helpers for tests that watch processes end."""

from __future__ import annotations

import time

import psutil


def gone(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` has ended (a zombie nobody reaped counts as ended) within ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
