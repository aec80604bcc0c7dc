"""Child processes through ``_proc``: real children, gone after a kill, a timeout, a dead parent."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from localml_kit import _proc, errors, profile
from localml_kit.profile import Plan
from tests.conftest import REPO
from tests.procs import gone
from tests.test_profile import FAST, dense_model

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process groups and PR_SET_PDEATHSIG are Linux's"
)


def read_pid(path: Path, within: float = 5.0) -> int:
    """The pid a child wrote to ``path``, once it is there."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"no pid in {path} after {within} s")


def wait_until_running(pid: int, program: str, within: float = 5.0) -> None:
    """Wait until ``pid`` runs ``program`` (the launcher has exec'd it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if psutil.Process(pid).cmdline()[:1] == [program]:
            return
        time.sleep(0.02)
    raise AssertionError(f"{pid} did not become {program} within {within} s")


def sleeper_with_a_grandchild(pidfile: Path) -> list[str]:
    """A shell that starts a background ``sleep`` (same process group), writes its pid, waits."""
    return ["sh", "-c", f'sleep 30 & echo $! > "{pidfile}"; echo started >&2; wait']


def test_kill_ends_the_child_and_its_group(tmp_path: Path) -> None:
    proc = _proc.start(sleeper_with_a_grandchild(tmp_path / "pid"), what="a sleeper")
    grandchild = read_pid(tmp_path / "pid")
    assert proc.args[:2] == ["sh", "-c"]  # the program, not the launcher
    assert _proc.kill(proc) == -signal.SIGKILL
    assert gone(proc.pid) and gone(grandchild)


def test_run_timeout_kills_the_group_and_says_what_ran(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(errors.ChildTimeoutError, match="a sleeper ran past its limit of 1 s"):
        _proc.run(sleeper_with_a_grandchild(tmp_path / "pid"), what="a sleeper", timeout=1)
    assert time.monotonic() - started < 5
    assert gone(read_pid(tmp_path / "pid"))
    with pytest.raises(TimeoutError, match="its last output: started"):
        _proc.run(["sh", "-c", "echo started >&2; sleep 30"], what="a sleeper", timeout=0.5)


def test_child_dies_with_a_sigkilled_parent() -> None:
    code = (
        "import time\n"
        "from localml_kit import _proc\n"
        "proc = _proc.start(['sleep', '30'], what='a sleeper')\n"
        "print(proc.pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        wait_until_running(child, "sleep")
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        assert gone(child), "the child outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()
        if child is not None and not gone(child, within=0):
            os.kill(child, signal.SIGKILL)


def test_child_outlives_the_thread_that_started_it() -> None:
    # The kernel sends PR_SET_PDEATHSIG when the forking *thread* ends: _proc forks for threads
    # from one long-lived thread, so a child started in a short-lived thread lives on.
    started: list[subprocess.Popen] = []

    def starter() -> None:
        started.append(_proc.start(["sleep", "30"], what="a sleeper"))
        wait_until_running(started[0].pid, "sleep")

    thread = threading.Thread(target=starter)
    thread.start()
    thread.join()
    (proc,) = started
    try:
        time.sleep(0.3)
        assert proc.poll() is None, "the child died with the thread that started it"
    finally:
        _proc.kill(proc)
    assert gone(proc.pid)


def test_failures_name_the_job_and_carry_the_stderr_tail() -> None:
    with pytest.raises(errors.ChildProcessFailedError, match=r"a job failed \(exit code 3\): oops"):
        _proc.run(["sh", "-c", "echo oops >&2; exit 3"], what="a job")
    with pytest.raises(errors.ChildProcessFailedError, match="a job was killed by SIGTERM"):
        _proc.run(["sh", "-c", "kill -TERM $$"], what="a job")
    with pytest.raises(errors.ChildProcessFailedError, match="no program 'no-such-program-x'"):
        _proc.run(["no-such-program-x"], what="a job")
    done = _proc.run(["sh", "-c", "exit 4"], what="a job", check=False)
    assert done.returncode == 4 and done.args == ["sh", "-c", "exit 4"]


def test_children_do_not_inherit_pythons_ignored_sigpipe() -> None:
    status = _proc.run(["sh", "-c", "grep SigIgn /proc/self/status"], what="a shell").stdout
    ignored = int(status.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))


# --- profile.run interrupted ---------------------------------------------------------------


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _interrupt_once_a_worker_runs(seen: list[int]) -> None:
    """Ctrl-C for the main thread, once a profiling worker has started (within 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for child in psutil.Process(os.getpid()).children(recursive=True):
            try:
                if any("_worker.py" in part for part in child.cmdline()):
                    seen.append(child.pid)
                    time.sleep(0.3)
                    _thread.interrupt_main()
                    return
            except psutil.Error:
                continue
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["stop", "ctrl-c", "on_result"])
def test_interrupted_profile_run_leaves_no_worker_and_no_folder(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    model = dense_model(tmp_path / "dense.onnx")
    long = {**FAST, "min_seconds": 60.0, "timeout_s": 30.0}
    plan = Plan(model, threads=[1], batches=[1, 2], **(FAST if how == "on_result" else long))
    before = _children()
    seen: list[int] = []
    if how == "stop":
        stop = threading.Event()
        timer = threading.Timer(1.0, stop.set)
        timer.start()
        try:
            table = profile.run(plan, progress=False, stop=stop).table
        finally:
            timer.cancel()
        assert list(table["status"]) == ["stopped", "stopped"]
    elif how == "ctrl-c":
        watcher = threading.Thread(target=_interrupt_once_a_worker_runs, args=(seen,))
        watcher.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                profile.run(plan, progress=False)
        finally:
            watcher.join()
        assert seen and gone(seen[0], within=0)
    else:

        def interrupt(row: dict, done: int, total: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            profile.run(plan, progress=False, on_result=interrupt)
    assert _children() <= before
    assert not list(temp.glob("localml-profile-*"))
