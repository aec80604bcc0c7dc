"""Run an ONNX file on an engine other than this Python's ONNX Runtime: ``python _driver.py JOB.json``.

Two engines, each behind a session with ONNX Runtime's shape
(``run(None, feeds)`` -> outputs in graph order, ``get_providers()``):

* :class:`TractSession`: tract, in this process. tract plans a model for
  concrete input shapes, so the session keeps one runnable per set of shapes.
* :class:`WebSession`: onnxruntime-web's WebAssembly (or WebGPU) backend in
  headless Chromium, driven by playwright. A tiny HTTP server on 127.0.0.1
  serves only the page, the onnxruntime-web files the page loads and the one
  model (with its external data), and answers 403 to a foreign ``Host``; inputs go to the page and outputs come back as base64 of the raw bytes.
  ``measure`` times runs inside the page (``performance.now()``), so the transfer
  is not in the figures.

A standalone script (standard library and numpy; ``tract`` or ``playwright`` for
its engine, ``psutil`` when present): the profiling worker imports it by path,
and the kit runs it as a child process for comparisons. The job names the
engine, the model, the graph's output names, an npz of inputs (keys
``"<feed index>/<input name>"``) and where to write the outputs (same keys) and
a JSON record (engine version, notes, or the error and its kind).
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from localml_kit import _http

TRACT = "tract"
WEB = "onnxruntime-web"

# Chromium flags: headless, no GPU, no background traffic; host names never resolve, so the
# page can reach nothing but 127.0.0.1.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
NO_GPU_ARGS = ["--disable-gpu"]
WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--enable-features=Vulkan"]

# What the page may load from the onnxruntime-web package, per backend: the script and the
# WebAssembly module (plus its loader) that script asks for.
BACKEND_FILES = {
    "wasm": ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": (
        "ort.webgpu.min.js",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
    ),
}
_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".html": "text/html; charset=utf-8",
}
# ONNX Runtime Web's graph-optimization names for the kit's levels.
WEB_LEVELS = {
    "disable": "disabled",
    "basic": "basic",
    "extended": "extended",
    "layout": "layout",
    "all": "all",
}

# numpy dtype name -> (tract's datum type, ONNX Runtime Web's tensor type)
TYPES = {
    "float32": ("f32", "float32"),
    "float64": ("f64", "float64"),
    "float16": ("f16", "float16"),
    "int64": ("i64", "int64"),
    "int32": ("i32", "int32"),
    "int16": ("i16", "int16"),
    "int8": ("i8", "int8"),
    "uint64": ("u64", "uint64"),
    "uint32": ("u32", "uint32"),
    "uint16": ("u16", "uint16"),
    "uint8": ("u8", "uint8"),
    "bool": ("bool", "bool"),
}
_WEB_TO_NUMPY = {web: name for name, (_, web) in TYPES.items()}


class EngineError(Exception):
    """An engine failed. ``kind``: ``unavailable`` (the engine cannot start here), ``load``
    (it cannot take the model) or ``run`` (it failed on these inputs)."""

    def __init__(self, message: str, kind: str = "run") -> None:
        super().__init__(message)
        self.kind = kind


def one_line(text: object, limit: int = 500) -> str:
    """An engine's message made short: no Rust backtrace, one line."""
    text = str(text).split("Stack backtrace:")[0]
    out = " ".join(text.split())
    return out if len(out) <= limit else out[: limit - 3] + "..."


