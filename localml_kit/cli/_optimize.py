"""``localml-kit optimize``: an int8 / int4 / fp16 / graph-optimized variant, checked against
the original."""

from __future__ import annotations

import argparse
import json

from localml_kit import errors
from localml_kit.cli._common import add_input_flags, batch_int, read_npz, safe, str_list

NAME = "optimize"


def add_parser(sub: argparse._SubParsersAction) -> None:
    opt = sub.add_parser(
        NAME,
        help="make an int8 / int4 / fp16 / graph-optimized variant and compare it with the original",
        description=(
            "Write a variant of an ONNX model and compare it with the original on the same "
            "inputs (a sample's own, else made from the input specs: --batch, --dims). The "
            "verdict judges a sample's primary outputs (or --only). Exit status: 0 the variant "
            "passes (or was not compared), 1 it fails, 2 bad input (nothing written)."
        ),
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
        choices=["basic", "extended", "layout", "all"],
        help="ORT offline optimization: basic|extended|layout|all",
    )
    opt.add_argument("-o", "--output", default=None, help="output file or folder")
    opt.add_argument("--per-tensor", action="store_true", help="int8: one scale per tensor")
    opt.add_argument("--block-size", type=batch_int, default=32, help="int4: values per scale (32)")
    add_input_flags(
        opt, batch_help="rows of comparison inputs (default 32; a fixed batch wins)", many=False
    )
    opt.add_argument("--inputs", metavar="NPZ", default=None, help="comparison inputs as an .npz")
    opt.add_argument("--only", type=str_list, default=None, help="judge these outputs only")
    opt.add_argument("--no-compare", action="store_true", help="skip the comparison")
    opt.add_argument("--json", action="store_true", help="print JSON")


def _check_output(path: str | None) -> None:
    if path is None:
        return
    from pathlib import Path

    target = Path(path).expanduser()
    folder = target if target.is_dir() else target.parent
    if not folder.is_dir():
        raise errors.ConfigError(
            f"-o {path}: the folder {folder} does not exist; create it or choose another."
        )


def run(args: argparse.Namespace) -> int:
    from localml_kit import inputs, models, optimize

    _check_output(args.output)
    ref = models.resolve(args.model)
    check = {
        "compare": not args.no_compare,
        "inputs": read_npz(args.inputs),
        "batch": args.batch or 32,
        "dims": args.dims,
        "only": args.only,
    }
    if args.int8:
        variant = optimize.quantize_int8(ref, args.output, per_channel=not args.per_tensor, **check)
    elif args.int8_static:
        calib = [
            inputs.inputs_for(ref, batch=args.batch or 8, dims=args.dims, seed=s).arrays
            for s in range(0, 64, 8)
        ]
        variant = optimize.quantize_int8_static(
            ref, calib, args.output, per_channel=not args.per_tensor, **check
        )
    elif args.int4:
        variant = optimize.quantize_int4(ref, args.output, block_size=args.block_size, **check)
    elif args.fp16:
        variant = optimize.to_fp16(ref, args.output, **check)
    else:
        variant = optimize.optimize_graph(ref, args.graph, args.output, **check)
    if args.json:
        print(json.dumps(variant.to_dict(), indent=2, default=str))
    else:
        print(
            f"wrote {safe(variant.label)}: {variant.path}\n  {variant.size_bytes / 1e6:,.1f} MB "
            f"({variant.size_ratio:.0%} of {variant.source_bytes / 1e6:,.1f} MB), "
            f"made in {variant.seconds:.1f} s" + ("" if variant.changed else "; UNCHANGED")
        )
        for note in variant.notes[:5]:
            print(f"  note: {safe(note)}")
        if variant.comparison is not None:
            from localml_kit.cli._compare import print_table

            dims = ", ".join(f"{k}={v}" for k, v in variant.comparison.dims.items())
            print(f"inputs: {variant.comparison.inputs}" + (f"; dims: {dims}" if dims else ""))
            print_table(variant.comparison)
        elif not args.no_compare:
            print("NOT CHECKED: the comparison could not run (see the note)")
    return 1 if variant.passed is False else 0
