"""The ``localml-kit`` command line: the kit's jobs outside Jupyter.

Example:
    >>> from localml_kit.cli import main
    >>> main(["samples", "path", "no-such-sample"])  # doctest: +SKIP
    error: no sample named 'no-such-sample'. Known samples: ...
    2
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from localml_kit import __version__, errors

__all__ = ["main", "parse_arguments"]


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        prog="localml-kit",
        description="Find, inspect, run, measure and shrink ML models on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"localml-kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = sub.add_parser("doctor", help="check this machine: CPU, RAM, GPUs, providers, samples")
    doctor.add_argument("--json", action="store_true", help="print JSON instead of a table")

    smp = sub.add_parser("samples", help="the offline sample models")
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
    insp = sub.add_parser(
        "inspect", help="summarise an ONNX or GGUF model: inputs, outputs, operators, weights"
    )
    insp.add_argument(
        "model",
        metavar="MODEL",
        help="a .onnx/.gguf path, a folder with one, or a sample name[:variant]",
    )
    insp.add_argument("--json", action="store_true", help="print JSON instead of tables")
    insp.add_argument("--top", type=int, default=10, help="how many operators and weights to list")
    return parser.parse_args(argv)


def _doctor(as_json: bool) -> int:
    from localml_kit import hardware

    rep = hardware.report()
    if as_json:
        print(json.dumps(rep.to_dict(), indent=2))
        return 0
    gib = 1024**3
    gpus = "; ".join(
        f"{g.name} ({g.memory_free_bytes / gib:.1f}/{g.memory_total_bytes / gib:.1f} GiB free)"
        for g in rep.gpus
    )
    lines = [
        ("OS", f"{rep.os} ({rep.machine})"),
        (
            "CPU",
            f"{rep.cpu_model}: {rep.cpu_physical_cores} cores, {rep.cpu_logical_cores} threads",
        ),
        (
            "RAM",
            f"{rep.ram_available_bytes / gib:.1f} GiB free of {rep.ram_total_bytes / gib:.1f} GiB",
        ),
        ("GPUs", gpus or rep.gpu_note),
        ("Python", rep.python),
        ("onnxruntime", rep.onnxruntime or "not installed"),
        ("onnxruntime-genai", rep.onnxruntime_genai or "not installed"),
        ("Providers", ", ".join(rep.providers) or "none"),
        ("Cache", f"{rep.cache_home} ({rep.cache_bytes / 1e6:.0f} MB)"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    ready = [n for n, ok in rep.samples_ready.items() if ok]
    missing = [n for n, ok in rep.samples_ready.items() if not ok]
    print(f"{'Samples':<{width}}  {len(ready)}/{len(rep.samples_ready)} ready")
    if missing:
        print(
            f"{'':<{width}}  not ready: {', '.join(missing)} (run `localml-kit samples fetch --all`)"
        )
    return 0


def _samples(args: argparse.Namespace) -> int:
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


def _inspect(args: argparse.Namespace) -> int:
    from localml_kit import graph

    summary = graph.summarize(args.model)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        return 0
    facts = summary.facts()
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key:<{width}}  {value}")
    sections = [("Inputs and outputs", summary.io() if summary.format == "onnx" else None)]
    if summary.operators:
        sections.append((f"Operators (top {args.top})", summary.operators_frame().head(args.top)))
    sections.append(("Weights by type", summary.dtypes()))
    sections.append((f"Largest weights (top {args.top})", summary.largest(args.top)))
    for title, frame in sections:
        if frame is None or frame.empty:
            continue
        print(f"\n{title}")
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a kit error, with one line on stderr)."""
    args = parse_arguments(argv)
    try:
        if args.command == "doctor":
            return _doctor(args.json)
        if args.command == "samples":
            return _samples(args)
        if args.command == "inspect":
            return _inspect(args)
    except errors.LocalMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")  # argparse guarantees a known one


if __name__ == "__main__":
    sys.exit(main())
