"""Adapters that run one set of inputs through anything comparable.

An ONNX file or session (any provider, including one served from another
Python environment), a variant made by ``optimize``, a Python callable (a
scikit-learn estimator, a torch module, a function), or recorded outputs: each
becomes a :class:`Runner` with a label, a precision and ``run(feeds)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import errors

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray] | list[np.ndarray]

_INT8_OPS = {
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearMatMul",
    "QLinearConv",
    "ConvInteger",
    "DynamicQuantizeMatMul",
    "QAttention",
    "QGemm",
}
_INT4_OPS = {"MatMulNBits", "GatherBlockQuantized"}
CPU = "CPUExecutionProvider"


def onnx_precision(path: str | os.PathLike[str]) -> str:
    """The storage precision an ONNX file's operators and weights show: int4, int8, fp16 or fp32.

    Example:
        >>> onnx_precision("all-minilm-l6-v2.int8.onnx")  # doctest: +SKIP
        'int8'
    """
    import onnx

    try:
        proto = onnx.load(os.fspath(path), load_external_data=False)
    except Exception:  # not readable here: the session will say why
        return "fp32"
    bits = set()
    ops = set()
    for node in proto.graph.node:
        ops.add(node.op_type)
        if node.op_type == "MatMulNBits":
            bits |= {a.i for a in node.attribute if a.name == "bits"} or {4}
    if ops & _INT4_OPS:
        return "int4" if 4 in bits or not bits else "int8"
    if ops & _INT8_OPS:
        return "int8"
    counts: dict[int, int] = {}
    for init in proto.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        counts[init.data_type] = counts.get(init.data_type, 0) + n
    fp16 = counts.get(onnx.TensorProto.FLOAT16, 0)
    return "fp16" if fp16 > counts.get(onnx.TensorProto.FLOAT, 0) else "fp32"


_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


@dataclass
class Runner:
    """One thing to compare: a label, a precision, the inputs it takes, and ``run(feeds)``.

    ``inputs`` maps input names to numpy dtype names (empty: take every feed as
    given); ``outputs`` lists output names when known (None: the run names them,
    or they follow the reference's order).
    """

    label: str
    precision: str
    kind: str
    call: Callable[[list[dict[str, np.ndarray]]], list[Outputs]]
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def prepare(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """The feeds this runner takes: missing ones raise InputError; floats are cast to its dtype."""
        if not self.inputs:
            return dict(feeds)
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise errors.InputError(
                f"{self.label} needs input{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)}, which {'were' if len(missing) > 1 else 'was'} "
                f"not given (given: {', '.join(feeds) or 'none'}). Pass them in inputs=."
            )
        out = {}
        for name, dtype in self.inputs.items():
            value = np.asarray(feeds[name])
            want = np.dtype(dtype) if dtype in _ORT_TYPES.values() else None
            if want is not None and value.dtype != want:
                if value.dtype.kind == want.kind or (
                    value.dtype.kind in "iu" and want.kind in "iu"
                ):
                    note = f"input {name!r} cast from {value.dtype} to {want}"
                    if note not in self.notes:
                        self.notes.append(note)
                    value = value.astype(want)
                else:
                    raise errors.InputError(
                        f"{self.label}: input {name!r} expects {want}, given {value.dtype}."
                    )
            out[name] = value
        return out

    def run(self, feeds: Sequence[Feeds]) -> list[Outputs]:
        return self.call([self.prepare(f) for f in feeds])


def _session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        so.intra_op_num_threads = int(threads)
    return so


def _session_runner(session: Any, label: str, precision: str) -> Runner:
    names = [o.name for o in session.get_outputs()]
    inputs = {i.name: _ORT_TYPES.get(i.type, i.type) for i in session.get_inputs()}

    def call(batches: list[dict[str, np.ndarray]]) -> list[Outputs]:
        return [dict(zip(names, session.run(names, f), strict=True)) for f in batches]

    providers = session.get_providers()
    kind = "onnx" if providers[0] == CPU else f"onnx@{providers[0]}"
    return Runner(label, precision, kind, call, inputs, names)


def onnx_runner(
    model: str | os.PathLike[str],
    *,
    provider: str = CPU,
    label: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
    provider_options: Mapping[str, Any] | None = None,
) -> Runner:
    """A runner for an ONNX model on a provider: here, or in a provider environment's Python.

    Example:
        >>> r = onnx_runner("digits-mlp")  # doctest: +SKIP
        >>> r.label, r.precision  # doctest: +SKIP
        ('digits-mlp', 'fp32')
    """
    import onnxruntime as ort

    from localml_kit import models

    path = models.resolve(model).path
    text = os.fspath(model)
    label = label or (text if not Path(text).exists() else path.name)
    precision = precision or onnx_precision(path)
    if provider in ort.get_available_providers():
        chain: list[Any] = [(provider, dict(provider_options or {}))]
        if provider != CPU:
            chain.append(CPU)
        try:
            session = ort.InferenceSession(str(path), _session_options(threads), providers=chain)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise errors.ModelFormatError(
                f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:300]}"
            ) from exc
        return _session_runner(session, label, precision)
    from localml_kit import envs

    env = envs.find(provider)
    if env is None:
        from localml_kit import hardware

        package = hardware.PROVIDER_PACKAGES.get(provider, "")
        hint = (
            " Run `localml-kit envs create openvino` to make an environment that serves it."
            if provider == "OpenVINOExecutionProvider"
            else (f" It ships in the {package} package." if package else "")
        )
        raise errors.ProviderUnavailableError(
            f"{provider} is not available in this ONNX Runtime "
            f"({', '.join(ort.get_available_providers())}) nor in a provider environment.{hint}"
        )
    return env_runner(
        path,
        python=env.python,
        provider=provider,
        label=label,
        precision=precision,
        threads=threads,
        provider_options=provider_options,
    )


def env_runner(
    model: str | os.PathLike[str],
    *,
    python: str,
    provider: str,
    label: str,
    precision: str,
    threads: int | None = None,
    provider_options: Mapping[str, Any] | None = None,
    timeout: float = 600,
) -> Runner:
    """A runner that runs the model in another Python's ONNX Runtime (inputs and outputs as npz)."""
    import onnx

    proto = onnx.load(os.fspath(model), load_external_data=False)
    elem = {
        onnx.TensorProto.FLOAT: "float32",
        onnx.TensorProto.FLOAT16: "float16",
        onnx.TensorProto.INT64: "int64",
        onnx.TensorProto.INT32: "int32",
    }
    inits = {i.name for i in proto.graph.initializer}
    inputs = {
        v.name: elem.get(v.type.tensor_type.elem_type, "")
        for v in proto.graph.input
        if v.name not in inits
    }
    names = [o.name for o in proto.graph.output]
    worker = Path(__file__).with_name("_env_worker.py")

    def call(batches: list[dict[str, np.ndarray]]) -> list[Outputs]:
        with tempfile.TemporaryDirectory(prefix="localml-compare-") as tmp:
            t = Path(tmp)
            arrays: dict[str, Any] = {
                f"{i}/{k}": v for i, f in enumerate(batches) for k, v in f.items()
            }
            np.savez(t / "in.npz", **arrays)
            job = {
                "model": os.fspath(model),
                "provider": provider,
                "provider_options": dict(provider_options or {}),
                "threads": threads,
                "inputs": str(t / "in.npz"),
                "outputs": str(t / "out.npz"),
                "record": str(t / "record.json"),
            }
            (t / "job.json").write_text(json.dumps(job))
            try:
                proc = subprocess.run(
                    [python, str(worker), str(t / "job.json")],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise errors.EnvironmentNotReadyError(
                    f"could not run {label} with {python}: {exc}"
                ) from exc
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise errors.ProviderUnavailableError(
                    f"{label} failed in {python} on {provider}: {last[:300]}"
                )
            record = json.loads((t / "record.json").read_text())
            if record["providers"][0] != provider:
                note = f"ran on {record['providers'][0]}, not {provider}"
                if note not in runner.notes:
                    runner.notes.append(note)
            data = np.load(t / "out.npz")
            out: list[Outputs] = [{} for _ in batches]
            for key in data.files:
                index, _, name = key.partition("/")
                out[int(index)][name] = data[key]
            return out

    runner = Runner(label, precision, f"onnx@{provider} ({python})", call, inputs, names)
    return runner


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _normalise(result: Any) -> Outputs:
    if isinstance(result, Mapping):
        return {str(k): _to_numpy(v) for k, v in result.items() if v is not None}
    if isinstance(result, list | tuple):
        return [_to_numpy(v) for v in result]
    return [_to_numpy(result)]


def callable_runner(obj: Any, *, label: str | None = None, precision: str = "fp32") -> Runner:
    """A runner for Python code: a scikit-learn estimator, a torch module, or a function.

    * an estimator (has ``predict``): called on the single input; outputs are
      ``[predict(X), predict_proba(X)]`` (the order skl2onnx uses);
    * a torch module: called with the inputs as keyword tensors under ``no_grad``;
    * any other callable: called with the inputs dict; it returns a dict of named
      arrays, a list/tuple (in the reference's output order) or one array.

    Example:
        >>> r = callable_runner(lambda feeds: {"y": feeds["x"] * 2}, label="double")
        >>> r.run([{"x": np.ones(2)}])[0]["y"].tolist()
        [2.0, 2.0]
    """
    name = label or getattr(obj, "__name__", None) or type(obj).__name__
    module = type(obj).__module__.split(".")[0]
    if hasattr(obj, "predict") and not callable(getattr(obj, "forward", None)):

        def call_est(batches: list[dict[str, np.ndarray]]) -> list[Outputs]:
            out: list[Outputs] = []
            for f in batches:
                if len(f) != 1:
                    raise errors.InputError(
                        f"{name} is an estimator: it takes one input array, given {', '.join(f)}."
                    )
                x = next(iter(f.values()))
                res = [np.asarray(obj.predict(x))]
                if hasattr(obj, "predict_proba"):
                    res.append(np.asarray(obj.predict_proba(x)))
                out.append(res)
            return out

        return Runner(name, precision, f"{module} estimator", call_est)
    if module == "torch" or (hasattr(obj, "forward") and hasattr(obj, "parameters")):

        def call_torch(batches: list[dict[str, np.ndarray]]) -> list[Outputs]:
            import torch

            out: list[Outputs] = []
            with torch.no_grad():
                for f in batches:
                    out.append(_normalise(obj(**{k: torch.from_numpy(v) for k, v in f.items()})))
            return out

        return Runner(name, precision, "torch module", call_torch)
    if not callable(obj):
        raise errors.ModelFormatError(
            f"cannot compare {type(obj).__name__}: give an ONNX path or sample name, a session, "
            "a Variant, (model, provider), a callable, an estimator or a dict of recorded outputs."
        )

    def call_fn(batches: list[dict[str, np.ndarray]]) -> list[Outputs]:
        return [_normalise(obj(dict(f))) for f in batches]

    return Runner(name, precision, "python callable", call_fn)


def recorded_runner(
    outputs: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]],
    *,
    label: str = "recorded",
    precision: str = "fp32",
) -> Runner:
    """A runner that returns outputs recorded earlier (e.g. by PyTorch in another process).

    One mapping for one set of inputs, or one per set, in the same order.

    Example:
        >>> r = recorded_runner({"y": np.zeros(3)})
        >>> r.run([{"x": np.ones(3)}])[0]["y"].shape
        (3,)
    """
    batches = [outputs] if isinstance(outputs, Mapping) else list(outputs)

    def call(feeds: list[dict[str, np.ndarray]]) -> list[Outputs]:
        if len(feeds) != len(batches):
            raise errors.InputError(
                f"{label} holds outputs for {len(batches)} input set(s), but {len(feeds)} were given."
            )
        return [{k: np.asarray(v) for k, v in b.items()} for b in batches]

    return Runner(label, precision, "recorded outputs", call, outputs=list(batches[0]))


