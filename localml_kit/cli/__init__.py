"""The ``localml-kit`` command line: the kit's jobs outside Jupyter.

One module per command (its parser and its run function); :func:`main` is the
one error boundary: any exception becomes one ``error:`` line on stderr that
says what to do (the traceback with ``--debug``), exit status 2. Output piped
into ``head`` ends quietly; SIGTERM and Ctrl-C stop the children the command
started before it exits.

Example:
    >>> import contextlib, sys
    >>> from localml_kit.cli import main
    >>> main(["samples", "path", "digits-mlp"])
    /.../samples/digits-mlp/model.onnx
    0
    >>> with contextlib.redirect_stderr(sys.stdout):  # the error line goes to stderr
    ...     main(["samples", "path", "no-such-sample"])
    error: no sample named 'no-such-sample'. Known samples: ...
    2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from types import ModuleType

from localml_kit import __version__, errors
from localml_kit.cli import (
    _compare,
    _doctor,
    _envs,
    _inspect,
    _lab,
    _notebooks,
    _optimize,
    _profile,
    _samples,
    _serve,
    _slm,
    _workshop,
    _zoo,
)

__all__ = ["COMMANDS", "main", "parse_arguments"]

COMMANDS: tuple[ModuleType, ...] = (
    _doctor,
    _samples,
    _inspect,
    _profile,
    _envs,
    _compare,
    _optimize,
    _slm,
    _zoo,
    _serve,
    _lab,
    _notebooks,
    _workshop,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises instead of exiting, so ``main`` returns its status."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(self, message)


class _UsageError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so every ``finally`` (children, temp folders) runs."""


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="localml-kit",
        description="Find, inspect, run, measure and shrink ML models on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"localml-kit {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``); ``--debug`` goes anywhere.

    Example:
        >>> parse_arguments(["inspect", "model.onnx", "--debug"]).debug
        True
    """
    try:
        return _parse(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:  # argparse's own behaviour: usage, the message, exit 2
        exc.parser.print_usage(sys.stderr)
        exc.parser.exit(2, f"{exc.parser.prog}: error: {exc}\n")


def _parse(args: list[str]) -> argparse.Namespace:
    debug = "--debug" in args
    namespace = _build_parser().parse_args([a for a in args if a != "--debug"])
    namespace.debug = debug
    return namespace


def _message(exc: BaseException) -> str:
    if isinstance(exc, errors.LocalMLError):
        return " ".join(str(exc.cli or exc).split())
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (
        f"unexpected {type(exc).__name__}: {text[:300]}. This is a bug in localml-kit or a "
        "library it uses: run again with --debug for the traceback, and report it."
    )


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's last flush is silent."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for an error, with one line on stderr).

    Example:
        >>> import contextlib
        >>> with contextlib.redirect_stderr(sys.stdout):  # the error line goes to stderr
        ...     main(["inspect", "no-such-model.onnx"])
        error: no model at 'no-such-model.onnx': ...
        2
    """
    raw = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in raw
    try:
        args = _parse(raw)
    except _UsageError as exc:  # one line, naming the flag and where the help is
        print(f"error: {exc} (see `{exc.parser.prog} --help`)", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    command = next(c for c in COMMANDS if args.command == c.NAME)
    try:
        with _sigterm_raises(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", errors.LocalMLWarning)
            status = int(command.run(args))
            sys.stdout.flush()
        for warning in caught:  # the kit's warnings become one line each; others pass through
            if issubclass(warning.category, errors.LocalMLWarning):
                print(f"warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
            else:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        return status
    except BrokenPipeError:  # e.g. `localml-kit zoo search | head`
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
