"""``localml-kit inspect``: summarise an ONNX or GGUF model."""

from __future__ import annotations

import argparse
import json

from localml_kit.cli._common import positive_int, safe

NAME = "inspect"


def add_parser(sub: argparse._SubParsersAction) -> None:
    insp = sub.add_parser(
        NAME, help="summarise an ONNX or GGUF model: inputs, outputs, operators, weights"
    )
    insp.add_argument(
        "model",
        metavar="MODEL",
        help="a .onnx/.gguf path, a folder with one, or a sample name[:variant]",
    )
    insp.add_argument("--json", action="store_true", help="print JSON instead of tables")
    insp.add_argument(
        "--top", type=positive_int, default=10, help="how many operators and weights to list"
    )


def run(args: argparse.Namespace) -> int:
    from localml_kit import graph, models

    summary = graph.summarize(models.resolve(args.model))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))  # JSON escapes control chars
        return 0
    facts = summary.facts()
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key:<{width}}  {safe(value)}")
    sections = [("Inputs and outputs", summary.io() if summary.format == "onnx" else None)]
    if summary.operators:
        sections.append((f"Operators (top {args.top})", summary.operators_frame().head(args.top)))
    sections.append(("Weights by type", summary.dtypes()))
    sections.append((f"Largest weights (top {args.top})", summary.largest(args.top)))
    for title, frame in sections:
        if frame is None or frame.empty:
            continue
        print(f"\n{title}")
        print(safe(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}")))
    return 0