class TractSession:
    """tract on one ONNX file, with ONNX Runtime's ``run(None, feeds)`` shape.

    ``output_names`` are the graph's output names (tract names outputs after
    their nodes); ``feeds`` given here are planned for at once, so load time
    includes tract's optimisation for those shapes.
    """

    def __init__(self, model: str, output_names: list[str], feeds: dict | None = None) -> None:
        try:
            import tract
        except ImportError as exc:
            raise EngineError(
                f"the tract package is not installed in {sys.executable} ({exc}): "
                "pip install 'localml-kit[engines]' (or pip install tract).",
                "unavailable",
            ) from exc
        self._tract = tract
        self.threads = 1
        self.model = model
        self.output_names = list(output_names)
        self.version = str(tract.version())
        self.input_names: list[str] | None = None
        self._plans: dict[tuple, Any] = {}
        self.notes = ["tract runs on one thread here (its Python API has no thread setting)"]
        if feeds is not None:
            self._plan(feeds)

    def get_providers(self) -> list[str]:
        return [TRACT]

    def _load(self) -> Any:
        try:
            model = self._tract.onnx().load(self.model)
        except Exception as exc:
            raise EngineError(f"tract cannot read {self.model}: {one_line(exc)}", "load") from exc
        if self.input_names is None:
            self.input_names = [model.input_name(i) for i in range(model.input_count())]
        return model

    def _plan(self, feeds: dict) -> Any:
        import numpy as np

        model = self._load() if self.input_names is None else None
        names = self.input_names or []
        missing = [n for n in names if n not in feeds]
        if missing:
            raise EngineError(f"tract: inputs {', '.join(missing)} were not given", "run")
        arrays = [np.asarray(feeds[n]) for n in names]
        key = tuple((a.shape, a.dtype.str) for a in arrays)
        if key in self._plans:
            return self._plans[key]
        if model is None:
            model = self._load()
        try:
            for i, array in enumerate(arrays):
                if array.dtype.name not in TYPES:
                    raise EngineError(f"tract: input {names[i]!r} has dtype {array.dtype}", "run")
                dims = [str(d) for d in array.shape]
                model.set_input_fact(i, ",".join([*dims, TYPES[array.dtype.name][0]]))
            runnable = model.into_model().into_runnable()
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(
                f"tract cannot plan {Path(self.model).name} for inputs "
                f"{', '.join(f'{n} {tuple(a.shape)}' for n, a in zip(names, arrays, strict=True))}"
                f": {one_line(exc)}",
                "load",
            ) from exc
        self._plans[key] = runnable
        return runnable

    def run(self, names: Any, feeds: dict) -> list:
        import numpy as np

        runnable = self._plan(feeds)
        arrays = [np.ascontiguousarray(feeds[n]) for n in self.input_names or []]
        try:
            outputs = runnable.run(arrays)
        except Exception as exc:
            raise EngineError(f"tract failed to run: {one_line(exc)}", "run") from exc
        return [o.to_numpy() for o in outputs]

    def close(self) -> None:
        self._plans.clear()


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>localml-kit engine</title>
<link rel="icon" href="data:,"><script src="ort/__SCRIPT__"></script></head>
<body><script>
const TYPED = {float32: Float32Array, float64: Float64Array, float16: Uint16Array,
  int64: BigInt64Array, uint64: BigUint64Array, int32: Int32Array, uint32: Uint32Array,
  int16: Int16Array, uint16: Uint16Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array};