def _looks_like_provider(text: str) -> str | None:
    from localml_kit import profile

    try:
        return profile.resolve_provider(text)
    except errors.UnknownProviderError:
        return None


def split_provider(text: str) -> tuple[str, str | None]:
    """``"model.onnx@openvino"`` -> ``("model.onnx", "OpenVINOExecutionProvider")``; no @: None.

    Example:
        >>> split_provider("digits-mlp@cpu")
        ('digits-mlp', 'CPUExecutionProvider')
    """
    head, sep, tail = text.rpartition("@")
    if sep and head and not Path(text).exists():
        provider = _looks_like_provider(tail)
        if provider is not None:
            return head, provider
    return text, None


def as_runner(obj: Any, *, label: str | None = None, precision: str | None = None) -> Runner:
    """Turn anything comparable into a Runner (see the module docstring for the forms).

    Example:
        >>> as_runner("digits-mlp@cpu").kind  # doctest: +SKIP
        'onnx'
    """
    if isinstance(obj, Runner):
        return obj
    if isinstance(obj, str | os.PathLike):
        text, provider = split_provider(os.fspath(obj))
        return onnx_runner(
            text, provider=provider or CPU, label=label or os.fspath(obj), precision=precision
        )
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], str):
        from localml_kit import profile

        provider = profile.resolve_provider(obj[1])
        model: Any = obj[0]
        path: Any = getattr(model, "path", model)
        base = getattr(model, "label", None) or os.fspath(path)
        return onnx_runner(
            path,
            provider=provider,
            label=label or f"{base}@{profile.short_name(provider)}",
            precision=precision or getattr(model, "precision", None),
        )
    if hasattr(obj, "path") and hasattr(obj, "method") and hasattr(obj, "precision"):
        return onnx_runner(obj.path, label=label or obj.label, precision=precision or obj.precision)
    if type(obj).__name__ == "InferenceSession" and hasattr(obj, "get_outputs"):
        path = getattr(obj, "_model_path", None)
        return _session_runner(
            obj,
            label or (Path(path).name if path else "session"),
            precision or (onnx_precision(path) if path else "fp32"),
        )
    if isinstance(obj, Mapping):
        return recorded_runner(obj, label=label or "recorded", precision=precision or "fp32")
    return callable_runner(obj, label=label, precision=precision or "fp32")
