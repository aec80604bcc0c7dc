"""The ``localml-kit`` command line: the kit's jobs outside Jupyter.

Example:
    >>> from localml_kit.cli import main
    >>> main(["samples", "path", "no-such-sample"])  # doctest: +SKIP
    error: no sample named 'no-such-sample'. Known samples: ...
    2
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from localml_kit import __version__, errors

__all__ = ["main", "parse_arguments"]


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        prog="localml-kit",
        description="Find, inspect, run, measure and shrink ML models on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"localml-kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = sub.add_parser("doctor", help="check this machine: CPU, RAM, GPUs, providers, samples")
    doctor.add_argument("--json", action="store_true", help="print JSON instead of a table")

    smp = sub.add_parser("samples", help="the offline sample models")
    smp_sub = smp.add_subparsers(dest="samples_command", required=True, metavar="ACTION")
    s_list = smp_sub.add_parser("list", help="list the samples and whether each is ready")
    s_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s_fetch = smp_sub.add_parser(
        "fetch", help="fetch and build samples (once; later calls return at once)"
    )
    s_fetch.add_argument("names", nargs="*", metavar="NAME", help="sample names")
    s_fetch.add_argument("--all", action="store_true", help="fetch every sample")
    s_fetch.add_argument("--force", action="store_true", help="rebuild even when ready")
    s_path = smp_sub.add_parser("path", help="print the path of a ready sample")
    s_path.add_argument("name", metavar="NAME")
    s_path.add_argument("--variant", default=None, help="a variant (e.g. onnx-int8, gguf)")
    s_verify = smp_sub.add_parser("verify", help="hash a sample's files against its manifest")
    s_verify.add_argument("names", nargs="*", metavar="NAME")
    s_verify.add_argument("--all", action="store_true", help="verify every ready sample")

    insp = sub.add_parser(
        "inspect", help="summarise an ONNX or GGUF model: inputs, outputs, operators, weights"
    )
    insp.add_argument(
        "model",
        metavar="MODEL",
        help="a .onnx/.gguf path, a folder with one, or a sample name[:variant]",
    )
    insp.add_argument("--json", action="store_true", help="print JSON instead of tables")
    insp.add_argument("--top", type=int, default=10, help="how many operators and weights to list")
    _add_profile_parsers(sub)
    from localml_kit import _cli_compare

    _cli_compare.add_parsers(sub)
    from localml_kit.slm import _cli as _slm_cli

    _slm_cli.add_parsers(sub)
    from localml_kit.zoo import _cli as _zoo_cli

    _zoo_cli.add_parsers(sub)
    return parser.parse_args(argv)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: give integers separated by commas") from exc
    if not values:
        raise argparse.ArgumentTypeError("give at least one value")
    return values


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for part in _str_list(text):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{part!r}: use NAME=VALUE, separated by commas")
        out[key.strip()] = value.strip()
    return out


def _add_profile_parsers(sub: argparse._SubParsersAction) -> None:
    prof = sub.add_parser(
        "profile",
        help="measure latency, throughput and memory per provider, threads and batch size",
        description=(
            "Measure a model per provider x threads x batch x optimization level, each "
            "configuration in a fresh process. Exit status: 0 all measured, 1 some "
            "configurations unavailable or failed (rows say why), 2 bad input."
        ),
    )
    prof.add_argument(
        "models", nargs="+", metavar="MODEL", help="a .onnx path or a sample name[:variant]"
    )
    prof.add_argument("--providers", type=_str_list, default=["cpu"], help="e.g. cpu,openvino,cuda")
    prof.add_argument(
        "--threads",
        type=_int_list,
        default=[],
        help="intra-op threads, e.g. 1,2 (default: one per free core)",
    )
    prof.add_argument("--batch", type=_int_list, default=[], help="batch sizes, e.g. 1,8")
    prof.add_argument(
        "--opt",
        type=_str_list,
        default=["all"],
        help="graph optimization levels: disable,basic,extended,layout,all",
    )
    prof.add_argument(
        "--dims", type=_pairs, default={}, help="symbolic dims, e.g. sequence=128 or x[2]=48"
    )
    prof.add_argument("--vocab-size", type=int, default=None, help="token ids are drawn in [0, N)")
    prof.add_argument(
        "--synthetic", action="store_true", help="inputs from the input specs, even for samples"
    )
    prof.add_argument("--warmup", type=int, default=5)
    prof.add_argument("--min-iterations", type=int, default=50)
    prof.add_argument("--min-seconds", type=float, default=2.0)
    prof.add_argument("--timeout", type=float, default=300.0, help="seconds per configuration")
    prof.add_argument("--no-arena", action="store_true", help="turn the CPU memory arena off")
    prof.add_argument(
        "--spinning", action="store_true", help="let idle threads spin (off by default)"
    )
    prof.add_argument(
        "--python", type=_pairs, default={}, help="PROVIDER=PYTHON for a provider's environment"
    )
    prof.add_argument("--no-operators", action="store_true", help="skip the per-operator trace")
    prof.add_argument(
        "--strict", action="store_true", help="fail rather than run nodes on the CPU provider"
    )
    prof.add_argument("--json", metavar="OUT", default=None, help="save the full result as JSON")
    prof.add_argument("--quiet", action="store_true", help="no progress bar")

    env = sub.add_parser("envs", help="Python environments for providers that replace onnxruntime")
    env_sub = env.add_subparsers(dest="envs_command", required=True, metavar="ACTION")
    e_list = env_sub.add_parser("list", help="list recipes and created environments")
    e_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e_create = env_sub.add_parser("create", help="create an environment (once), e.g. openvino")
    e_create.add_argument("name", metavar="NAME")
    e_create.add_argument("--force", action="store_true", help="create it again")
    e_remove = env_sub.add_parser("remove", help="delete an environment")
    e_remove.add_argument("name", metavar="NAME")


def _profile(args: argparse.Namespace) -> int:
    from localml_kit import profile

    plan = profile.Plan(
        args.models,
        providers=args.providers,
        threads=args.threads,
        batches=args.batch,
        optimizations=args.opt,
        dims={k: _dim_value(k, v) for k, v in args.dims.items()},
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
    )
    result = profile.run(plan, progress=not args.quiet)
    table = result.table
    columns = [
        "label",
        "status",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "items_per_s",
        "load_s",
        "run_peak_mb",
    ]
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:,.3f}", na_rep="-"))
    rows: list[dict] = table.to_dict("records")
    for row in rows:
        if row["fallback"]:
            print(f"WARNING {row['label']}: {row['fallback']}")
        if row["status"] != "ok":
            package = f" [package: {row['package']}]" if row["package"] else ""
            print(f"{str(row['status']).upper()} {row['label']}: {row['error']}{package}")
    for row in rows:
        ops: list[dict] = row["top_operators"] if isinstance(row["top_operators"], list) else []
        shares = ", ".join(f"{o['op']} {o['share']:.0%}" for o in ops[:4])
        if shares and row["status"] == "ok":
            print(f"top operators {row['label']}: {shares}")
    if args.json:
        result.to_json(args.json)
        print(f"saved {args.json}")
    return 0 if (table["status"] == "ok").all() else 1


def _dim_value(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise errors.InputError(f"dim {name!r}: {value!r} is not an integer.") from exc


def _envs(args: argparse.Namespace) -> int:
    from localml_kit import envs

    if args.envs_command == "list":
        table = envs.list()
        if args.json:
            print(table.to_json(orient="records", indent=2))
        else:
            print(
                table[["name", "ready", "providers", "onnxruntime", "python"]].to_string(
                    index=False
                )
            )
        return 0
    if args.envs_command == "remove":
        print(f"{args.name}: {'removed' if envs.remove(args.name) else 'not there'}")
        return 0
    recipe = envs.RECIPES.get(args.name)
    ready = [e for e in envs.list().to_dict("records") if e["name"] == args.name and e["ready"]]
    if (
        args.force
        or not ready
        or (recipe and ready[0]["requirements"] != " ".join(recipe.requirements))
    ):
        print(
            f"creating provider environment {args.name!r} (pip output is kept quiet)...", flush=True
        )
    env = envs.create(args.name, force=args.force)
    print(f"{env.name}: {env.python}")
    print(f"  onnxruntime {env.onnxruntime}; providers: {', '.join(env.providers)}")
    return 0


def _doctor(as_json: bool) -> int:
    from localml_kit import hardware

    rep = hardware.report()
    if as_json:
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
        print(f"{key:<{width}}  {value}")
    ready = [n for n, ok in rep.samples_ready.items() if ok]
    missing = [n for n, ok in rep.samples_ready.items() if not ok]
    print(f"{'Samples':<{width}}  {len(ready)}/{len(rep.samples_ready)} ready")
    if missing:
        print(
            f"{'':<{width}}  not ready: {', '.join(missing)} (run `localml-kit samples fetch --all`)"
        )
    return 0


def _samples(args: argparse.Namespace) -> int:
    from localml_kit import samples

    if args.samples_command == "list":
        if args.json:
            print(json.dumps([samples.status(n).to_dict() for n in samples.names()], indent=2))
        else:
            table = samples.list()[["name", "task", "format", "ready", "size_mb", "source"]]
            print(table.to_string(index=False))
        return 0
    if args.samples_command == "path":
        print(samples.path(args.name, args.variant))
        return 0
    chosen = samples.names() if args.all else list(args.names)
    if not chosen:
        raise errors.UnknownSampleError(
            f"name one or more samples, or pass --all. Known samples: {', '.join(samples.names())}."
        )
    if args.samples_command == "fetch":
        for name in chosen:
            samples.get(name)
        for name in chosen:
            print(f"{name}: {samples.fetch(name, force=args.force)}")
        return 0
    for name in chosen:  # verify
        if args.all and not samples.status(name).ready:
            continue
        samples.verify(name)
        print(f"{name}: ok")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from localml_kit import graph

    summary = graph.summarize(args.model)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        return 0
    facts = summary.facts()
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key:<{width}}  {value}")
    sections = [("Inputs and outputs", summary.io() if summary.format == "onnx" else None)]
    if summary.operators:
        sections.append((f"Operators (top {args.top})", summary.operators_frame().head(args.top)))
    sections.append(("Weights by type", summary.dtypes()))
    sections.append((f"Largest weights (top {args.top})", summary.largest(args.top)))
    for title, frame in sections:
        if frame is None or frame.empty:
            continue
        print(f"\n{title}")
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a kit error, with one line on stderr)."""
    args = parse_arguments(argv)
    try:
        if args.command == "doctor":
            return _doctor(args.json)
        if args.command == "samples":
            return _samples(args)
        if args.command == "inspect":
            return _inspect(args)
        if args.command == "slm":
            from localml_kit.slm import _cli as slm_cli

            return slm_cli.run(args)
        if args.command == "zoo":
            from localml_kit.zoo import _cli as zoo_cli

            return zoo_cli.run(args)
        if args.command in ("profile", "envs"):
            return _profile(args) if args.command == "profile" else _envs(args)
        if args.command in ("compare", "optimize"):
            from localml_kit import _cli_compare

            if args.command == "compare":
                return _cli_compare.run_compare(args)
            return _cli_compare.run_optimize(args)
    except errors.LocalMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")  # argparse guarantees a known one


if __name__ == "__main__":
    sys.exit(main())
