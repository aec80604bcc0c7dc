"""Prepare the engines that need a build step: ``python -m localml_kit.engines setup [--optional]``.

``make samples`` runs it: it fetches onnxruntime-web with npm (once) for the
web engine. With ``--optional``, a machine without npm gets a note and exit
code 0 (the web engine then reports itself unavailable); any other failure
(network, checksum) exits 1 with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import sys

from localml_kit import errors
from localml_kit.engines import web


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localml_kit.engines")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup", help="fetch onnxruntime-web with npm into the kit cache")
    setup.add_argument("--force", action="store_true", help="fetch and unpack again")
    setup.add_argument(
        "--optional", action="store_true", help="without npm, print a note and exit 0"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        folder = web.setup(force=args.force)
    except errors.BuildDependencyError as exc:
        if args.optional:
            print(f"note: {exc} Until then the web engine reports itself unavailable.")
            return 0
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except errors.LocalMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"onnxruntime-web {web.VERSION}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
