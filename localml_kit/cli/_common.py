"""What the commands share: argument types that validate at the edge, model-input flags,
safe output files, and terminal-safe text."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import errors

# The most threads a configuration may ask for: more than this is a typo, not a machine.
MAX_THREADS = 1024
MAX_BATCH = 1 << 20

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: Any) -> str:
    """``text`` with terminal control characters (escape sequences) shown, not obeyed.

    Example:
        >>> safe("ok\\x1b[2J")
        'ok\\\\x1b[2J'
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), str(text))


def _int(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"{what} must be between {low:,} and {high:,}, not {value}"
        )
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int(text, 1, 2**31, "the value")


def count_int(text: str) -> int:
    """An integer >= 0."""
    return _int(text, 0, 2**31, "the value")


def port_int(text: str) -> int:
    """A TCP port in [0, 65535] (0: a free one)."""
    return _int(text, 0, 65535, "the port")


def threads_int(text: str) -> int:
    """A thread count in [1, MAX_THREADS]."""
    return _int(text, 1, MAX_THREADS, "threads")


def batch_int(text: str) -> int:
    """A batch size in [1, MAX_BATCH]."""
    return _int(text, 1, MAX_BATCH, "a batch size")


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"give a positive number of seconds, not {text}")
    return value


def bounded_float(
    what: str, low: float, high: float, *, low_open: bool = False
) -> Callable[[str], float]:
    """A float parser for ``what`` in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
        above = value > low if low_open else value >= low
        if not (above and value <= high):
            opening = "(" if low_open else "["
            raise argparse.ArgumentTypeError(
                f"{what} must be in {opening}{low:g}, {high:g}], not {text}"
            )
        return value

    return parse


non_negative_float = bounded_float("the value", 0.0, 1e12)


def int_list(item: Callable[[str], int]) -> Callable[[str], list[int]]:
    """``"1,2,4"`` -> ``[1, 2, 4]``, each checked by ``item``."""

    def parse(text: str) -> list[int]:
        values = [item(v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        return values

    return parse


def str_list(text: str) -> list[str]:
    """``"cpu, openvino"`` -> ``["cpu", "openvino"]`` (duplicates dropped)."""
    return list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))


def pairs(text: str) -> dict[str, str]:
    """``"a=1,b=2"`` -> ``{"a": "1", "b": "2"}``."""
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{part!r}: use NAME=VALUE, separated by commas")
        out[key.strip()] = value.strip()
    return out


def dims(text: str) -> dict[str, int]:
    """``"seq=128,x[2]=48"`` -> ``{"seq": 128, "x[2]": 48}``, each a positive integer."""
    out = {}
    for key, value in pairs(text).items():
        try:
            number = int(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"dim {key!r}: {value!r} is not an integer") from exc
        if not 1 <= number <= MAX_BATCH:
            raise argparse.ArgumentTypeError(
                f"dim {key!r}: {number} is out of range (1 to {MAX_BATCH:,})"
            )
        out[key] = number
    return out


def add_input_flags(parser: argparse.ArgumentParser, *, batch_help: str, many: bool) -> None:
    """``--batch``, ``--dims``, ``--vocab-size``: how the kit makes inputs for any model."""
    if many:
        parser.add_argument(
            "--batch", type=int_list(batch_int), default=[], metavar="N[,N...]", help=batch_help
        )
    else:
        parser.add_argument("--batch", type=batch_int, default=None, metavar="N", help=batch_help)
    parser.add_argument(
        "--dims",
        type=dims,
        default={},
        metavar="NAME=N,...",
        help="symbolic dims by name or position, e.g. seq=64 or x[2]=48 (default: 128 for "
        "sequence-like dims, 224 for image sides)",
    )
    parser.add_argument(
        "--vocab-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="token ids are drawn in [0, N) when the model shows no range",
    )


def read_npz(path: str | None) -> dict[str, np.ndarray] | None:
    """The arrays of an ``--inputs`` file (None when not given)."""
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise errors.InputError(
            f"cannot read inputs from {path} ({exc}); give an .npz written by numpy.savez "
            "with one array per model input."
        ) from exc


def check_writable(path: str | os.PathLike[str] | None, flag: str) -> Path | None:
    """Fail before a long run when ``path`` (a file to write) cannot be written."""
    if path is None:
        return None
    target = Path(path).expanduser()
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise errors.ConfigError(f"{flag} {path}: that is a folder; give a file name.")
    if not folder.is_dir():
        raise errors.ConfigError(
            f"{flag} {path}: the folder {folder} does not exist; create it or choose another."
        )
    if not os.access(folder, os.W_OK):
        raise errors.ConfigError(f"{flag} {path}: the folder {folder} is not writable.")
    return target


def write_text(path: Path, text: str, flag: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename; on failure keep it.

    A failed write never loses a finished result: the text goes to a temporary
    file instead, and the error says where.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return path
    except OSError as exc:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
        fd, kept = tempfile.mkstemp(prefix="localml-result-", suffix=path.suffix or ".json")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        raise errors.ConfigError(
            f"{flag} {path}: cannot write it ({exc.strerror or exc}); the result is kept in {kept}."
        ) from exc


def dump_json(data: Any) -> str:
    """JSON text for results (numpy values and paths as plain values)."""
    return json.dumps(data, indent=2, default=str)
