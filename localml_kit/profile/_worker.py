"""Measure one profiling configuration in a fresh process: ``python _worker.py JOB.json``.

A standalone script: it imports only the standard library, numpy and
onnxruntime (psutil and pynvml when present), because it also runs inside
provider environments (e.g. one with onnxruntime-openvino) where localml_kit
is not installed. It reads the job, writes a result JSON next to it, and
prints ``PHASE <name>`` lines so that the parent can tell where a crash happened.
What it would otherwise import from the kit comes in the job: ``gpu_providers``
(the providers whose memory lives on a GPU) and ``graph_optimization_level``
(the ``onnxruntime.GraphOptimizationLevel`` member to use).

An engine (``job["engine"]``: tract, onnxruntime-web) is measured the same way
through the kit's engine driver (``job["engine_driver"]``, a standalone script
imported by path), whose sessions have ONNX Runtime's ``run`` shape; the web
engine times its runs inside the page and reports its browser's memory.

Phases: start, import, load, first-run, warm-up, measure, profile, done.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import re
import sys
import threading
import time
import traceback
from typing import Any

STARTED_AT = time.time()

MB = 1024.0 * 1024.0


def phase(name):
    print(f"PHASE {name}", flush=True)


class Memory:
    """Resident memory of this process: current, and the peak since the last reset.

    On Linux the kernel keeps the peak (VmHWM) and lets a process reset it
    (writing 5 to /proc/self/clear_refs), so phases get clean peaks with no
    sampling thread. Elsewhere a psutil thread samples every 2 ms.
    """

    def __init__(self):
        self.method = "none"
        self._peak = 0
        self._stop = threading.Event()
        self._thread = None
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self._status("VmHWM")
            self.method = "vmhwm"
            return
        except (OSError, ValueError):
            pass
        try:
            import psutil

            self._proc = psutil.Process()
            self.method = "sampled"
            self._peak = self.rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        except ImportError:
            pass

    @staticmethod
    def _status(key):
        with open("/proc/self/status") as fh:
            text = fh.read()
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", text, re.M)
        if not match:
            raise ValueError(key)
        return int(match.group(1)) * 1024

    def rss(self):
        if self.method == "vmhwm":
            return self._status("VmRSS")
        if self.method == "sampled":
            return self._proc.memory_info().rss
        return 0

    def _sample(self):
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, self.rss())

    def reset_peak(self):
        if self.method == "vmhwm":
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        else:
            self._peak = self.rss()

    def peak(self):
        if self.method == "vmhwm":
            return self._status("VmHWM")
        if self.method == "sampled":
            return max(self._peak, self.rss())
        return 0

    def close(self):
        self._stop.set()


class GpuMemory:
    """GPU memory through NVML: this process's own use when NVML lists it, else the device's.

    In containers NVML often cannot map processes to our PID; the device's used
    memory (above what was used before the session) stands in for it then.
    """

    def __init__(self, device):
        import pynvml

        self.nvml = pynvml
        pynvml.nvmlInit()
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(int(device))
        name = pynvml.nvmlDeviceGetName(self.handle)
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        self.pid = os.getpid()
        self.base = self._device()
        self._lock = threading.Lock()
        self._peak_device = self.base
        self._peak_process = None  # type: int | None
        self.reset_peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _device(self):
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used)

    def _process(self):
        try:
            procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except self.nvml.NVMLError:
            return None
        mine = [p.usedGpuMemory for p in procs if p.pid == self.pid and p.usedGpuMemory]
        return sum(mine) if mine else None

    def sample(self):
        device, process = self._device(), self._process()
        with self._lock:
            self._peak_device = max(self._peak_device, device)
            if process is not None:
                self._peak_process = max(self._peak_process or 0, process)

    def _sample(self):
        while not self._stop.wait(0.02):
            with contextlib.suppress(Exception):
                self.sample()

    def reset_peak(self):
        with self._lock:
            self._peak_device = self._device()
            self._peak_process = self._process()

    def peak_mb(self):
        """(peak MB since the last reset, "process" or "device")."""
        self.sample()
        with self._lock:
            if self._peak_process is not None:
                return self._peak_process / MB, "process"
            return (self._peak_device - self.base) / MB, "device"

    def close(self):
        self._stop.set()
        with contextlib.suppress(Exception):
            self.nvml.nvmlShutdown()


def session_options(ort, job, profiling=False, prefix=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(job["threads"])
    so.inter_op_num_threads = 1
    member = job["graph_optimization_level"]
    level = getattr(ort.GraphOptimizationLevel, member, None)
    if level is None:
        raise ValueError(
            f"this onnxruntime has no optimization level {job['optimization']!r} ({member})"
        )
    so.graph_optimization_level = level
    so.enable_cpu_mem_arena = bool(job["cpu_arena"])
    spin = "1" if job["spinning"] else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    if job.get("strict"):
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.log_severity_level = 3
    if profiling:
        so.enable_profiling = True
        so.profile_file_prefix = prefix
    return so


def provider_list(job):
    providers = [(job["provider"], {k: str(v) for k, v in job["provider_options"].items()})]
    for extra in job.get("extra_providers", []):
        providers.append((extra, {}))
    # strict: no CPU provider behind (ONNX Runtime refuses the pair with fallback disabled).
    if job["provider"] != "CPUExecutionProvider" and not job.get("strict"):
        providers.append(("CPUExecutionProvider", {}))
    return providers


def assignment(session):
    """Where the session placed its nodes, from one query of ONNX Runtime (None, None without it).

    ``({provider: {"nodes": n, "ops": {op_type: count}, "subgraphs": k}}, {node name: provider})``.
    """
    try:
        info = session.get_provider_graph_assignment_info()
    except Exception:
        return None, None
    out = {}  # type: dict
    placed = {}  # type: dict
    for subgraph in info:
        entry = out.setdefault(subgraph.ep_name, {"nodes": 0, "ops": {}, "subgraphs": 0})
        entry["subgraphs"] += 1
        for node in subgraph.get_nodes():
            entry["nodes"] += 1
            entry["ops"][node.op_type] = entry["ops"].get(node.op_type, 0) + 1
            if node.name:
                placed[node.name] = subgraph.ep_name
    return out or None, placed or None


def stats(np, samples_ns):
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
    }


def bound_run(ort, session, feeds, job):
    """``run(names, feeds)`` through IO binding: inputs on the provider's device once, outputs
    bound there; after the first run the outputs it made are bound again, so runs reuse them."""
    gpu = job["provider"] in job["gpu_providers"]
    device = "cuda" if gpu else "cpu"
    device_id = int(job["provider_options"].get("device_id", 0)) if gpu else 0
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_ortvalue_input(
            name, ort.OrtValue.ortvalue_from_numpy(value, device, device_id)
        )
    names = [o.name for o in session.get_outputs()]
    for name in names:
        binding.bind_output(name, device, device_id)
    state = {"bound": False}

    def run(_names, _feeds):
        session.run_with_iobinding(binding)
        if not state["bound"]:
            for name, value in zip(names, binding.get_outputs(), strict=True):
                binding.bind_ortvalue_output(name, value)
            state["bound"] = True

    return run


def create_session(ort, job, so):
    """A session plus whatever ORT printed while making it (its 'EP Error' fallback notice)."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        session = ort.InferenceSession(job["model"], so, providers=provider_list(job))
    return session, captured.getvalue()


