"""The apps of notebook 05, measured: semantic search fp32 against int8, and OCR per stage.

1. Semantic search over Python's own documentation (``apps.python_docs()``):
   MiniLM fp32 and its per-channel int8 variant, one thread each; the time to
   build each index, the milliseconds per query (median and p90 over the 20
   example queries, each run ``--repeats`` times, the two models interleaved),
   and the top-5 agreement (shared results over 5) and same first result of
   int8 against fp32 over the 20 queries.
2. OCR: pages rendered with the DejaVu fonts that matplotlib ships (7 texts x 4
   fonts x 3 sizes = 84 pages): how many are read exactly, at the pipeline's
   unclip ratio (2.0) and at RapidOCR's default (1.6), and the median
   milliseconds per stage (detect, direction, recognize, total) of a warm read.
3. The digits classifiers: accuracy and time per row over the test set.

Usage:
    python benchmarks/apps.py [--repeats 5] [--quick]

Prints Markdown tables and writes benchmarks/results/apps.json. Needs the
samples (`make samples`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from localml_kit import apps, optimize

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

OCR_TEXTS = [
    ["Total: 12.50 EUR"],
    ["Hello, world."],
    ["Total: 12.50 EUR", "Paid by card on 2026-03-14"],
    [
        "ONNX Runtime runs models on your own machine.",
        "No cloud service is needed.",
        "Line three: 42 apples & 7 pears!",
    ],
    ["def read(image): return text"],
    ["Invoice No. 4711", "Due date: 30 April 2026", "Amount due: $1,234.00"],
    ["small print at sixteen pixels"],
]
OCR_FONTS = ["sans", "serif", "mono", "sans-bold"]
OCR_SIZES = [20, 28, 36]


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (no tabulate needed)."""
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each query (default 5)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="OCR on 7 pages (one font and size per text) instead of 84",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")
    return args


def search(repeats: int) -> dict:
    """fp32 and int8 indexes of the Python docs: build time, ms per query, top-5 agreement."""
    docs = apps.python_docs()
    fp32 = apps.SemanticIndex.build(docs["text"], sources=docs["topic"], threads=1)
    variant = optimize.quantize_int8("all-minilm-l6-v2", per_channel=True)
    int8 = apps.SemanticIndex.build(docs["text"], variant, sources=docs["topic"], threads=1)
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(repeats):
        for query in apps.EXAMPLE_QUERIES:
            times["fp32"].append(fp32.search(query, 5).attrs["ms"])
            times["int8"].append(int8.search(query, 5).attrs["ms"])
    agreement = apps.topk_agreement(fp32, int8, apps.EXAMPLE_QUERIES, k=5)
    return {
        "texts": len(docs),
        "topics": int(docs["topic"].nunique()),
        "queries": len(agreement),
        "build_s": {"fp32": round(fp32.build_s, 2), "int8": round(int8.build_s, 2)},
        "ms_per_query_p50": {k: round(statistics.median(v), 2) for k, v in times.items()},
        "ms_per_query_p90": {k: round(float(np.percentile(v, 90)), 2) for k, v in times.items()},
        "top5_agreement": round(float(agreement["overlap"].mean()), 4),
        "same_top1": round(float(agreement["same_top1"].mean()), 4),
        "int8_size_ratio": round(variant.size_ratio, 3),
    }


def ocr(quick: bool) -> dict:
    """Exact reads and ms per stage over rendered pages."""
    pipeline = apps.OcrPipeline()
    tight = apps.OcrPipeline(unclip_ratio=1.6)
    if quick:  # one font and size per text
        pages = [
            (text, OCR_FONTS[i % len(OCR_FONTS)], OCR_SIZES[i % len(OCR_SIZES)])
            for i, text in enumerate(OCR_TEXTS)
        ]
    else:
        pages = [(t, f, z) for t in OCR_TEXTS for f in OCR_FONTS for z in OCR_SIZES]
    exact = exact_tight = lines = 0
    stages: dict[str, list[float]] = {}
    for text, font, size in pages:
        page = apps.render_text(text, font=font, size=size)
        pipeline.read(page)  # the first read of a new size prepares ORT's buffers
        result = pipeline.read(page)
        exact += result.texts == text
        exact_tight += tight.read(page).texts == text
        lines += len(text)
        for stage, ms in result.ms.items():
            stages.setdefault(stage, []).append(ms)
    return {
        "pages": len(pages),
        "lines": lines,
        "exact": exact,
        "exact_unclip_1_6": exact_tight,
        "ms_p50": {k: round(statistics.median(v), 1) for k, v in stages.items()},
        "ms_p50_per_line": round(statistics.median(stages["total"]) / (lines / len(pages)), 1),
    }


def digits() -> list[dict]:
    rows = []
    for name in ("digits-mlp", "digits-forest"):
        clf = apps.Classifier(name)
        result = clf.evaluate(*clf.test_set(), repeats=20)
        rows.append(
            {
                "model": name,
                "accuracy": result.accuracy,
                "rows": result.rows,
                "us_per_row": round(result.ms_per_row * 1000, 2),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    print(
        f"ONNX Runtime {ort.__version__}, Python {sys.version.split()[0]}, one thread per session"
    )
    found = {"search": search(args.repeats), "ocr": ocr(args.quick), "digits": digits()}
    s, o = found["search"], found["ocr"]
    print(
        f"\n## Semantic search: {s['texts']} paragraphs of Python's docs ({s['topics']} topics), "
        f"{s['queries']} queries x {args.repeats}\n"
    )
    table = pd.DataFrame(
        {
            "model": ["fp32", "int8 (per-channel)"],
            "build s": [s["build_s"]["fp32"], s["build_s"]["int8"]],
            "ms/query p50": [s["ms_per_query_p50"]["fp32"], s["ms_per_query_p50"]["int8"]],
            "ms/query p90": [s["ms_per_query_p90"]["fp32"], s["ms_per_query_p90"]["int8"]],
        }
    )
    print(markdown(table))
    print(
        f"\nint8 against fp32 over {s['queries']} queries: top-5 agreement "
        f"{s['top5_agreement']:.1%}, same first result {s['same_top1']:.0%}; "
        f"int8 is {s['int8_size_ratio']:.0%} of the fp32 size"
    )
    print(f"\n## OCR: {o['pages']} rendered pages, {o['lines']} lines\n")
    print(
        f"read exactly: {o['exact']}/{o['pages']} pages (unclip 2.0), "
        f"{o['exact_unclip_1_6']}/{o['pages']} with unclip 1.6\n"
    )
    print(markdown(pd.DataFrame([{"ms (median)": "warm read", **o["ms_p50"]}])))
    print(f"\n## Digits classifiers (test set)\n\n{markdown(pd.DataFrame(found['digits']))}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "apps.json").write_text(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
