"""Profiling through a Dask cluster, against profiling on this machine.

1. Overhead per configuration: the same plan run locally (``profile.run(plan)``) and
   through a one-worker cluster on 127.0.0.1 (``profile.run(plan, cluster=...)``),
   rounds alternated; the difference in wall time divided by the configurations.
2. A plan of 8 configurations on 2 workers (``machines="all"``: 16 rows) against the
   same plan on one of them (8 rows): wall time of each.

Both workers are processes on this machine, so in (2) they share its cores: on a real
fleet each machine has its own.

    python benchmarks/fleet.py [--model all-minilm-l6-v2] [--repeats 3] [--min-seconds 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localml_kit import profile  # noqa: E402


def plan_of_8(model: str, min_seconds: float) -> profile.Plan:
    """8 configurations: batches 1, 2, 4, 8 x optimization levels basic, all; one thread."""
    return profile.Plan(
        model,
        threads=[1],
        batches=[1, 2, 4, 8],
        optimizations=["basic", "all"],
        warmup=2,
        min_iterations=10,
        min_seconds=min_seconds,
        operator_profile=False,
    )


def timed(plan: profile.Plan, **options: object) -> tuple[float, profile.ProfileResult]:
    started = time.perf_counter()
    result = profile.run(plan, progress=False, **options)  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    bad = result.table[result.table["status"] != "ok"]
    if len(bad):
        raise SystemExit(f"not measured: {bad[['label', 'status', 'error']].to_string()}")
    return wall, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-minilm-l6-v2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    plan = plan_of_8(args.model, args.min_seconds)
    n = len(plan.configurations())
    one = {"a": {"resources": {"CPU": 1}, "threads": 1}}
    two = {**one, "b": {"resources": {"CPU": 1}, "threads": 1}}

    local, through, p50_local, p50_cluster = [], [], [], []
    around_local, around_cluster = [], []  # wall time outside the measuring processes
    started = time.perf_counter()
    cluster = profile.local_cluster(one)
    print(f"a one-worker cluster started in {time.perf_counter() - started:.1f} s")
    try:
        timed(plan, cluster=cluster)  # the worker's first imports, not counted
        for _ in range(args.repeats):
            wall, res = timed(plan)
            local.append(wall)
            around_local.append(wall - float(res.table["wall_s"].sum()))
            p50_local.append(float(res.table["p50_ms"].median()))
            wall, res = timed(plan, cluster=cluster)
            through.append(wall)
            around_cluster.append(wall - float(res.table["wall_s"].sum()))
            p50_cluster.append(float(res.table["p50_ms"].median()))
    finally:
        cluster.close()
    lm, cm = statistics.median(local), statistics.median(through)
    print(
        f"\n{args.model}, {n} configurations, min_seconds {args.min_seconds:g}, "
        f"{args.repeats} rounds alternated (medians):\n"
    )
    al, ac = statistics.median(around_local), statistics.median(around_cluster)
    print(
        "| run | wall s | outside the measuring processes s | per configuration ms | median p50 ms |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| this machine | {lm:.2f} | {al:.2f} | {al / n * 1000:.0f} | "
        f"{statistics.median(p50_local):.3f} |"
    )
    print(
        f"| through Dask, 1 worker | {cm:.2f} | {ac:.2f} | {ac / n * 1000:.0f} | "
        f"{statistics.median(p50_cluster):.3f} |"
    )
    print(
        f"\noverhead per configuration through Dask (outside the measuring processes): "
        f"{(ac - al) / n * 1000:+.0f} ms; wall time {cm / lm:.2f}x the local one\n"
    )

    cluster = profile.local_cluster(two)
    single, both = [], []
    try:
        timed(plan, cluster=cluster)
        for _ in range(args.repeats):
            wall, _res = timed(plan, cluster=cluster, machines=["a"])
            single.append(wall)
            wall, res = timed(plan, cluster=cluster, machines="all")
            both.append(wall)
            assert len(res.table) == 2 * n
    finally:
        cluster.close()
    sm, bm = statistics.median(single), statistics.median(both)
    print("| plan of 8 configurations | rows | wall s |")
    print("|---|---|---|")
    print(f"| one machine (a) | {n} | {sm:.2f} |")
    print(f"| two machines (a, b), machines='all' | {2 * n} | {bm:.2f} ({bm / sm:.2f}x) |")


if __name__ == "__main__":
    main()