def load_driver(path):
    """The kit's engine driver (a standalone script), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("localml_engine_driver", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the engine driver {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(job, result):
    phase("import")
    import numpy as np

    engine = job.get("engine")
    driver: Any = None
    ort: Any = None
    if engine:
        driver = load_driver(job["engine_driver"])
        result["imported_at"] = time.time()
        result["onnxruntime"] = f"{engine} {job.get('engine_version', '')}".strip()
        result["available_providers"] = [engine]
    else:
        import onnxruntime

        ort = onnxruntime
        result["imported_at"] = time.time()
        result["onnxruntime"] = ort.__version__
        result["available_providers"] = list(ort.get_available_providers())
    provider = job["provider"]
    on_gpu = provider in job["gpu_providers"]
    if provider not in result["available_providers"]:
        result["status"] = "unavailable"
        result["error"] = (
            f"{provider} is not offered by onnxruntime {ort.__version__} in {sys.executable} "
            f"(it offers {', '.join(result['available_providers'])})"
        )
        return
    if on_gpu and ort is not None and hasattr(ort, "preload_dlls"):
        with contextlib.suppress(Exception):
            ort.preload_dlls()
    with np.load(job["inputs"]) as data:
        feeds = {name: data[name] for name in data.files}
    gc.collect()
    mem = Memory()
    result["memory_method"] = mem.method
    gpu = None
    if on_gpu:
        try:
            gpu = GpuMemory(job["provider_options"].get("device_id", 0))
            result["gpu_name"] = gpu.name
        except Exception as exc:  # no pynvml, no driver: say so, measure the rest
            result["gpu_note"] = f"no NVML reading ({type(exc).__name__}: {exc})"
    baseline = mem.rss()
    result["baseline_mb"] = baseline / MB

    phase("load")
    mem.reset_peak()
    start = time.perf_counter()
    try:
        if driver is not None:
            session, printed = driver.open_session(job, feeds), ""
        else:
            session, printed = create_session(ort, job, session_options(ort, job))
    except Exception as exc:
        unavailable = getattr(exc, "kind", "") == "unavailable"
        result["status"] = "unavailable" if unavailable else "load-failed"
        result["error"] = str(exc)
        return
    # An engine in a browser reports the session's own creation, without the browser's start.
    result["load_s"] = getattr(session, "load_s", None) or time.perf_counter() - start
    result["load_peak_mb"] = (mem.peak() - baseline) / MB
    result["session_mb"] = (mem.rss() - baseline) / MB
    if gpu is not None:
        result["gpu_load_peak_mb"], result["gpu_memory_method"] = gpu.peak_mb()
    result["session_providers"] = list(session.get_providers())
    result["assignment"], result["node_providers"] = assignment(session)
    if provider not in result["session_providers"]:
        notice = " ".join(
            line.strip()
            for line in printed.splitlines()
            if line.strip("* \n") and not line.strip().startswith(("when using", "Falling back"))
        )
        result["status"] = "fell-back"
        result["error"] = (
            f"ONNX Runtime could not use {provider} and fell back to "
            f"{', '.join(result['session_providers'])}; nothing was measured. {notice}"
        ).strip()
        return

    mem.reset_peak()
    if gpu is not None:
        gpu.reset_peak()
    try:
        min_iterations = int(job["min_iterations"])
        min_seconds = float(job["min_seconds"])
        result["warmup"] = int(job["warmup"])
        if hasattr(session, "measure"):  # an engine that times its own runs (in the browser)
            phase("measure")
            first_ms, samples_ns, result["measure_s"] = session.measure(
                feeds, int(job["warmup"]), min_iterations, min_seconds
            )
            result["first_run_ms"] = first_ms
        else:
            run = session.run
            if job.get("io_binding") and ort is not None:
                run = bound_run(ort, session, feeds, job)
            phase("first-run")
            start = time.perf_counter()
            run(None, feeds)
            result["first_run_ms"] = (time.perf_counter() - start) * 1e3
            phase("warm-up")
            for _ in range(int(job["warmup"])):
                run(None, feeds)
            phase("measure")
            clock = time.perf_counter_ns
            samples_ns = []
            begin = time.perf_counter()
            while True:
                t0 = clock()
                run(None, feeds)
                samples_ns.append(clock() - t0)
                if len(samples_ns) >= min_iterations and time.perf_counter() - begin >= min_seconds:
                    break
            result["measure_s"] = time.perf_counter() - begin
    except Exception as exc:
        result["status"] = "run-failed"
        result["error"] = str(exc)
        if hasattr(session, "close"):
            session.close()
        return
    result["run_peak_mb"] = (mem.peak() - baseline) / MB
    if gpu is not None:
        result["gpu_run_peak_mb"], result["gpu_memory_method"] = gpu.peak_mb()
        gpu.close()
    mem.close()
    result.update(stats(np, samples_ns))
    result["iterations"] = len(samples_ns)
    keep = int(job.get("max_samples", 5000))
    chosen = samples_ns
    if len(samples_ns) > keep:
        idx = np.linspace(0, len(samples_ns) - 1, keep).round().astype(int)
        chosen = [samples_ns[i] for i in idx]
    result["latencies_ms"] = [round(v / 1e6, 5) for v in chosen]
    result["status"] = "ok"
    if hasattr(session, "memory_report"):  # the browser's processes, not this one's
        report = session.memory_report()
        for key in ("baseline_mb", "load_peak_mb", "session_mb", "run_peak_mb"):
            result[key] = report.get(key)
        result["memory_method"] = report.get("memory_method", "none")
    if driver is not None:
        result["engine_threads"] = getattr(session, "threads", None)
    if hasattr(session, "close"):
        session.close()
    del session
    gc.collect()

    if job.get("operator_profile") and ort is not None:
        phase("profile")
        try:
            so = session_options(ort, job, profiling=True, prefix=job["trace_prefix"])
            session, _ = create_session(ort, job, so)
            p50_s = result["p50_ms"] / 1e3
            runs = int(min(50, max(3, float(job.get("profile_seconds", 0.5)) / max(p50_s, 1e-6))))
            for _ in range(runs + 1):
                session.run(None, feeds)
            result["trace"] = session.end_profiling()
        except Exception as exc:
            result["trace_error"] = f"{type(exc).__name__}: {exc}"


def sessions(job, result):
    """Memory as sessions of one model are created (and run once), then released one by one."""
    phase("import")
    import numpy as np
    import onnxruntime as ort

    result["onnxruntime"] = ort.__version__
    with np.load(job["inputs"]) as data:
        feeds = {name: data[name] for name in data.files}
    gc.collect()
    mem = Memory()
    result["memory_method"] = mem.method
    baseline = mem.rss()
    steps = [{"step": "before", "sessions": 0, "rss_mb": 0.0}]
    held = []
    phase("load")
    for i in range(int(job["count"])):
        session, _ = create_session(ort, job, session_options(ort, job))
        if job["provider"] not in session.get_providers():
            result["status"] = "fell-back"
            result["error"] = f"ONNX Runtime could not use {job['provider']}"
            return
        session.run(None, feeds)
        held.append(session)
        steps.append(
            {
                "step": f"session {i + 1} made and run",
                "sessions": len(held),
                "rss_mb": (mem.rss() - baseline) / MB,
            }
        )
    del session
    while held:
        held.pop()
        gc.collect()
        steps.append(
            {"step": "one released", "sessions": len(held), "rss_mb": (mem.rss() - baseline) / MB}
        )
    result["steps"] = steps
    result["status"] = "ok"


def main(argv):
    phase("start")
    with open(argv[1]) as fh:
        job = json.load(fh)
    result = {"status": "error", "error": None, "python": sys.executable, "started_at": STARTED_AT}
    try:
        if job.get("mode") == "sessions":
            sessions(job, result)
        else:
            measure(job, result)
    except Exception:
        result["status"] = "error"
        result["error"] = traceback.format_exc(limit=3)
    result["worker_started_at"] = STARTED_AT
    tmp = job["output"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, job["output"])
    phase("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
