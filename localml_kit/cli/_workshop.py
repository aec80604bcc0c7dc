"""``localml-kit workshop build / serve / setup``: the executed series as a folder for a workshop."""

from __future__ import annotations

import argparse
import threading

from localml_kit.cli._common import port_int, safe, seconds, str_list

NAME = "workshop"


def add_parser(sub: argparse._SubParsersAction) -> None:
    shop = sub.add_parser(NAME, help="build and serve a workshop bundle of the executed series")
    shop_sub = shop.add_subparsers(dest="workshop_command", required=True, metavar="ACTION")
    build = shop_sub.add_parser(
        "build", help="run the series; write executed notebooks, offline pages, an index, a zip"
    )
    build.add_argument("--out", default="workshop", metavar="DIR", help="default ./workshop")
    build.add_argument(
        "--notebooks", type=str_list, metavar="00,04,...", help="only these (number or name)"
    )
    build.add_argument("--source", metavar="DIR", help="another folder of NN_name.ipynb notebooks")
    build.add_argument(
        "--timeout", type=seconds, default=1200.0, metavar="S", help="per notebook (1200)"
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    serve = shop_sub.add_parser("serve", help="serve a bundle on 127.0.0.1 until Ctrl-C")
    serve.add_argument("folder", metavar="DIR")
    serve.add_argument("--port", type=port_int, default=8000, help="default 8000; 0 = any")
    setup = shop_sub.add_parser(
        "setup", help="fetch the pages' widget front end from npm (make samples runs it)"
    )
    setup.add_argument("--force", action="store_true", help="fetch and unpack again")
    setup.add_argument(
        "--optional", action="store_true", help="without npm, print a note and exit 0"
    )


def run(args: argparse.Namespace) -> int:
    from localml_kit import errors, workshop

    if args.workshop_command == "setup":
        try:
            folder = workshop.setup_assets(force=args.force)
        except errors.BuildDependencyError as exc:
            if not args.optional:
                raise
            print(f"note: {exc} Until then `localml-kit workshop build` cannot write pages.")
            return 0
        print(f"workshop widget assets: {safe(folder)}")
        return 0
    if args.workshop_command == "serve":
        server = workshop.serve(args.folder, port=args.port)
        print(f"serving {safe(server.folder)} at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        finally:
            server.stop()
        return 0
    bundle = workshop.build(
        args.out,
        notebooks=args.notebooks,
        source=args.source,
        timeout=args.timeout,
        progress=not args.quiet,
    )
    for item in bundle.runs:
        said = f"  {safe(item.error)}" if item.status != "ok" else ""
        print(f"{item.status:>6}  {item.seconds:7.1f} s  {safe(item.name)}{said}")
    print(f"wrote {safe(bundle.folder)} (open index.html) and {safe(bundle.zip)}")
    return 1 if bundle.failed else 0
