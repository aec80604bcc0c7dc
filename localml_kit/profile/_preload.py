"""Dask preload for the kit's own local workers: each worker process dies with its parent.

``profile.local_cluster`` starts its workers with ``preload=[this module]``; Dask
calls :func:`dask_setup` in each worker process as it starts, and the worker asks
the kernel (Linux ``PR_SET_PDEATHSIG``) for SIGKILL when the process that started
it goes, so a killed notebook kernel leaves no worker behind (Dask's worker processes
also watch their parent; this makes it the kernel's job, at once).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by Dask in each worker process at start."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
