"""``localml-kit samples list / fetch / path / verify``: the offline sample models."""

from __future__ import annotations

import argparse
import json

from localml_kit import errors

NAME = "samples"


def add_parser(sub: argparse._SubParsersAction) -> None:
    smp = sub.add_parser(NAME, help="the offline sample models")
    smp_sub = smp.add_subparsers(dest="samples_command", required=True, metavar="ACTION")
    s_list = smp_sub.add_parser("list", help="list the samples and whether each is ready")
    s_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s_fetch = smp_sub.add_parser(
        "fetch", help="fetch and build samples (once; later calls return at once)"
    )
    s_fetch.add_argument("names", nargs="*", metavar="NAME", help="sample names")
    s_fetch.add_argument("--all", action="store_true", help="fetch every sample")
    s_fetch.add_argument("--force", action="store_true", help="rebuild even when ready")
    s_path = smp_sub.add_parser("path", help="print the path of a ready sample")
    s_path.add_argument("name", metavar="NAME")
    s_path.add_argument("--variant", default=None, help="a variant (e.g. onnx-int8, gguf)")
    s_verify = smp_sub.add_parser("verify", help="hash a sample's files against its manifest")
    s_verify.add_argument("names", nargs="*", metavar="NAME")
    s_verify.add_argument("--all", action="store_true", help="verify every ready sample")


def run(args: argparse.Namespace) -> int:
    from localml_kit import samples

    if args.samples_command == "list":
        if args.json:
            print(json.dumps([samples.status(n).to_dict() for n in samples.names()], indent=2))
        else:
            table = samples.list()[["name", "task", "format", "ready", "size_mb", "source"]]
            print(table.to_string(index=False))
        return 0
    if args.samples_command == "path":
        print(samples.path(args.name, args.variant))
        return 0
    chosen = samples.names() if args.all else list(args.names)
    if not chosen:
        raise errors.UnknownSampleError(
            f"name one or more samples, or pass --all. Known samples: {', '.join(samples.names())}."
        )
    if args.samples_command == "fetch":
        for name in chosen:
            samples.get(name)
        for name in chosen:
            print(f"{name}: {samples.fetch(name, force=args.force)}")
        return 0
    for name in chosen:  # verify
        if args.all and not samples.status(name).ready:
            continue
        samples.verify(name)
        print(f"{name}: ok")
    return 0
