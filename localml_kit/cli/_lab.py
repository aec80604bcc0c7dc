"""``localml-kit lab [DIR]``: copy the series into a folder (default ./localml-notebooks), open JupyterLab.

JupyterLab runs as a child of this command (it dies with it); options after
``--`` go to JupyterLab as they are (``localml-kit lab -- --no-browser --port 8899``).
"""

from __future__ import annotations

import argparse
import sys

from localml_kit.cli._common import safe
from localml_kit.cli._notebooks import report

NAME = "lab"
DEFAULT_FOLDER = "localml-notebooks"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help="copy the notebook series into a folder and open JupyterLab there"
    )
    parser.add_argument(
        "folder",
        nargs="?",
        default=DEFAULT_FOLDER,
        metavar="DIR",
        help=f"default ./{DEFAULT_FOLDER}",
    )
    parser.add_argument(
        "lab_args", nargs=argparse.REMAINDER, metavar="-- LAB_OPTION", help="passed to JupyterLab"
    )


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from localml_kit import _proc, errors, workshop

    folder, extra = args.folder, list(args.lab_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    if folder.startswith("-"):  # `lab -- --no-browser`: no folder given, only options
        folder, extra = DEFAULT_FOLDER, [folder, *extra]
    if importlib.util.find_spec("jupyterlab") is None:
        raise errors.OptionalDependencyError(
            "JupyterLab is not installed: pip install 'localml-kit[notebooks]' "
            "(or `localml-kit notebooks DIR` only copies the series)"
        )
    copied = workshop.copy_series(folder)
    report(copied)
    first = sorted(p.name for p in copied.folder.glob("00_*.ipynb"))
    print(
        f"starting JupyterLab in {safe(copied.folder)}"
        + (f"; open {first[0]} first" if first else ""),
        flush=True,
    )
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={copied.folder}", *extra]
    proc = _proc.start(cmd, what="JupyterLab")
    try:
        return int(proc.wait())
    finally:
        _proc.kill(proc, grace_s=5)
