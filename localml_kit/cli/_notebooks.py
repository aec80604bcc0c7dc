"""``localml-kit notebooks DIR``: copy the notebook series that ships with the kit into a folder."""

from __future__ import annotations

import argparse

from localml_kit.cli._common import safe

NAME = "notebooks"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="copy the notebook series into a folder (edits are kept)")
    parser.add_argument("folder", metavar="DIR")


def report(copied: object) -> None:
    """One line on what a copy did, and one per edited notebook it left alone."""
    from localml_kit.workshop import Copied

    assert isinstance(copied, Copied)
    same = f", {len(copied.current)} already up to date" if copied.current else ""
    print(f"{safe(copied.folder)}: {len(copied.written)} notebooks copied{same}")
    for name in copied.kept:
        print(f"  kept your edited {safe(name)} (delete it to get the kit's copy back)")


def run(args: argparse.Namespace) -> int:
    from localml_kit import workshop

    report(workshop.copy_series(args.folder))
    return 0
