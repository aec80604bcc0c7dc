"""MiniLM as a local web service, fp32 against int8 per-channel, side by side.

For each model, in interleaved rounds: the service is started in a child
process on 127.0.0.1 (``serve.start``: cold start to the first ``/embed``
answer), loaded by ``--clients`` client threads sending ``--requests``
requests in all to ``POST /search`` and to ``POST /embed`` (one text each),
its resident memory read, and stopped. Then the app's command line is timed
once per model (``serve.run_app``: a whole process per query). Medians over
the rounds.

Usage:
    python benchmarks/serve.py [--clients 4] [--requests 200] [--rounds 3] [--threads 1]

Prints a Markdown table and writes benchmarks/results/serve.json.
Needs the samples (`make samples`) and the serve extra (starlette, uvicorn).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from localml_kit import hardware, models, optimize, serve

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MODEL = "all-minilm-l6-v2"


def one_round(model: Any, args: argparse.Namespace) -> dict[str, float]:
    with serve.start(model, threads=args.threads) as service:
        row = {"ready_s": service.ready_s, "cold_start_s": service.cold_start_s}
        for path in ("/search", "/embed"):
            result = serve.load_test(
                service.url, clients=args.clients, requests=args.requests, path=path
            )
            if result.failed:
                raise SystemExit(f"{path}: {result.failed} requests failed: {result.errors}")
            name = path.strip("/")
            row[f"{name}_p50_ms"] = result.p50_ms
            row[f"{name}_p99_ms"] = result.p99_ms
            row[f"{name}_rps"] = result.throughput_rps
        row["rss_mb"] = service.memory_mb()["rss_mb"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per request")
    args = parser.parse_args(argv)

    int8 = optimize.quantize_int8(MODEL)
    variants: dict[str, Any] = {"fp32": MODEL, "int8": int8}
    sizes = {"fp32": os.path.getsize(models.resolve(MODEL).path), "int8": int8.size_bytes}
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, model in variants.items():  # interleaved: a busy moment hits both
            rows[name].append(one_round(model, args))
    cli = {
        name: serve.run_app(model, ["search", "How do I keep my data private?"]).seconds
        for name, model in variants.items()
    }

    table = []
    for name in variants:
        keys = rows[name][0].keys()
        med = {k: statistics.median(r[k] for r in rows[name]) for k in keys}
        table.append(
            {
                "model": name,
                "size_mb": round(sizes[name] / 1e6, 1),
                **med,
                "cli_search_s": cli[name],
            }
        )

    machine = hardware.report()
    print(
        f"MiniLM service on {machine.cpu_model} ({machine.cpu_logical_cores} threads), "
        f"onnxruntime {machine.onnxruntime}, {args.clients} clients x {args.requests} requests "
        f"per endpoint, {args.threads} thread(s) per request, median of {args.rounds} rounds\n"
    )
    columns = [
        ("model", "model", "{}"),
        ("size_mb", "file MB", "{:.1f}"),
        ("ready_s", "ready s", "{:.2f}"),
        ("cold_start_s", "cold start s", "{:.2f}"),
        ("search_p50_ms", "/search p50 ms", "{:.1f}"),
        ("search_p99_ms", "/search p99 ms", "{:.1f}"),
        ("search_rps", "/search req/s", "{:.0f}"),
        ("embed_p50_ms", "/embed p50 ms", "{:.1f}"),
        ("embed_p99_ms", "/embed p99 ms", "{:.1f}"),
        ("embed_rps", "/embed req/s", "{:.0f}"),
        ("rss_mb", "RSS MB", "{:.0f}"),
        ("cli_search_s", "CLI search s", "{:.2f}"),
    ]
    print("| " + " | ".join(title for _, title, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for row in table:
        print("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |")
    fp32, q = table
    print(
        f"\nint8 / fp32: /search throughput {q['search_rps'] / fp32['search_rps']:.2f}x, "
        f"p99 {q['search_p99_ms'] / fp32['search_p99_ms']:.2f}x, cold start "
        f"{q['cold_start_s'] / fp32['cold_start_s']:.2f}x, RSS {q['rss_mb'] / fp32['rss_mb']:.2f}x"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "serve.json"
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "table": table}, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
