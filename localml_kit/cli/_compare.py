"""``localml-kit compare``: the same inputs through models; errors, agreement and a verdict."""

from __future__ import annotations

import argparse
from typing import Any

from localml_kit.cli._common import add_input_flags, read_npz, safe, seconds, str_list

NAME = "compare"
TIMEOUT_S = 600.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    cmp = sub.add_parser(
        NAME,
        help="run the same inputs through models; errors, agreement and a pass/fail verdict",
        description=(
            "Compare candidates' outputs with a reference's on the same inputs (a sample's "
            "example inputs, or inputs made from the reference's specs: --batch, --dims). "
            "MODEL@PROVIDER runs on that provider (e.g. model.onnx@openvino, served by a "
            "provider environment). Each model runs in a child process with a time limit. "
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
    add_input_flags(cmp, batch_help="rows of inputs (default 8; a fixed batch wins)", many=False)
    cmp.add_argument("--only", type=str_list, default=None, help="judge these outputs only")
    cmp.add_argument(
        "--timeout", type=seconds, default=TIMEOUT_S, help="seconds each model may take"
    )
    cmp.add_argument("--json", action="store_true", help="print JSON instead of a table")


def print_table(result: Any) -> None:
    """The comparison table, one PASS/FAIL line per candidate, its notes, the dims used."""
    cols = ["candidate", "output", "kind", "precision", "max_abs", "mean_abs", "cosine"]
    cols += ["top1", "neighbours", "passed", "judged"]
    print(
        safe(
            result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
        )
    )
    judged = result.table[result.table["judged"].astype(bool)]
    for label, ok in result.verdicts().items():
        reasons = "; ".join(r for r in judged.loc[judged["candidate"] == label, "reason"] if r)
        print(f"{'PASS' if ok else 'FAIL'} {safe(label)}" + (f": {reasons}" if reasons else ""))
        for note in result.notes.get(label, []):
            print(f"  note: {safe(note)}")
    for note in result.input_notes:
        print(f"note: {safe(note)}")


def run(args: argparse.Namespace) -> int:
    from localml_kit import compare

    given = read_npz(args.inputs)
    result = compare.outputs(
        args.reference,
        list(args.candidates),
        given,
        batch=args.batch or 8,
        dims=args.dims,
        vocab_size=args.vocab_size,
        only=args.only,
        timeout_s=args.timeout,
    )
    if args.json:
        print(result.to_json())
    else:
        dims = ", ".join(f"{k}={v}" for k, v in result.dims.items())
        print(f"reference: {safe(result.reference)}; inputs: {result.inputs}")
        if dims:
            print(f"dims: {dims}")
        print_table(result)
    return 0 if result.passed else 1