function decode(t) {
  const raw = atob(t.b64), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const Typed = TYPED[t.type];
  const data = new Typed(bytes.buffer, 0, bytes.length / Typed.BYTES_PER_ELEMENT);
  return new ort.Tensor(t.type, data, t.dims);
}
function encode(name, tensor) {
  const d = tensor.data, bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return {name, type: tensor.type, dims: Array.from(tensor.dims), b64: btoa(s)};
}
window.kit = {
  async load(o) {
    let adapterText = "";
    if (o.backend === "webgpu") {
      const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
      if (!adapter) return {error: "this Chromium offers no WebGPU adapter (no GPU, or WebGPU " +
                            "is off): use the wasm backend (the default)", kind: "unavailable"};
      const info = adapter.info || {};
      adapterText = [info.vendor, info.architecture, info.description].filter(x => x).join(" ");
      const software = info.isFallbackAdapter || info.architecture === "swiftshader";
      if (software && !o.software) return {error: "this Chromium's only WebGPU adapter is " +
        adapterText + ", a software emulation on the CPU, so there is no GPU to measure: use " +
        "the wasm backend (the default), or options {backend: 'webgpu', software: 'yes'} to " +
        "time the emulation anyway", kind: "unavailable"};
    }
    if (o.threads) ort.env.wasm.numThreads = o.threads;
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    const t0 = performance.now();
    kit.session = await ort.InferenceSession.create("data/" + encodeURIComponent(o.model),
      {executionProviders: [o.backend], graphOptimizationLevel: o.optimization,
       externalData: o.external.map(name => ({path: name, data: "data/" + name}))});
    return {load_ms: performance.now() - t0, inputs: kit.session.inputNames,
            outputs: kit.session.outputNames, threads: ort.env.wasm.numThreads,
            isolated: self.crossOriginIsolated, adapter: adapterText};
  },
  feeds(list) { const f = {}; for (const t of list) f[t.name] = decode(t); return f; },
  async run(list) {
    const out = await kit.session.run(kit.feeds(list));
    return kit.session.outputNames.map(n => encode(n, out[n]));
  },
  async measure(list, o) {
    const f = kit.feeds(list);
    let t = performance.now();
    await kit.session.run(f);
    const first = performance.now() - t;
    for (let i = 0; i < o.warmup; i++) await kit.session.run(f);
    const samples = [], begin = performance.now();
    while (true) {
      t = performance.now();
      await kit.session.run(f);
      const now = performance.now();
      samples.push(now - t);
      if (samples.length >= o.minIterations && (now - begin) / 1e3 >= o.minSeconds) break;
    }
    return {first_run_ms: first, samples_ms: samples, measure_s: (performance.now() - begin) / 1e3};
  },
};
</script></body></html>
"""


def _handler(routes: dict[str, Path | bytes], hosts: list[str]) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked = [h.strip().lower() for h in self.headers.get_all("Host") or []]
            if len(asked) != 1 or asked[0] not in hosts:
                # DNS rebinding: a page from elsewhere whose name now points at 127.0.0.1.
                self.send_error(403)
                return
            target = routes.get(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
            if target is None:
                self.send_error(404)
                return
            body = target if isinstance(target, bytes) else target.read_bytes()
            suffix = ".html" if isinstance(target, bytes) else target.suffix
            self.send_response(200)
            self.send_header("Content-Type", _CONTENT_TYPES.get(suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            # Cross-origin isolation: SharedArrayBuffer, so WebAssembly may use threads.
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            # The page may fetch from this server only.
            self.send_header("Content-Security-Policy", "connect-src 'self'")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _tree_rss(pid: int) -> float:
    """Resident MB of a process's children (the browser's processes), 0 without psutil."""
    try:
        import psutil
    except ImportError:
        return 0.0
    total = 0
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
    return total / (1024.0 * 1024.0)


class WebSession:
    """onnxruntime-web in headless Chromium, on one ONNX file; ONNX Runtime's ``run`` shape.

    ``root`` is the folder with onnxruntime-web's files; ``backend`` is ``wasm``
    (WebAssembly, the CPU) or ``webgpu``; ``threads`` sets
    ``ort.env.wasm.numThreads`` (None: ONNX Runtime Web's own default).
    """

    def __init__(
        self,
        model: str,
        output_names: list[str],
        *,
        root: str,
        chromium: str,
        threads: int | None = None,
        backend: str = "wasm",
        optimization: str = "all",
        version: str = "",
        data_files: dict[str, str] | None = None,
        software: bool = False,
    ) -> None:
        if backend not in BACKEND_FILES:
            raise EngineError(
                f"onnxruntime-web backend {backend!r} is not one the kit serves; use "
                f"{' or '.join(BACKEND_FILES)}",
                "load",
            )
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise EngineError(
                f"playwright is not installed in {sys.executable} ({exc}): "
                "pip install 'localml-kit[engines]'.",
                "unavailable",
            ) from exc
        self.model = model
        self.output_names = list(output_names)
        self.backend = backend
        self.version = version
        self.notes: list[str] = []
        self._memory: dict[str, Any] = {}
        self._peak = 0.0
        self._sampling = threading.Event()
        files = {f"/ort/{name}": Path(root) / name for name in BACKEND_FILES[backend]}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise EngineError(
                f"onnxruntime-web files are missing: {', '.join(missing)}", "unavailable"
            )
        page = PAGE.replace("__SCRIPT__", BACKEND_FILES[backend][0]).encode()
        # The model under its own name, and the external-data files it names, each by that name.
        data = {name: Path(path) for name, path in dict(data_files or {}).items()}
        data.setdefault(Path(model).name, Path(model))
        routes: dict[str, Path | bytes] = {
            "/": page,
            **files,
            **{f"/data/{name}": path for name, path in data.items()},
        }
        hosts: list[str] = []
        self._server = _http.LocalServer(0, _handler(routes, hosts))
        port = self._server.port
        hosts += [f"127.0.0.1:{port}", f"localhost:{port}"]
        external = [name for name in data if name != Path(model).name]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._playwright = sync_playwright().start()
        self.console: list[str] = []
        try:
            args = CHROMIUM_ARGS + (WEBGPU_ARGS if backend == "webgpu" else NO_GPU_ARGS)
            self._browser = self._playwright.chromium.launch(
                executable_path=chromium, headless=True, args=args
            )
            self._page = self._browser.new_page()
            self._page.on(
                "console", lambda m: self.console.append(m.text) if m.type == "error" else None
            )
            self._page.on("pageerror", lambda e: self.console.append(str(e)))
            self._page.goto(f"http://127.0.0.1:{port}/")
            self._page.wait_for_function("() => window.ort && window.kit", timeout=60_000)
            base = _tree_rss(os.getpid())
            self._start_sampler()
            info = self._page.evaluate(
                "o => kit.load(o)",
                {
                    "backend": backend,
                    "threads": threads,
                    "optimization": WEB_LEVELS.get(optimization, optimization),
                    "model": Path(model).name,
                    "external": external,
                    "software": software,
                },
            )
        except EngineError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            said = f" (the page said: {'; '.join(self.console[-2:])})" if self.console else ""
            raise EngineError(
                f"onnxruntime-web cannot load {Path(model).name}: {one_line(exc)}{said}", "load"
            ) from exc
        peak = self._stop_sampler()
        if info.get("error"):
            self.close()
            raise EngineError(f"onnxruntime-web: {info['error']}", info.get("kind", "load"))
        self.load_s = float(info["load_ms"]) / 1e3
        self.threads = int(info.get("threads") or 1)
        self.input_names = list(info["inputs"])
        self.web_outputs = list(info["outputs"])
        now = _tree_rss(os.getpid())
        if base:
            self._memory = {
                "memory_method": "browser processes (sampled)",
                "baseline_mb": base,
                "load_peak_mb": max(peak, now) - base,
                "session_mb": now - base,
            }
        self.adapter = str(info.get("adapter") or "")
        self.notes.append(
            f"onnxruntime-web {version} {backend} in Chromium, {self.threads} thread(s)"
            + (f", WebGPU adapter {self.adapter}" if self.adapter else "")
        )

    def _start_sampler(self) -> None:
        self._peak = 0.0
        self._sampling.set()

        def sample() -> None:
            while self._sampling.is_set():
                self._peak = max(self._peak, _tree_rss(os.getpid()))
                time.sleep(0.02)

        threading.Thread(target=sample, daemon=True).start()

    def _stop_sampler(self) -> float:
        self._sampling.clear()
        return self._peak

    def get_providers(self) -> list[str]:
        return [WEB]

    def _tensors(self, feeds: dict) -> list[dict[str, Any]]:
        import numpy as np

        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise EngineError(f"onnxruntime-web: inputs {', '.join(missing)} were not given")
        out = []
        for name in self.input_names:
            array = np.ascontiguousarray(feeds[name])
            if array.dtype.name not in TYPES:
                raise EngineError(f"onnxruntime-web: input {name!r} has dtype {array.dtype}")
            out.append(
                {
                    "name": name,
                    "type": TYPES[array.dtype.name][1],
                    "dims": list(array.shape),
                    "b64": base64.b64encode(array.tobytes()).decode("ascii"),
                }
            )
        return out

    def _evaluate(self, script: str, *args: Any) -> Any:
        try:
            return self._page.evaluate(script, list(args) if len(args) > 1 else args[0])
        except Exception as exc:
            said = f" (the page said: {'; '.join(self.console[-2:])})" if self.console else ""
            raise EngineError(f"onnxruntime-web failed to run: {one_line(exc)}{said}") from exc

    def run(self, names: Any, feeds: dict) -> list:
        import numpy as np

        got = self._evaluate("list => kit.run(list)", self._tensors(feeds))
        by_name = {}
        for t in got:
            dtype = np.dtype(_WEB_TO_NUMPY.get(t["type"], "uint8"))
            raw = base64.b64decode(t["b64"])
            by_name[t["name"]] = np.frombuffer(raw, dtype=dtype).reshape(t["dims"]).copy()
        return [by_name[n] for n in self.web_outputs]

    def measure(
        self, feeds: dict, warmup: int, min_iterations: int, min_seconds: float
    ) -> tuple[float, list[int], float]:
        """(first run ms, samples in ns, seconds measured), timed inside the page."""
        base = self._memory.get("baseline_mb", 0.0)
        self._start_sampler()
        got = self._evaluate(
            "([list, o]) => kit.measure(list, o)",
            self._tensors(feeds),
            {"warmup": warmup, "minIterations": min_iterations, "minSeconds": min_seconds},
        )
        peak = self._stop_sampler()
        if base:
            self._memory["run_peak_mb"] = max(peak, _tree_rss(os.getpid())) - base
        samples = [round(ms * 1e6) for ms in got["samples_ms"]]
        return float(got["first_run_ms"]), samples, float(got["measure_s"])

    def memory_report(self) -> dict[str, Any]:
        """The browser processes' memory above the loaded page (psutil), else empty."""
        return dict(self._memory)

    def close(self) -> None:
        self._sampling.clear()
        for step in (
            lambda: self._browser.close(),
            lambda: self._playwright.stop(),
            lambda: self._server.shutdown(),
            lambda: self._server.server_close(),
        ):
            with contextlib.suppress(Exception):
                step()


def open_session(job: dict, feeds: dict | None = None) -> TractSession | WebSession:
    """The session for ``job["engine"]`` on ``job["model"]`` (``feeds``: plan for them now)."""
    engine = job["engine"]
    if engine == TRACT:
        return TractSession(job["model"], job["output_names"], feeds)
    if engine == WEB:
        options = dict(job.get("provider_options") or {})
        threads = job.get("threads")
        return WebSession(
            job["model"],
            job["output_names"],
            root=job["web_root"],
            chromium=job["chromium"],
            threads=int(threads) if threads else None,
            backend=str(options.get("backend", "wasm")),
            software=str(options.get("software", "")).lower() in ("1", "true", "yes"),
            optimization=str(job.get("optimization", "all")),
            version=str(job.get("engine_version", "")),
            data_files=job.get("data_files"),
        )
    raise EngineError(f"unknown engine {engine!r}", "unavailable")


def main(job_path: str) -> int:
    """Run every input set of a job through its engine; write the outputs and a record."""
    import numpy as np

    with open(job_path) as fh:
        job = json.load(fh)
    record: dict[str, Any] = {"engine": job["engine"]}
    session = None
    try:
        data = np.load(job["inputs"])
        feeds: dict[int, dict] = {}
        for key in data.files:
            index, _, name = key.partition("/")
            feeds.setdefault(int(index), {})[name] = data[key]
        session = open_session(job)
        record["version"] = session.version
        names = session.output_names
        out: dict[str, Any] = {}
        for index in sorted(feeds):
            values = session.run(None, feeds[index])
            if len(values) != len(names):
                names = [f"output_{i}" for i in range(len(values))]
            for name, value in zip(names, values, strict=True):
                out[f"{index}/{name}"] = np.asarray(value)
        np.savez(job["outputs"], **out)
        record["outputs"] = names
        record["notes"] = list(session.notes)
    except EngineError as exc:
        record["error"], record["kind"] = str(exc), exc.kind
    finally:
        if session is not None:
            session.close()
    with open(job["record"], "w") as fh:
        json.dump(record, fh)
    return 0


if __name__ == "__main__":
    # Run as a script, this folder is first on sys.path, and its tract.py would hide the package.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.exit(main(sys.argv[1]))
