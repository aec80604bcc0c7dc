"""Children die with their parent: the real ``localml-kit profile`` stopped by SIGINT, SIGTERM
or SIGKILL, and a Jupyter kernel restarted during ``profile.run``, leave no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.cli_cases import make_files

LONG = ["--threads", "1", "--warmup", "0", "--min-iterations", "1", "--min-seconds", "600"]


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for_worker(pid: int, timeout: float = 60.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in _descendants(pid) if _cmdline_has(p, "_worker.py")]
        if found:
            time.sleep(0.5)  # past the launcher: the worker itself runs
            return _descendants(pid)
        time.sleep(0.1)
    raise AssertionError("no profiling worker started")


def _cmdline_has(proc: psutil.Process, text: str) -> bool:
    try:
        return any(text in part for part in proc.cmdline())
    except psutil.Error:
        return False


def _all_gone(procs: list[psutil.Process], timeout: float = 15.0) -> float:
    started = time.monotonic()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    assert not alive, f"left running: {[(p.pid, p.cmdline()) for p in alive]}"
    return time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_cli_leaves_no_worker(sig: int, tmp_path: Path) -> None:
    model = make_files(tmp_path)["model"]
    env = dict(os.environ, TMPDIR=str(tmp_path))
    cli = subprocess.Popen(
        [sys.executable, "-m", "localml_kit.cli", "profile", str(model), *LONG, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        children = _wait_for_worker(cli.pid)
        cli.send_signal(sig)
        cli.wait(timeout=30)
        _all_gone(children)
        if sig != signal.SIGKILL:  # a killed parent cannot clean up; the others do
            assert not list(tmp_path.glob("localml-profile-*"))
            assert cli.returncode in (130, 143), cli.stderr.read() if cli.stderr else ""
    finally:
        if cli.poll() is None:
            cli.kill()


def test_a_kernel_restart_during_profile_run_leaves_no_worker(tmp_path: Path) -> None:
    jupyter_client = pytest.importorskip("jupyter_client")
    model = make_files(tmp_path)["model"]
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env=dict(os.environ))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute(
            "from localml_kit import profile\n"
            f"profile.run(profile.Plan({str(model)!r}, threads=[1], warmup=0, "
            "min_iterations=1, min_seconds=600), progress=False)\n"
        )
        kernel_pid = km.provisioner.process.pid
        children = _wait_for_worker(kernel_pid)
        km.restart_kernel(now=True)  # the kernel is killed and started again
        _all_gone(children)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
