"""Run a plan: inputs once per (model, batch), then one fresh worker process per configuration."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import psutil
from tqdm.auto import tqdm

from localml_kit import _proc, engines, envs, errors, hardware, models, providers, samples
from localml_kit.inputs import Feeds, inputs_for
from localml_kit.inputs import given as given_inputs
from localml_kit.profile import _trace
from localml_kit.profile._plan import Configuration, Plan, short_name
from localml_kit.profile._result import WORKER_FIELDS, ProfileResult, ProfileRow, frame

WORKER = Path(__file__).with_name("_worker.py")
TOP_OPERATORS = 10


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


_SOURCE_LOCATION = re.compile(r"\s*(?:(?<!\w)[A-Za-z]:)?[/\\][^\s:]+\.(?:cc|cpp|cu|h|hpp):\d+\s+")


def _strip_cpp_locations(text: str) -> str:
    """Drop ``/path/file.cc:123 ns::Func(args...)`` prefixes that ORT puts before its messages."""
    while match := _SOURCE_LOCATION.search(text):
        start, i, depth = match.start(), match.end(), 0
        opened = text.find("(", i)
        if opened < 0 or "\n" in text[i:opened]:
            text = text[:start] + " " + text[match.end() :]
            continue
        for i in range(opened, len(text)):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                break
        text = text[:start] + " " + text[i + 1 :].lstrip()
    return text


def summarise_error(text: str | None, limit: int = 400) -> str:
    """ORT's error text made short: no ``[ONNXRuntimeError] : 1 : FAIL :`` prefix, no C++ source
    locations, one line.

    Example:
        >>> summarise_error("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model failed")
        'INVALID_PROTOBUF: Load model failed'
    """
    if not text:
        return ""
    out = re.sub(r"\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*(\w+)\s*:\s*", r"\1: ", str(text))
    out = _strip_cpp_locations(out)
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 3] + "..."


def make_feeds(ref: Any, plan: Plan, batch: int | None) -> Feeds:
    """The inputs of one (model, batch) and how they were chosen: sample, synthetic or given."""
    if isinstance(plan.inputs, Mapping):
        return given_inputs(ref, plan.inputs, batch=batch)
    if plan.inputs == "sample":
        record = models.resolve(ref)
        if not (record.sample and samples.get(record.sample).inputs):
            raise errors.InputError(
                f"model {record.text!r} is not a sample with example inputs; use inputs=None."
            )
    return inputs_for(
        ref,
        batch=batch,
        dims=plan.dims,
        seed=plan.seed,
        vocab_size=plan.vocab_size,
        synthetic=plan.inputs == "synthetic",
    )


def _available(
    python: str, cache: dict[str, tuple[str, tuple[str, ...]] | str]
) -> tuple[str, tuple[str, ...]] | str:
    """(onnxruntime version, providers) of a Python, or why it cannot say; cached per run."""
    if python not in cache:
        if os.path.abspath(python) == os.path.abspath(sys.executable):
            import onnxruntime

            cache[python] = (onnxruntime.__version__, tuple(onnxruntime.get_available_providers()))
        else:
            try:
                cache[python] = envs.query_python(python)
            except errors.LocalMLError as exc:
                cache[python] = str(exc)
    return cache[python]


def _unavailable_reason(cfg: Configuration, probe: tuple[str, tuple[str, ...]] | str) -> str:
    if isinstance(probe, str):
        return probe
    version, offered = probe
    where = "this Python" if cfg.environment == "main" else f"environment {cfg.environment!r}"
    hint = ""
    recipe = next((r for r in envs.RECIPES.values() if cfg.provider in r.providers), None)
    if recipe is not None:
        hint = (
            f" Create its environment with `localml-kit envs create {recipe.name}` "
            f"(envs.create({recipe.name!r})); plans then find it."
        )
    return (
        f"{cfg.provider} is not offered by onnxruntime {version} in {where} "
        f"({cfg.python}; it offers {', '.join(offered)}).{hint}"
    )


def _subgraphs(cfg: Configuration, assignment: Mapping[str, Any] | None) -> int | None:
    """How many pieces (subgraphs) the requested provider runs; None for the CPU provider (it
    reports each node on its own) or when the session did not say."""
    entry = (assignment or {}).get(cfg.provider)
    if cfg.provider == providers.CPU or not entry or "subgraphs" not in entry:
        return None
    return int(entry["subgraphs"])


def _fallback_text(
    cfg: Configuration, assignment: Mapping[str, Any] | None
) -> tuple[str, int | None, int | None, int | None]:
    """(loud message or "", nodes, nodes on the provider, nodes on the CPU) from the assignment."""
    if not assignment:
        return "", None, None, None
    nodes = sum(int(v["nodes"]) for v in assignment.values())
    on = int(assignment.get(cfg.provider, {}).get("nodes", 0))
    cpu = int(assignment.get("CPUExecutionProvider", {}).get("nodes", 0))
    if cfg.provider == "CPUExecutionProvider" or on == nodes:
        return "", nodes, on, cpu
    parts = []
    for provider, entry in assignment.items():
        if provider == cfg.provider:
            continue
        ops = ", ".join(
            f"{op} x{n}" for op, n in sorted(entry["ops"].items(), key=lambda kv: -kv[1])
        )
        parts.append(f"{entry['nodes']} of {nodes} nodes on {short_name(provider)} ({ops})")
    pieces = _subgraphs(cfg, assignment)
    if pieces and pieces > 1:
        parts.append(
            f"{short_name(cfg.provider)} runs the graph as {pieces} subgraphs, with a hand-over "
            "to the CPU provider at every border"
        )
    return f"FALLBACK: {'; '.join(parts)}", nodes, on, cpu


def _last_phase(stdout: Path) -> str:
    try:
        lines = [
            ln for ln in stdout.read_text(errors="replace").splitlines() if ln.startswith("PHASE ")
        ]
    except OSError:
        return "start"
    return lines[-1].split(" ", 1)[1] if lines else "start"


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _job(cfg: Configuration, **keys: Any) -> dict[str, Any]:
    """A worker's job: the configuration, the parts of the kit's provider table the worker needs
    (it runs where localml_kit may not be installed), and ``keys``."""
    return {
        **cfg.to_dict(),
        "gpu_providers": list(providers.GPU_PROVIDERS),
        "graph_optimization_level": providers.ORT_LEVELS[cfg.optimization],
        **keys,
    }


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (0 when it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 1e6


def _run_worker(
    cfg: Configuration, job: dict[str, Any], work: Path, stop: StopFlag | None
) -> dict[str, Any]:
    """Start one worker, wait for it (timeout, stop), and return its result or an error record.

    However the wait ends (done, timeout, stop, Ctrl-C), the worker and its process group
    are gone when this returns or raises, so the caller may remove ``work`` at once.
    """
    tag = f"c{cfg.index}"
    job_path = work / f"{tag}.job.json"
    job_path.write_text(json.dumps(job))
    out_path, stdout, stderr = Path(job["output"]), work / f"{tag}.out", work / f"{tag}.err"
    env = dict(os.environ)
    if cfg.environment != "main":
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
    started = time.time()
    with stdout.open("w") as out_fh, stderr.open("w") as err_fh:
        try:
            proc = _proc.start(
                [cfg.python, WORKER, job_path],
                what=f"the profiling worker for {cfg.label}",
                stdout=out_fh,
                stderr=err_fh,
                env=env,
            )
        except errors.ChildProcessFailedError as exc:
            return {"status": "error", "error": str(exc), "wall_s": time.time() - started}
    outcome = None
    peak_mb = 0.0
    try:
        deadline = time.monotonic() + cfg.timeout_s
        next_rss = 0.0
        while True:
            try:
                proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            if cfg.max_memory_mb and time.monotonic() >= next_rss:
                # Reading the worker tree's RSS costs the measured machine CPU: 4 times a second.
                peak_mb = max(peak_mb, _tree_rss_mb(proc.pid))
                next_rss = time.monotonic() + 0.25
            if stop is not None and stop.is_set():
                outcome = "stopped"
            elif time.monotonic() > deadline:
                outcome = "timeout"
            elif cfg.max_memory_mb and peak_mb > cfg.max_memory_mb:
                outcome = "oom"
            if outcome:
                break
    finally:
        _proc.kill(proc)  # the worker and whatever it started; at once when it already ended
    wall = time.time() - started
    phase = _last_phase(stdout)
    if outcome == "stopped":
        return {"status": "stopped", "error": f"stopped by the user during {phase}", "wall_s": wall}
    if outcome == "oom":
        return {
            "status": "oom",
            "error": (
                f"used {peak_mb:,.0f} MB during {phase}, over the cap of {cfg.max_memory_mb:,.0f} "
                "MB; the worker was killed before the machine ran out of memory. Use a smaller "
                "batch or fewer threads, or raise max_memory_mb (--max-memory)."
            ),
            "wall_s": wall,
        }
    if outcome == "timeout":
        return {
            "status": "timeout",
            "error": (
                f"timed out after {cfg.timeout_s:g} s during {phase}; the worker was killed. "
                "Raise timeout_s, or lower min_iterations / min_seconds."
            ),
            "wall_s": wall,
        }
    try:
        result = json.loads(out_path.read_text())
    except (OSError, ValueError):
        code = proc.returncode
        if code is not None and code < 0:
            why = f"crashed ({_signal_name(-code)}) during {phase}"
            if -code == getattr(signal, "SIGKILL", 9):
                why += " (killed: the machine may have run out of memory)"
        else:
            why = f"exited with code {code} during {phase}"
        tail = _tail(stderr)
        return {"status": "crashed", "error": why + (f": {tail}" if tail else ""), "wall_s": wall}
    result["wall_s"] = wall
    result["started_at"], result["ended_at"] = started, started + wall
    if "worker_started_at" in result and "imported_at" in result:
        result["startup_s"] = float(result["imported_at"]) - started
    return result


def _engine_job(
    cfg: Configuration, ref: models.ModelRef, npz: Path, work: Path, stop: StopFlag | None
) -> dict[str, Any]:
    """Measure a configuration on an engine (tract, onnxruntime-web) through its driver."""
    status = engines.status(cfg.provider)
    if not status.available:
        return {"status": "unavailable", "error": f"the {status.short} engine: {status.reason}"}
    spec = engines.job(
        ref,
        cfg.provider,
        threads=cfg.threads,
        options=cfg.provider_options,
        optimization=cfg.optimization,
    )
    job = _job(
        cfg,
        **spec,
        engine_driver=str(engines.DRIVER),
        inputs=str(npz),
        output=str(work / f"c{cfg.index}.result.json"),
        trace_prefix=str(work / f"c{cfg.index}-trace"),
    )
    job["model"] = cfg.model_path
    return _run_worker(cfg, job, work, stop)


def measure(
    cfg: Configuration,
    ref: models.ModelRef,
    npz: Path,
    work: Path,
    stop: StopFlag | None,
    probes: dict[str, tuple[str, tuple[str, ...]] | str],
) -> dict[str, Any]:
    """Measure one configuration in a fresh worker process (or say why it cannot run here)."""
    if providers.is_engine(cfg.provider):
        return _engine_job(cfg, ref, npz, work, stop)
    probe = _available(cfg.python, probes)
    if isinstance(probe, str) or cfg.provider not in probe[1]:
        res: dict[str, Any] = {"status": "unavailable", "error": _unavailable_reason(cfg, probe)}
        if not isinstance(probe, str):
            res["onnxruntime"] = probe[0]
        return res
    job = _job(
        cfg,
        model=cfg.model_path,
        inputs=str(npz),
        output=str(work / f"c{cfg.index}.result.json"),
        trace_prefix=str(work / f"c{cfg.index}-trace"),
        extra_providers=(
            ["CUDAExecutionProvider"] if cfg.provider == "TensorrtExecutionProvider" else []
        ),
    )
    return _run_worker(cfg, job, work, stop)


def _row(cfg: Configuration, res: Mapping[str, Any], feeds: Feeds | None) -> ProfileRow:
    status = str(res.get("status", "error"))
    row = ProfileRow(
        config=cfg.index,
        label=cfg.label,
        model=cfg.model,
        provider=cfg.provider,
        environment=cfg.environment,
        threads=cfg.threads,
        batch=cfg.batch,
        optimization=cfg.optimization,
        cpu_arena=cfg.cpu_arena,
        spinning=cfg.spinning,
        io_binding=cfg.io_binding,
        inputs=feeds.source if feeds is not None else "none (model unreadable)",
        input_shapes=feeds.shapes_text() if feeds is not None else "",
        dims=feeds.dims_text() if feeds is not None else "",
        input_notes="; ".join(feeds.notes) if feeds is not None else "",
        python=res.get("python", cfg.python),
        model_path=cfg.model_path,
        provider_options={k: str(v) for k, v in cfg.provider_options.items()},
        status=status,
        error=summarise_error(res.get("error")),
        package=providers.package(cfg.provider) if status == "unavailable" else "",
        **{key: res[key] for key in WORKER_FIELDS if key in res},
    )
    if status == "ok" and res.get("measure_s") and res.get("iterations"):
        row.items_per_s = (cfg.batch or 1) * res["iterations"] / res["measure_s"]
    message, row.nodes, row.nodes_on_provider, row.nodes_on_cpu = _fallback_text(
        cfg, res.get("assignment")
    )
    row.fallback = message
    row.subgraphs = _subgraphs(cfg, res.get("assignment"))
    row.cpu_fallback = bool(row.nodes_on_cpu) and cfg.provider != providers.CPU
    notes = []
    if cfg.io_binding and providers.is_engine(cfg.provider):
        notes.append("IO binding is ONNX Runtime's: the engine ran without it")
    ran = res.get("engine_threads")
    if ran and int(ran) != cfg.threads:
        notes.append(f"ran on {ran} thread(s), not {cfg.threads}: the engine sets its own")
    if cfg.provider in providers.GPU_PROVIDERS and status == "ok":
        if res.get("gpu_note"):
            notes.append(res["gpu_note"])
        elif not res.get("gpu_run_peak_mb"):
            notes.append("GPU memory did not grow: check that the GPU really ran")
    if notes:
        row.fallback = "; ".join([message, *notes]) if message else "; ".join(notes)
    trace = res.get("trace")
    if trace:
        try:
            events = _trace.load_trace(trace)
            ops = _trace.operator_times(events, top=TOP_OPERATORS)
            row.top_operators = [
                {
                    "op": str(r["op"]),
                    "provider": short_name(str(r["provider"])) if r["provider"] else "",
                    "ms_per_run": round(float(r["ms_per_run"]), 4),
                    "share": round(float(r["share"]), 4),
                }
                for r in ops.to_dict("records")
            ]
            row.operator_ms_per_run = float(ops["ms_per_run"].sum())
            row.node_times = [
                {str(k): v for k, v in r.items()}
                for r in _trace.node_times(events).to_dict("records")
            ]
            kernels = _trace.kernel_events(events, skip_first_run=False)
            row.nodes_run = int(kernels["node"].nunique())
            if not res.get("assignment"):
                # Older runtimes: fall back to the trace for where nodes ran.
                counts: dict[str, dict[str, Any]] = {}
                ran = kernels.drop_duplicates("node", keep="last")  # the provider it last ran on
                for op, provider in zip(ran["op"], ran["provider"], strict=True):
                    entry = counts.setdefault(provider, {"nodes": 0, "ops": {}})
                    entry["nodes"] += 1
                    entry["ops"][op] = entry["ops"].get(op, 0) + 1
                row.fallback, row.nodes, row.nodes_on_provider, row.nodes_on_cpu = _fallback_text(
                    cfg, counts
                )
                row.cpu_fallback = bool(row.nodes_on_cpu) and cfg.provider != providers.CPU
        except (OSError, ValueError, KeyError) as exc:
            row.error = f"operator trace unreadable: {exc}"
        finally:
            with contextlib.suppress(OSError):
                Path(trace).unlink()
    return row


def _machine(rep: hardware.HardwareReport | None = None) -> dict[str, Any]:
    """The machine a result was measured on (``rep``: a report already read, else read now)."""
    rep = rep if rep is not None else hardware.report()
    return {
        "cpu": rep.cpu_model,
        "physical_cores": rep.cpu_physical_cores,
        "logical_cores": rep.cpu_logical_cores,
        "ram_gb": round(rep.ram_total_bytes / 1024**3, 1),
        "gpus": [g.name for g in rep.gpus],
        "os": rep.os,
        "python": platform.python_version(),
        "onnxruntime": rep.onnxruntime,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def session_memory(
    model: str | os.PathLike[str],
    *,
    count: int = 3,
    provider: str = "cpu",
    threads: int = 1,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
    cpu_arena: bool = True,
    timeout_s: float = 300.0,
) -> pd.DataFrame:
    """Resident memory, in a fresh process, as ``count`` sessions of one model are made, then released.

    Each session holds its own copy of the model, so memory climbs by about the
    model's size per session, and falls again only when sessions are released.
    Returns one row per step: step, sessions (held), rss_mb (above the baseline).

    Example:
        >>> table = session_memory("all-minilm-l6-v2", count=2)
        >>> table[["step", "sessions"]]
                             step  sessions
        0                  before         0
        1  session 1 made and run         1
        2  session 2 made and run         2
        3            one released         1
        4            one released         0
        >>> bool(table.loc[2, "rss_mb"] > table.loc[1, "rss_mb"] > 0)
        True
    """
    plan = Plan(
        {"model": model},
        providers=[provider],
        threads=[threads],
        batches=[batch] if batch else [],
        dims=dict(dims or {}),
        cpu_arena=cpu_arena,
        timeout_s=timeout_s,
        operator_profile=False,
    )
    (cfg,) = plan.configurations()
    if providers.is_engine(cfg.provider):
        raise errors.ConfigError(
            f"session_memory measures ONNX Runtime sessions; {short_name(cfg.provider)} is an "
            "engine: profile it with profile.run(Plan(model, providers=[...])) instead."
        )
    probe = _available(cfg.python, {})
    if isinstance(probe, str) or cfg.provider not in probe[1]:
        raise errors.ProviderUnavailableError(_unavailable_reason(cfg, probe))
    feeds = make_feeds(plan.models["model"], plan, cfg.batch).arrays
    with tempfile.TemporaryDirectory(prefix="localml-sessions-") as tmp:
        work = Path(tmp)
        np.savez(work / "inputs.npz", **feeds)  # type: ignore[arg-type]
        job = _job(
            cfg,
            mode="sessions",
            count=int(count),
            model=cfg.model_path,
            inputs=str(work / "inputs.npz"),
            output=str(work / "result.json"),
        )
        res = _run_worker(cfg, job, work, None)
    if res.get("status") != "ok":
        raise errors.ProfileRunError(
            f"measuring sessions of {model} failed ({res.get('status')}): "
            f"{summarise_error(res.get('error'))}"
        )
    return pd.DataFrame(res["steps"], columns=["step", "sessions", "rss_mb"])


def check_models(plan: Plan) -> dict[str, bool]:
    """Refuse models the profiler cannot take; ``{label: readable}`` (an unreadable ONNX file
    still runs, so that its row carries ONNX Runtime's own message)."""
    readable: dict[str, bool] = {}
    for label, ref in plan.models.items():
        ref.require_onnx("profile")
        if ref.kind == "genai":
            raise errors.ModelFormatError(
                f"{ref.text} is an ONNX Runtime GenAI model (a decoder with a KV cache); "
                "profile it with localml_kit.slm (tokens/s, time to first token), not here.",
                cli=f"{ref.text} is an ONNX Runtime GenAI model (a decoder with a KV cache); "
                "measure it with `localml-kit slm bench`, not here.",
            )
        try:
            ref.io  # noqa: B018 - read the specs once, here
            readable[label] = True
        except errors.ModelFormatError:
            readable[label] = False  # the worker will report ONNX Runtime's own message
    return readable


def write_feeds(
    plan: Plan, configs: list[Configuration], readable: Mapping[str, bool], work: Path
) -> dict[tuple[str, int | None], tuple[Path, Feeds | None]]:
    """The inputs of every (model, batch), made once and saved as ``.npz`` files in ``work``."""
    feeds_files: dict[tuple[str, int | None], tuple[Path, Feeds | None]] = {}
    for cfg in configs:
        key = (cfg.model, cfg.batch)
        if key in feeds_files:
            continue
        npz = work / f"inputs-{len(feeds_files)}.npz"
        if not readable[cfg.model]:
            np.savez(npz)
            feeds_files[key] = (npz, None)
            continue
        feeds = make_feeds(plan.models[cfg.model], plan, cfg.batch)
        np.savez(npz, **feeds.arrays)  # type: ignore[arg-type]
        feeds_files[key] = (npz, feeds)
    return feeds_files


def run(
    plan: Plan,
    *,
    progress: bool = True,
    stop: StopFlag | None = None,
    on_result: Callable[[dict[str, Any], int, int], None] | None = None,
    cluster: Any = None,
    machines: str | Sequence[str] = "all",
    create_envs: bool = False,
    connect_timeout_s: float = 10.0,
) -> ProfileResult:
    """Measure every configuration of ``plan``, each in a fresh process; one row per configuration.

    Inputs are made (or checked) for every model and batch size before
    anything runs, so bad inputs and missing dims fail at once. Then each
    configuration runs in its own worker process with a timeout: a crash, a
    hang or a load failure becomes a row with the error, and the plan goes on.
    A provider that is not available gives an ``unavailable`` row naming the
    package that brings it; nothing silently runs on the CPU instead.

    ``stop`` is anything with ``is_set()`` (a ``threading.Event``): the
    running worker is killed and the remaining configurations are marked
    ``stopped``. ``on_result(row, done, total)`` is called after each one.

    ``cluster`` (a ``dask.distributed`` Client, a cluster such as
    :func:`~localml_kit.profile.local_cluster`, or a scheduler address
    ``"tcp://HOST:8786"``) runs the plan on the cluster's ``machines`` (``"all"``
    or worker names) instead: one row per configuration per machine (the
    ``machine`` column), each measured in a fresh process on that machine, routed by
    the providers its worker advertises as Dask resources, one at a time per machine;
    ``result.machines`` holds each machine's hardware report. A worker that dies
    mid-configuration gives a ``lost`` row; a scheduler not reached within
    ``connect_timeout_s`` raises :class:`~localml_kit.errors.ClusterError`;
    ``create_envs`` creates a provider environment a worker lacks (else its row says
    how). See :mod:`localml_kit.profile._fleet`.

    Example:
        >>> from localml_kit import profile
        >>> plan = profile.Plan("all-minilm-l6-v2", threads=[1], warmup=1, min_iterations=3,
        ...                     min_seconds=0)
        >>> result = profile.run(plan, progress=False)
        >>> row = result.table.iloc[0]
        >>> row["status"], row["provider"], row["fallback"]
        ('ok', 'CPUExecutionProvider', '')
        >>> bool(row["p50_ms"] > 0 and row["load_s"] > 0)
        True
    """
    if cluster is not None:
        from localml_kit.profile import _fleet

        return _fleet.run(
            plan,
            cluster,
            machines=machines,
            progress=progress,
            stop=stop,
            on_result=on_result,
            create_envs=create_envs,
            connect_timeout_s=connect_timeout_s,
        )
    configs = plan.configurations()
    readable = check_models(plan)
    probes: dict[str, tuple[str, tuple[str, ...]] | str] = {}
    records: list[ProfileRow] = []
    with tempfile.TemporaryDirectory(prefix="localml-profile-") as tmp:
        work = Path(tmp)
        feeds_files = write_feeds(plan, configs, readable, work)

        bar = tqdm(total=len(configs), desc="profile", unit="config", disable=not progress)
        stopped = False
        try:
            for cfg in configs:
                npz, made = feeds_files[(cfg.model, cfg.batch)]
                batch = made.batch if made is not None and made.batch is not None else cfg.batch
                cfg = dataclasses.replace(cfg, batch=batch)  # the batch the inputs really have
                bar.set_postfix_str(cfg.label, refresh=True)
                if stopped or (stop is not None and stop.is_set()):
                    stopped = True
                    res: dict[str, Any] = {"status": "stopped", "error": "stopped before it ran"}
                else:
                    res = measure(cfg, plan.models[cfg.model], npz, work, stop, probes)
                    if res.get("status") == "stopped":
                        stopped = True
                row = _row(cfg, res, made)
                records.append(row)
                bar.update(1)
                if on_result is not None:
                    on_result(row.to_dict(), len(records), len(configs))
        finally:
            bar.close()
    return ProfileResult(table=frame(records), plan=plan.to_dict(), machine=_machine())
