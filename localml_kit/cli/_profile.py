"""``localml-kit profile``: latency, throughput and memory per provider, threads and batch size."""

from __future__ import annotations

import argparse

from localml_kit.cli._common import (
    add_input_flags,
    check_writable,
    count_int,
    int_list,
    non_negative_float,
    pairs,
    positive_int,
    safe,
    seconds,
    str_list,
    threads_int,
    write_text,
)

NAME = "profile"
COLUMNS = ["label", "status", "p50_ms", "p90_ms", "p99_ms", "items_per_s", "load_s", "run_peak_mb"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    prof = sub.add_parser(
        NAME,
        help="measure latency, throughput and memory per provider, threads and batch size",
        description=(
            "Measure a model per provider x threads x batch x optimization level, each "
            "configuration in a fresh process. Inputs: a sample's own, else made from the "
            "model's input specs (--batch, --dims). Exit status: 0 all measured, 1 some "
            "configurations unavailable or failed (rows say why), 2 bad input."
        ),
    )
    prof.add_argument(
        "models", nargs="+", metavar="MODEL", help="a .onnx path or a sample name[:variant]"
    )
    prof.add_argument("--providers", type=str_list, default=["cpu"], help="e.g. cpu,openvino,cuda")
    prof.add_argument(
        "--threads",
        type=int_list(threads_int),
        default=[],
        help="intra-op threads, e.g. 1,2 (default: one per free core)",
    )
    add_input_flags(prof, batch_help="batch sizes, e.g. 1,8 (default 1)", many=True)
    prof.add_argument(
        "--opt",
        type=str_list,
        default=["all"],
        help="graph optimization levels: disable,basic,extended,layout,all",
    )
    prof.add_argument(
        "--synthetic", action="store_true", help="inputs from the input specs, even for samples"
    )
    prof.add_argument("--warmup", type=count_int, default=5)
    prof.add_argument("--min-iterations", type=positive_int, default=50)
    prof.add_argument("--min-seconds", type=non_negative_float, default=2.0)
    prof.add_argument("--timeout", type=seconds, default=300.0, help="seconds per configuration")
    prof.add_argument(
        "--max-memory",
        type=positive_int,
        default=None,
        metavar="MB",
        help="kill a configuration above this resident memory: an oom row (default 80%% of RAM)",
    )
    prof.add_argument("--no-arena", action="store_true", help="turn the CPU memory arena off")
    prof.add_argument(
        "--spinning", action="store_true", help="let idle threads spin (off by default)"
    )
    prof.add_argument(
        "--python", type=pairs, default={}, help="PROVIDER=PYTHON for a provider's environment"
    )
    prof.add_argument("--no-operators", action="store_true", help="skip the per-operator trace")
    prof.add_argument(
        "--strict", action="store_true", help="fail rather than run nodes on the CPU provider"
    )
    prof.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="run on the machines of a Dask cluster: its scheduler, e.g. tcp://HOST:8786",
    )
    prof.add_argument(
        "--machines",
        type=str_list,
        default=["all"],
        help="with --cluster: all (default), or worker names, e.g. laptop,desktop",
    )
    prof.add_argument(
        "--create-envs",
        action="store_true",
        help="with --cluster: create a missing provider environment on a worker when needed",
    )
    prof.add_argument(
        "--connect-timeout",
        type=seconds,
        default=10.0,
        help="with --cluster: seconds to reach the scheduler (default 10)",
    )
    prof.add_argument("--json", metavar="OUT", default=None, help="save the full result as JSON")
    prof.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from localml_kit import errors, profile

    out = check_writable(args.json, "--json")
    plan = profile.Plan(
        args.models,
        providers=args.providers,
        threads=args.threads,
        batches=args.batch,
        optimizations=args.opt,
        dims=args.dims,
        vocab_size=args.vocab_size,
        inputs="synthetic" if args.synthetic else None,
        warmup=args.warmup,
        min_iterations=args.min_iterations,
        min_seconds=args.min_seconds,
        cpu_arena=not args.no_arena,
        spinning=args.spinning,
        timeout_s=args.timeout,
        pythons=args.python,
        operator_profile=not args.no_operators,
        strict=args.strict,
        max_memory_mb=args.max_memory,
    )
    if args.cluster is None and (args.machines != ["all"] or args.create_envs):
        raise errors.ConfigError("--machines and --create-envs need --cluster tcp://HOST:PORT.")
    result = profile.run(
        plan,
        progress=not args.quiet,
        cluster=args.cluster,
        machines="all" if args.machines == ["all"] else args.machines,
        create_envs=args.create_envs,
        connect_timeout_s=args.connect_timeout,
    )
    table = result.table
    columns = [COLUMNS[0], "machine", *COLUMNS[1:]] if result.on_cluster else COLUMNS
    for name, machine in result.machines.items():
        gpus = ", ".join(machine.get("gpus") or []) or "no GPU"
        print(
            f"machine {name} ({machine.get('address', '')}): {machine.get('cpu', '?')}, "
            f"{machine.get('physical_cores', '?')} cores, {machine.get('ram_gb', '?')} GB, "
            f"{gpus}; providers {', '.join(machine.get('providers') or [])}"
        )
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:,.3f}", na_rep="-"))
    rows: list[dict] = table.to_dict("records")
    for model, dims in dict(zip(table["model"], table["dims"], strict=True)).items():
        if dims:
            print(f"dims {model}: {dims}")
    for row in rows:
        if row.get("input_notes"):
            print(f"note {row['label']}: {row['input_notes']}")
        if row["fallback"]:
            print(f"WARNING {row['label']}: {safe(row['fallback'])}")
        if row["status"] != "ok":
            package = f" [package: {row['package']}]" if row["package"] else ""
            where = f" on {row['machine']}" if row["machine"] else ""
            print(
                f"{str(row['status']).upper()} {row['label']}{where}: {safe(row['error'])}{package}"
            )
    for row in rows:
        ops: list[dict] = row["top_operators"] if isinstance(row["top_operators"], list) else []
        shares = ", ".join(f"{o['op']} {o['share']:.0%}" for o in ops[:4])
        if shares and row["status"] == "ok":
            print(f"top operators {row['label']}: {shares}")
    if out is not None:
        write_text(out, result.to_json(), "--json")
        print(f"saved {out}")
    return 0 if (table["status"] == "ok").all() else 1
