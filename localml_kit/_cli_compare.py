"""The ``compare`` and ``optimize`` commands of the command line (parsers and handlers)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from localml_kit import errors


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` and ``optimize`` to the command line's subcommands."""
    cmp = sub.add_parser(
        "compare",
        help="run the same inputs through models; errors, agreement and a pass/fail verdict",
        description=(
            "Compare candidates' outputs with a reference's on the same inputs (a sample's "
            "example inputs, or inputs made from the reference's specs). MODEL@PROVIDER runs "
            "on that provider (e.g. model.onnx@openvino, served by a provider environment). "
            "Exit status: 0 all pass, 1 some fail, 2 bad input."
        ),
    )
    cmp.add_argument(
        "reference", metavar="REF", help="a .onnx path or sample name[:variant][@provider]"
    )
    cmp.add_argument("candidates", nargs="+", metavar="CAND", help="candidates, same forms")
    cmp.add_argument(
        "--inputs", metavar="NPZ", default=None, help="inputs as an .npz (name -> array)"
    )
    cmp.add_argument("--batch", type=int, default=8, help="rows of example inputs (default 8)")
    cmp.add_argument("--only", default=None, help="compare these outputs only (comma-separated)")
    cmp.add_argument("--json", action="store_true", help="print JSON instead of a table")

    opt = sub.add_parser(
        "optimize",
        help="make an int8 / int4 / fp16 / graph-optimized variant and compare it with the original",
    )
    opt.add_argument("model", metavar="MODEL", help="a .onnx path or sample name[:variant]")
    how = opt.add_mutually_exclusive_group(required=True)
    how.add_argument("--int8", action="store_true", help="dynamic int8 (per-channel)")
    how.add_argument("--int8-static", action="store_true", help="static int8 (QDQ), calibrated")
    how.add_argument("--int4", action="store_true", help="4-bit weights in blocks (MatMulNBits)")
    how.add_argument("--fp16", action="store_true", help="float16 weights, float32 inputs/outputs")
    how.add_argument(
        "--graph",
        metavar="LEVEL",
        default=None,
        help="ORT offline optimization: basic|extended|all",
    )
    opt.add_argument("-o", "--output", default=None, help="output file or folder")
    opt.add_argument("--per-tensor", action="store_true", help="int8: one scale per tensor")
    opt.add_argument("--block-size", type=int, default=32, help="int4: values per scale (32)")
    opt.add_argument("--no-compare", action="store_true", help="skip the comparison")
    opt.add_argument("--json", action="store_true", help="print JSON")


def _inputs(path: str | None) -> dict | None:
    if path is None:
        return None
    import numpy as np

    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise errors.InputError(f"cannot read inputs from {path}: {exc}") from exc


def _print_table(result: Any) -> None:
    cols = ["candidate", "output", "kind", "precision", "max_abs", "mean_abs", "cosine"]
    cols += ["top1", "neighbours", "passed"]
    print(result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))
    for label, ok in result.verdicts().items():
        reasons = "; ".join(
            r for r in result.table.loc[result.table["candidate"] == label, "reason"] if r
        )
        print(f"{'PASS' if ok else 'FAIL'} {label}" + (f": {reasons}" if reasons else ""))
        for note in result.notes.get(label, []):
            print(f"  note: {note}")


def run_compare(args: argparse.Namespace) -> int:
    """``localml-kit compare``: exit 0 when every candidate passes, 1 otherwise."""
    from localml_kit import compare

    if args.batch < 1:
        raise errors.ConfigError("--batch must be at least 1.")
    only = [o.strip() for o in args.only.split(",") if o.strip()] if args.only else None
    result = compare.outputs(
        args.reference, list(args.candidates), _inputs(args.inputs), batch=args.batch, only=only
    )
    if args.json:
        print(result.to_json())
    else:
        print(f"reference: {result.reference}; inputs: {result.inputs}")
        _print_table(result)
    return 0 if result.passed else 1


def run_optimize(args: argparse.Namespace) -> int:
    """``localml-kit optimize``: writes the variant; exit 1 when its comparison fails."""
    from localml_kit import compare, optimize, samples

    compare_it = not args.no_compare
    if args.int8:
        variant = optimize.quantize_int8(
            args.model, args.output, per_channel=not args.per_tensor, compare=compare_it
        )
    elif args.int8_static:
        name = args.model.partition(":")[0]
        if name in samples.names() and samples.get(name).inputs:
            calib = [samples.example_inputs(name, batch=8, seed=s) for s in range(0, 64, 8)]
        else:
            calib = [compare.default_inputs(args.model, batch=8)]
        variant = optimize.quantize_int8_static(
            args.model, calib, args.output, per_channel=not args.per_tensor, compare=compare_it
        )
    elif args.int4:
        variant = optimize.quantize_int4(
            args.model, args.output, block_size=args.block_size, compare=compare_it
        )
    elif args.fp16:
        variant = optimize.to_fp16(args.model, args.output, compare=compare_it)
    else:
        variant = optimize.optimize_graph(args.model, args.graph, args.output, compare=compare_it)
    if args.json:
        print(json.dumps(variant.to_dict(), indent=2, default=str))
    else:
        print(
            f"{variant.label}: {variant.path}\n  {variant.size_bytes / 1e6:,.1f} MB "
            f"({variant.size_ratio:.0%} of {variant.source_bytes / 1e6:,.1f} MB), "
            f"made in {variant.seconds:.1f} s" + ("" if variant.changed else "; UNCHANGED")
        )
        for note in variant.notes[:5]:
            print(f"  note: {note}")
        if variant.comparison is not None:
            _print_table(variant.comparison)
    return 0 if variant.comparison is None or variant.comparison.passed else 1
