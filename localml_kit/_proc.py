"""Child processes, one way: every process the kit starts goes through here.

Each child runs in its own process group (so killing it also kills what it
started), asks the kernel to be killed when the kit's process dies (Linux
``PR_SET_PDEATHSIG``, set by a tiny launcher before the real program runs, so
even a SIGKILLed kernel leaves nothing behind), is killed on timeout, and is
killed at interpreter exit if still running. A failure becomes a kit error that
says what was running and carries the tail of its stderr.

Example:
    >>> from localml_kit import _proc
    >>> _proc.run(["python3", "-c", "print('hi')"], what="a greeting").stdout.strip()
    'hi'
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from localml_kit import errors

__all__ = ["kill", "run", "start", "tail"]

# The launcher: die with the parent (PR_SET_PDEATHSIG = 1), check the parent is still the one
# that started us (it may have died before prctl ran), then become the real program.
_LAUNCHER = (
    "import ctypes,os,signal,sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except Exception:\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)

# The children alive right now: killed at exit. The one piece of module state the kit keeps,
# because a process's children are process-wide.
_LIVE: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()
_LOCK = threading.Lock()


def _argv(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    args = [os.fspath(a) for a in argv]
    if sys.platform.startswith("linux"):
        return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *args]
    return args


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

    Example:
        >>> proc = start(["sleep", "30"], what="a sleeper")
        >>> kill(proc)
        -9
    """
    try:
        proc = subprocess.Popen(
            _argv(argv),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            text=text,
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        raise errors.ChildProcessFailedError(
            f"could not start {what} ({Path(os.fspath(argv[0])).name}): {exc}"
        ) from exc
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
            where = "" if log is None else f" (its output is in {log})"
            raise errors.ChildTimeoutError(
                f"{what} ran past its limit of {timeout:g} s and was stopped{where}."
            ) from exc
        except BaseException:
            kill(proc)
            raise
    with _LOCK:
        _LIVE.discard(proc)
    code = proc.returncode
    if check and code != 0:
        if code < 0 and -code in signal.Signals._value2member_map_:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"failed (exit code {code})"
        if log is not None:
            raise errors.ChildProcessFailedError(
                f"{what} {how}: {tail(_end_of(Path(log))) or 'no output'}; "
                f"the full log is in {log}."
            )
        raise errors.ChildProcessFailedError(
            f"{what} {how}: {tail(err) or tail(out) or 'no output'}"
        )
    return subprocess.CompletedProcess(proc.args, code, out, err)


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
