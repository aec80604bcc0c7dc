"""The notebook series: where it is (inside the installed package, or the source tree), and copies.

A wheel carries the notebooks in ``localml_kit/_notebooks/`` (and the data files
they read in ``localml_kit/_data/``); a source checkout has them in ``notebooks/``.
:func:`copy_to` copies the series into a folder of the user's without ever
overwriting an edit: a file is written only when it is missing or still exactly
the copy made last time (``.localml-series.json`` records those digests).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from localml_kit import _download, errors

_PACKAGE = Path(__file__).resolve().parent.parent
RECORD = ".localml-series.json"


def folder() -> Path:
    """The folder holding the series: the package's own copy, else the source tree's ``notebooks/``.

    Example:
        >>> sorted(p.name for p in folder().glob("0*.ipynb"))[0]
        '00_setup_and_hardware.ipynb'
    """
    for candidate in (_PACKAGE / "_notebooks", _PACKAGE.parent / "notebooks"):
        if any(candidate.glob("[0-9][0-9]_*.ipynb")):
            return candidate
    raise errors.SampleNotReadyError(
        f"the notebook series is not in this installation (looked in {_PACKAGE / '_notebooks'} "
        f"and {_PACKAGE.parent / 'notebooks'}): reinstall localml-kit from a wheel or a checkout."
    )


def notebooks(source: str | os.PathLike[str] | None = None) -> list[Path]:
    """The series' notebooks (``NN_name.ipynb``) in learning order, from ``source`` or :func:`folder`.

    Example:
        >>> [p.stem[:2] for p in notebooks()][:3]
        ['00', '01', '02']
    """
    where = folder() if source is None else Path(source).expanduser().resolve()
    found = sorted(p for p in where.glob("*.ipynb") if re.match(r"\d\d_", p.name))
    if not found:
        raise errors.InputError(
            f"no notebooks named NN_name.ipynb in {where}: give the folder that holds the series."
        )
    return found


def select(paths: list[Path], wanted: list[str] | None) -> list[Path]:
    """The notebooks picked by number (``"04"``), stem or file name; all of them for None.

    Example:
        >>> [p.name for p in select(notebooks(), ["04", "00_setup_and_hardware"])]
        ['00_setup_and_hardware.ipynb', '04_inside_a_model.ipynb']
    """
    if not wanted:
        return list(paths)
    chosen: list[Path] = []
    for item in wanted:
        key = item.strip().removesuffix(".ipynb")
        match = [p for p in paths if p.stem == key or p.stem[:2] == key]
        if not match:
            known = ", ".join(p.stem for p in paths)
            raise errors.ConfigError(
                f"no notebook {item!r} in the series; pick by number or name from: {known}",
                cli=f"--notebooks: no notebook {item!r} in the series; pick from: {known}",
            )
        chosen.extend(m for m in match if m not in chosen)
    return sorted(chosen)


@dataclass(frozen=True)
class Copied:
    """What :func:`copy_to` did: the folder, files written, edited files it left alone, and
    files already the same as the kit's (``current``)."""

    folder: Path
    written: tuple[str, ...]
    kept: tuple[str, ...]
    current: tuple[str, ...] = ()


def copy_to(dest: str | os.PathLike[str], source: str | os.PathLike[str] | None = None) -> Copied:
    """Copy the series into ``dest`` (created if needed), never overwriting a file someone edited.

    A notebook already there is replaced only when it is still byte for byte the
    copy written last time (so a newer kit refreshes untouched notebooks); one
    that was edited, or was there before, is kept and named in ``kept``.

    Example:
        >>> first = copy_to("my-notebooks")
        >>> first.written[0], first.kept
        ('00_setup_and_hardware.ipynb', ())
        >>> with open("my-notebooks/00_setup_and_hardware.ipynb", "a") as fh:
        ...     _ = fh.write(" ")  # an edit
        >>> copy_to("my-notebooks").kept
        ('00_setup_and_hardware.ipynb',)
    """
    target = Path(dest).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise errors.ConfigError(
            f"{target} is a file, not a folder: give a folder for the notebooks."
        )
    target.mkdir(parents=True, exist_ok=True)
    record_path = target / RECORD
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    written, kept, current = [], [], []
    for path in notebooks(source):
        out = target / path.name
        new = _download.sha256_file(path)
        if out.exists():
            now = _download.sha256_file(out)
            if now == new:
                record[path.name] = new
                current.append(path.name)
                continue
            if record.get(path.name) != now:  # edited since it was copied, or not ours
                kept.append(path.name)
                continue
        tmp = out.with_name(f".{out.name}.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, out)
        record[path.name] = new
        written.append(path.name)
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True))
    return Copied(target, tuple(written), tuple(kept), tuple(current))
