"""Measure graph.summarize and graph.show on the sample models.

Usage:
    python benchmarks/graph_summary.py            # every table below
    python benchmarks/graph_summary.py --repeat 20

Tables (Markdown on stdout, JSON in benchmarks/results/graph_summary.json):

1. summarize: per model, the first call and the median of ``--repeat`` calls,
   and the RSS growth of the first call, each model in a fresh Python process
   (after ``import localml_kit.graph``) so the figures do not mix.
2. load estimate: the summary's ``load_memory_bytes`` against the peak RSS an
   ONNX Runtime CPU session really took to load the model (fresh process).
3. netron: time from ``graph.show()`` to netron's page served, and to the
   model's bytes served, through a real HTTP client.

Needs the samples built (``make samples``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MODELS = [
    "smollm2-135m-instruct:onnx-fp32",
    "smollm2-135m-instruct:onnx-int8",
    "smollm2-135m-instruct",
    "smollm2-135m-instruct:gguf",
    "all-minilm-l6-v2",
    "ppocr-v4-det",
    "ppocr-v4-rec",
    "digits-forest",
]

SUMMARY_CHILD = r"""
import json, statistics, sys, time
import psutil
from localml_kit import graph
model, repeat = sys.argv[1], int(sys.argv[2])
proc = psutil.Process()
before = proc.memory_info().rss
start = time.perf_counter()
s = graph.summarize(model)
first = time.perf_counter() - start
grown = proc.memory_info().rss - before
times = []
for _ in range(repeat):
    start = time.perf_counter()
    graph.summarize(model)
    times.append(time.perf_counter() - start)
print(json.dumps({"model": model, "format": s.format, "total_mb": s.total_bytes / 1e6,
    "first_s": first, "median_s": statistics.median(times), "rss_growth_mb": grown / 1e6,
    "estimate_mb": s.load_memory_bytes / 1e6, "path": s.path}))
"""

LOAD_CHILD = r"""
import json, sys, time, threading
import psutil, onnxruntime as ort
proc = psutil.Process()
base = proc.memory_info().rss
peak = base
done = False
def sample():
    global peak
    while not done:
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.002)
t = threading.Thread(target=sample); t.start()
opts = ort.SessionOptions(); opts.intra_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
done = True; t.join()
peak = max(peak, proc.memory_info().rss)
print(json.dumps({"load_peak_mb": (peak - base) / 1e6}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def summaries(repeat: int) -> list[dict]:
    rows = []
    for model in MODELS:
        row = child(SUMMARY_CHILD, model, str(repeat))
        if row["format"] == "onnx":
            row.update(child(LOAD_CHILD, row["path"]))
        rows.append(row)
    return rows


def netron_times(repeat: int) -> list[dict]:
    from localml_kit import graph

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    rows = []
    for model in ["all-minilm-l6-v2", "smollm2-135m-instruct:gguf", "ppocr-v4-det"]:
        shown, page, data = [], [], []
        size = 0
        for _ in range(repeat):
            start = time.perf_counter()
            view = graph.show(model)
            shown.append(time.perf_counter() - start)
            with opener.open(view.url, timeout=10) as response:
                response.read()
            page.append(time.perf_counter() - start)
            with opener.open(f"{view.url}data/{view.model.name}", timeout=30) as response:
                size = len(response.read())
            data.append(time.perf_counter() - start)
            view.close()
        rows.append(
            {
                "model": model,
                "show_ms": statistics.median(shown) * 1e3,
                "page_served_ms": statistics.median(page) * 1e3,
                "model_served_ms": statistics.median(data) * 1e3,
                "model_mb": size / 1e6,
            }
        )
    return rows


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = [
        "| "
        + " | ".join(
            format(row[key], fmt) if key in row and fmt else str(row.get(key, ""))
            for key, _, fmt in columns
        )
        + " |"
        for row in rows
    ]
    return "\n".join([head, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    rows = summaries(args.repeat)
    print("## summarize (fresh process per model)\n")
    print(
        table(
            rows,
            [
                ("model", "model", ""),
                ("format", "format", ""),
                ("total_mb", "file + data MB", ".1f"),
                ("first_s", "first call s", ".3f"),
                ("median_s", f"median of {args.repeat} s", ".3f"),
                ("rss_growth_mb", "RSS growth MB", ".1f"),
            ],
        )
    )
    print("\n## load-memory estimate against ONNX Runtime (CPU, fresh process)\n")
    onnx_rows = [
        dict(r, ratio=r["estimate_mb"] / r["load_peak_mb"]) for r in rows if "load_peak_mb" in r
    ]
    print(
        table(
            onnx_rows,
            [
                ("model", "model", ""),
                ("estimate_mb", "estimate MB", ".0f"),
                ("load_peak_mb", "measured load peak MB", ".0f"),
                ("ratio", "estimate / measured", ".2f"),
            ],
        )
    )
    net = netron_times(args.repeat)
    print(f"\n## netron (median of {args.repeat})\n")
    print(
        table(
            net,
            [
                ("model", "model", ""),
                ("show_ms", "show() returns ms", ".1f"),
                ("page_served_ms", "page served ms", ".1f"),
                ("model_served_ms", "model served ms", ".1f"),
                ("model_mb", "model MB", ".1f"),
            ],
        )
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "graph_summary.json").write_text(
        json.dumps({"summarize": rows, "netron": net}, indent=2)
    )


if __name__ == "__main__":
    main()
