"""``localml-kit doctor``: this machine's CPU, RAM, GPUs, providers and samples."""

from __future__ import annotations

import argparse
import json

from localml_kit.cli._common import safe

NAME = "doctor"


def add_parser(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(NAME, help="check this machine: CPU, RAM, GPUs, providers, samples")
    doctor.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from localml_kit import hardware

    rep = hardware.report()
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
        return 0
    gib = 1024**3
    gpus = "; ".join(
        f"{g.name} ({g.memory_free_bytes / gib:.1f}/{g.memory_total_bytes / gib:.1f} GiB free)"
        for g in rep.gpus
    )
    lines = [
        ("OS", f"{rep.os} ({rep.machine})"),
        (
            "CPU",
            f"{rep.cpu_model}: {rep.cpu_physical_cores} cores, {rep.cpu_logical_cores} threads",
        ),
        (
            "RAM",
            f"{rep.ram_available_bytes / gib:.1f} GiB free of {rep.ram_total_bytes / gib:.1f} GiB",
        ),
        ("GPUs", gpus or rep.gpu_note),
        ("Python", rep.python),
        ("onnxruntime", rep.onnxruntime or "not installed"),
        ("onnxruntime-genai", rep.onnxruntime_genai or "not installed"),
        ("Providers", ", ".join(rep.providers) or "none"),
        ("Cache", f"{rep.cache_home} ({rep.cache_bytes / 1e6:.0f} MB)"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {safe(value)}")
    ready = [n for n, ok in rep.samples_ready.items() if ok]
    missing = [n for n, ok in rep.samples_ready.items() if not ok]
    print(f"{'Samples':<{width}}  {len(ready)}/{len(rep.samples_ready)} ready")
    if missing:
        print(
            f"{'':<{width}}  not ready: {', '.join(missing)} (run `localml-kit samples fetch --all`)"
        )
    return 0
