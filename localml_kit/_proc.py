"""Child processes, one way: every process the kit starts goes through here.

Each child runs in its own process group (so killing it also kills what it
started), asks the kernel to be killed when the kit's process dies (Linux
``PR_SET_PDEATHSIG``, set by a tiny launcher before the real program runs, so
even a SIGKILLed kernel leaves nothing behind), is killed on timeout, and is
killed at interpreter exit if still running. A failure becomes a kit error that
says what was running and carries the tail of its stderr.

The kernel sends that signal when the *thread* that forked the child ends, not
the process, so children asked for from any thread but the main one are forked
by one long-lived thread of this module: a child started from a short-lived
thread (a widget callback, a pool worker) outlives that thread.

Example:
    >>> from localml_kit import _proc
    >>> _proc.run(["python3", "-c", "print('hi')"], what="a greeting").stdout.strip()
    'hi'
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from localml_kit import errors

__all__ = ["kill", "run", "start", "tail"]

_LINUX = sys.platform.startswith("linux")

# The launcher: give back the signals Python ignores (an ignored SIGPIPE or SIGXFSZ would
# survive the exec), die with the parent (PR_SET_PDEATHSIG = 1), check the parent is still
# the one that started us (it may have died before prctl ran), then become the real program.
_LAUNCHER = (
    "import ctypes,os,signal,sys\n"
    "for name in ('SIGPIPE', 'SIGXFSZ'):\n"
    "    signal.signal(getattr(signal, name), signal.SIG_DFL)\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except Exception:\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(137)\n"
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'could not start {sys.argv[2]}: {exc.strerror or exc}\\n')\n"
    "    os._exit(127)\n"
)

# The children alive right now (killed at exit) and the thread that forks children for other
# threads: the module state the kit keeps, because a process's children are process-wide.
_LIVE: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()
_LOCK = threading.Lock()
_SPAWNER: dict[int, queue.SimpleQueue] = {}  # pid -> the spawner's queue (a fork starts anew)


def _argv(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    args = [os.fspath(a) for a in argv]
    if _LINUX and sys.executable:
        return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *args]
    return args


def _missing(
    program: str, env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None
) -> str | None:
    """Why ``program`` cannot be run (not found, not executable), or None when it can."""
    if os.path.dirname(program):
        path = Path(cwd or ".", program)
        if path.is_file() and os.access(path, os.X_OK):
            return None
        return f"{program} is not an executable file" if path.exists() else f"no file {program}"
    search = None if env is None else env.get("PATH", os.defpath)
    if shutil.which(program, path=search):
        return None
    return f"no program {program!r} on PATH"


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        make, future = jobs.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(make())
            except BaseException as exc:
                future.set_exception(exc)


def _kill_late(future: Future) -> None:
    """A child whose caller stopped waiting (Ctrl-C) while it was being started: kill it."""
    if not future.cancelled() and future.exception() is None:
        kill(future.result())


def _fork(make: Callable[[], subprocess.Popen]) -> subprocess.Popen:
    """``make()`` here on the main thread, else on the spawner thread (see the module doc)."""
    if not _LINUX or threading.current_thread() is threading.main_thread():
        return make()
    future: Future[subprocess.Popen] = Future()
    with _LOCK:
        jobs = _SPAWNER.get(os.getpid())
        if jobs is None:
            _SPAWNER.clear()
            jobs = _SPAWNER[os.getpid()] = queue.SimpleQueue()
            threading.Thread(
                target=_serve, args=(jobs,), name="localml-kit-spawner", daemon=True
            ).start()
        jobs.put((make, future))
    try:
        return future.result()
    except BaseException:
        future.add_done_callback(_kill_late)
        raise


def tail(text: str | bytes | None, lines: int = 3, limit: int = 400) -> str:
    """The last non-empty ``lines`` of ``text``, joined by `` | ``, at most ``limit`` characters.

    Example:
        >>> tail("a\\n\\nb\\nc\\nd\\n", lines=2)
        'c | d'
    """
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [ln.strip() for ln in (text or "").splitlines() if ln.strip()][-lines:]
    out = " | ".join(kept)
    return out if len(out) <= limit else "..." + out[-(limit - 3) :]


def start(
    argv: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: Any = subprocess.DEVNULL,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    text: bool = False,
) -> subprocess.Popen:
    """Start a child that dies with this process; stop it with :func:`kill`.

    A program that is not there (or not executable) raises
    :class:`~localml_kit.errors.ChildProcessFailedError` at once, naming it.

    Example:
        >>> proc = start(["sleep", "30"], what="a sleeper")
        >>> kill(proc)
        -9
    """
    args = _argv(argv)
    program = os.fspath(argv[0])
    why = _missing(program, env, cwd)
    if why:
        raise errors.ChildProcessFailedError(
            f"could not start {what}: {why}. Install it, or pass its full path."
        )

    def make() -> subprocess.Popen:
        return subprocess.Popen(
            args,
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            text=text,
            errors="replace" if text else None,
            start_new_session=os.name == "posix",
        )

    try:
        proc = _fork(make)
    except OSError as exc:
        raise errors.ChildProcessFailedError(
            f"could not start {what} ({Path(program).name}): {exc}"
        ) from exc
    proc.args = [os.fspath(a) for a in argv]  # the program, not the launcher, in reprs and errors
    with _LOCK:
        _LIVE.add(proc)
    return proc


def kill(proc: subprocess.Popen, *, grace_s: float = 0.0) -> int | None:
    """Kill a child and its process group (after ``grace_s`` seconds of SIGTERM); its exit code."""
    if proc.poll() is None and grace_s > 0:
        _signal(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    _signal(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with _LOCK:
        _LIVE.discard(proc)
    return proc.returncode


def _signal(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.name == "posix":
            os.killpg(proc.pid, sig)  # the group: the child and whatever it started
        elif proc.poll() is None:
            proc.kill()


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    check: bool = True,
    capture: bool = True,
    log: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess:
    """Run a child to the end (text output captured); kit errors for a failure or a timeout.

    ``what`` names the job in errors ("the OpenVINO environment's pip"). A
    non-zero exit raises :class:`~localml_kit.errors.ChildProcessFailedError`
    with the tail of stderr (``check=False`` returns it instead); running past
    ``timeout`` seconds kills the child's process group and raises
    :class:`~localml_kit.errors.ChildTimeoutError`. Ctrl-C kills the child too.
    ``log`` (a file) receives the child's stdout and stderr, appended, instead of
    capturing them; a failure then quotes the log's tail and names the file.

    Example:
        >>> run(["python3", "-c", "import sys; sys.exit(3)"], what="a failing job")
        Traceback (most recent call last):
        localml_kit.errors.ChildProcessFailedError: a failing job failed (exit code 3): no output
    """
    pipe = subprocess.PIPE if capture else None
    with contextlib.ExitStack() as stack:
        handle = None if log is None else stack.enter_context(Path(log).open("ab"))
        proc = start(
            argv,
            what=what,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=pipe if handle is None else handle,
            stderr=pipe if handle is None else subprocess.STDOUT,
            text=True,
        )
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill(proc)
            out, err = _leftover(proc)
            said = tail(err) or tail(out) or (tail(_end_of(Path(log))) if log else "")
            where = "" if log is None else f"; its output is in {log}"
            raise errors.ChildTimeoutError(
                f"{what} ran past its limit of {timeout:g} s and was stopped"
                + (f"; its last output: {said}" if said else " (it printed nothing)")
                + where
            ) from exc
        except BaseException:
            kill(proc)
            _leftover(proc, wait_s=0.2)
            raise
    with _LOCK:
        _LIVE.discard(proc)
    code = proc.returncode
    if check and code != 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else ""
        except ValueError:
            how = ""
        how = how or f"failed (exit code {code})"
        if log is not None:
            raise errors.ChildProcessFailedError(
                f"{what} {how}: {tail(_end_of(Path(log))) or 'no output'}; "
                f"the full log is in {log}."
            )
        raise errors.ChildProcessFailedError(
            f"{what} {how}: {tail(err) or tail(out) or 'no output'}"
        )
    return subprocess.CompletedProcess(proc.args, code, out, err)


def _leftover(proc: subprocess.Popen, wait_s: float = 2.0) -> tuple[str | None, str | None]:
    """What a killed child had printed (its pipes closed after), or Nones when it cannot say."""
    try:
        return proc.communicate(timeout=wait_s)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        return None, None


def _end_of(path: Path, size: int = 1 << 16) -> bytes:
    """The last ``size`` bytes of a file (empty when it cannot be read)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - size))
            return fh.read()
    except OSError:
        return b""


@atexit.register
def _kill_all() -> None:
    with _LOCK:
        live = list(_LIVE)
    for proc in live:
        if proc.poll() is None:
            kill(proc)
