"""The same ONNX file on four runtimes: ORT CPU, OpenVINO, tract, onnxruntime-web (WebAssembly).

MiniLM (the sample's own sentences, batch 1 by default, one thread), measured
side by side: each round profiles the four in turn (``profile.run``, a fresh
process each, the kit's measurement loop; the web engine times its runs inside
the page), and the table shows the median over the rounds of each one's p50
and load time, with its ratio to ORT CPU. Then the outputs of each against ORT
CPU's over 8 sentences (``compare.outputs``): max abs difference of the
sentence embedding and of the last hidden state.

Usage:
    python benchmarks/engines.py [--rounds 3] [--batch 1] [--threads 1] [--seconds 1]

Prints a Markdown table and writes benchmarks/results/engines.json. Needs the
samples, the OpenVINO environment and onnxruntime-web (`make samples`), tract
(`pip install tract`) and Chromium; a runtime that is missing gets its reason
in the table instead of figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from localml_kit import compare, engines, profile, providers

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MODEL = "all-minilm-l6-v2"
RUNTIMES = ("cpu", "openvino", "tract", "web")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="min seconds per measurement")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    started = time.perf_counter()
    p50: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    load: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    why: dict[str, str] = {}
    shapes = ""
    for _ in range(args.rounds):
        plan = profile.Plan(
            MODEL,
            providers=list(RUNTIMES),
            threads=[args.threads],
            batches=[args.batch],
            min_seconds=args.seconds,
            operator_profile=False,
        )
        table = profile.run(plan, progress=False).table
        for runtime, row in zip(RUNTIMES, table.itertuples(), strict=True):
            shapes = str(row.input_shapes)
            if row.status == "ok":
                p50[runtime].append(float(row.p50_ms))
                load[runtime].append(float(row.load_s))
            else:
                why[runtime] = f"{row.status}: {row.error}"

    candidates = {r: f"{MODEL}@{r}" for r in RUNTIMES[1:] if r not in why}
    diffs: dict[str, dict[str, float]] = {
        "cpu": {"sentence_embedding": 0.0, "last_hidden_state": 0.0}
    }
    if candidates:
        result = compare.outputs(MODEL, candidates, batch=8)
        for row in result.table.itertuples():
            diffs.setdefault(str(row.candidate), {})[str(row.output)] = float(row.max_abs)

    versions = engines.table().set_index("short")["version"].to_dict()
    cpu = statistics.median(p50["cpu"]) if p50["cpu"] else float("nan")
    rows = []
    print(
        f"MiniLM, batch {args.batch} ({shapes}), {args.threads} thread(s), {args.rounds} rounds "
        "side by side; max abs diff against ORT CPU over 8 sentences\n"
    )
    print(
        "| runtime | version | p50 ms | vs ORT CPU | load s | max abs diff, embedding "
        "| max abs diff, last hidden state |"
    )
    print("|---|---|---|---|---|---|---|")
    for runtime in RUNTIMES:
        name = providers.short_name(providers.resolve(runtime))
        if runtime in why or not p50[runtime]:
            print(f"| {name} | | | | | {why.get(runtime, 'not measured')} | |")
            rows.append({"runtime": name, "error": why.get(runtime, "not measured")})
            continue
        median = statistics.median(p50[runtime])
        d = diffs.get(runtime, {})
        record = {
            "runtime": name,
            "version": versions.get(name, ""),
            "p50_ms": median,
            "p50_per_round_ms": p50[runtime],
            "ratio_to_cpu": median / cpu,
            "load_s": statistics.median(load[runtime]),
            "max_abs_embedding": d.get("sentence_embedding"),
            "max_abs_hidden": d.get("last_hidden_state"),
        }
        rows.append(record)
        print(
            f"| {name} | {record['version']} | {median:.2f} | {median / cpu:.2f}x "
            f"| {record['load_s']:.2f} | {d.get('sentence_embedding', float('nan')):.2g} "
            f"| {d.get('last_hidden_state', float('nan')):.2g} |"
        )
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"args": vars(args), "inputs": shapes, "rows": rows}
    (RESULTS / "engines.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
