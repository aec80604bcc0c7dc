"""How faithful and how fast is `localml_kit.profile`?

1. Fidelity: the p50 the kit reports (a fresh worker process per configuration)
   against a bare in-process ``session.run`` loop on the same model, the same
   inputs and the same session options: MiniLM at batch 1 and 32, one thread.
   The two are measured alternately, several rounds; the ratio is of the medians.
   Goal: within 3%.
2. Cost: a plan of 8 configurations on MiniLM (threads 1,2 x batch 1,8 x
   optimization basic,all) with the kit's default measurement settings: wall
   time (goal <= 60 s) and the overhead per configuration (process start plus
   session load, and everything that is not measurement).

Usage:
    python benchmarks/profile_fidelity.py [--rounds 3] [--seconds 2]

Prints Markdown tables and writes benchmarks/results/profile_fidelity.json.
Needs the samples (`make samples`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from localml_kit import profile, samples

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MODEL = "all-minilm-l6-v2"


def bare_p50(
    model: str, feeds: dict[str, np.ndarray], warmup: int, iterations: int, seconds: float
) -> float:
    """The reference: one session in this process, the kit's session options, a plain loop."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for _ in range(warmup + 1):
        session.run(None, feeds)
    samples_ns = []
    start = time.perf_counter()
    while len(samples_ns) < iterations or time.perf_counter() - start < seconds:
        t0 = time.perf_counter_ns()
        session.run(None, feeds)
        samples_ns.append(time.perf_counter_ns() - t0)
    del session
    return float(np.percentile(np.asarray(samples_ns) / 1e6, 50))


def fidelity(rounds: int, seconds: float) -> list[dict]:
    path = str(samples.path(MODEL))
    rows = []
    for batch in (1, 32):
        feeds = samples.example_inputs(MODEL, batch=batch)
        kit, bare = [], []
        for _ in range(rounds):
            plan = profile.Plan(
                MODEL,
                threads=[1],
                batches=[batch],
                warmup=5,
                min_iterations=30,
                min_seconds=seconds,
                operator_profile=False,
            )
            result = profile.run(plan, progress=False)
            row = result.table.iloc[0]
            if row["status"] != "ok":
                raise SystemExit(f"kit run failed: {row['error']}")
            kit.append(float(row["p50_ms"]))
            bare.append(bare_p50(path, feeds, 5, 30, seconds))
        k, b = statistics.median(kit), statistics.median(bare)
        rows.append(
            {
                "batch": batch,
                "input_shape": "x".join(map(str, feeds["input_ids"].shape)),
                "kit_p50_ms": round(k, 3),
                "bare_p50_ms": round(b, 3),
                "ratio": round(k / b, 4),
                "kit_rounds_ms": [round(v, 3) for v in kit],
                "bare_rounds_ms": [round(v, 3) for v in bare],
            }
        )
        print(
            f"batch {batch:>2}: kit p50 {k:8.3f} ms, bare p50 {b:8.3f} ms, ratio {k / b:.3f}",
            flush=True,
        )
    return rows


def plan_cost() -> dict:
    plan = profile.Plan(MODEL, threads=[1, 2], batches=[1, 8], optimizations=["basic", "all"])
    start = time.perf_counter()
    result = profile.run(plan, progress=False)
    wall = time.perf_counter() - start
    table = result.table
    statuses = table["status"].tolist()
    startup = table["startup_s"].astype(float)
    load = table["load_s"].astype(float)
    not_measuring = table["wall_s"].astype(float) - table["measure_s"].astype(float)
    out = {
        "configurations": len(table),
        "statuses": statuses,
        "min_seconds": plan.min_seconds,
        "min_iterations": plan.min_iterations,
        "warmup": plan.warmup,
        "wall_s": round(wall, 1),
        "startup_s_mean": round(float(startup.mean()), 3),
        "load_s_mean": round(float(load.mean()), 3),
        "start_plus_load_s_mean": round(float((startup + load).mean()), 3),
        "not_measuring_s_mean": round(float(not_measuring.mean()), 3),
        "measure_s_mean": round(float(table["measure_s"].astype(float).mean()), 3),
    }
    print(json.dumps(out, indent=1), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating kit/bare rounds per batch"
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="minimum seconds per measurement"
    )
    args = parser.parse_args(argv)
    fid = fidelity(args.rounds, args.seconds)
    cost = plan_cost()
    print("\n| MiniLM | inputs | kit p50 (ms) | bare session.run p50 (ms) | kit / bare | goal |")
    print("|---|---|---|---|---|---|")
    for r in fid:
        print(
            f"| batch {r['batch']} | {r['input_shape']} tokens | {r['kit_p50_ms']:.3f} | "
            f"{r['bare_p50_ms']:.3f} | {r['ratio']:.3f} | within 3% |"
        )
    print("\n| plan of 8 configurations (MiniLM) | measured | goal |")
    print("|---|---|---|")
    print(f"| wall time | {cost['wall_s']:.1f} s | <= 60 s |")
    print(f"| process start (to onnxruntime imported), mean | {cost['startup_s_mean']:.3f} s | |")
    print(f"| session load, mean | {cost['load_s_mean']:.3f} s | |")
    print(
        f"| overhead per configuration (start + load), mean | {cost['start_plus_load_s_mean']:.3f} s | |"
    )
    print(
        f"| all that is not the measurement loop, mean | {cost['not_measuring_s_mean']:.3f} s | |"
    )
    print(f"| measurement loop, mean | {cost['measure_s_mean']:.3f} s | |")
    results = {
        "machine": f"{os.cpu_count()} cores",
        "python": sys.version.split()[0],
        "onnxruntime": ort.__version__,
        "fidelity": fid,
        "plan_of_8": cost,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile_fidelity.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
