"""Adapters that run one set of inputs through anything comparable.

An ONNX file or session (any provider, including one served from another
Python environment, or an engine: ``model.onnx@tract``, ``model.onnx@web``),
a variant made by ``optimize``, a Python callable (a
scikit-learn estimator, a torch module, a function), or recorded outputs: each
becomes a :class:`Runner` with a label, a precision and ``run(feeds)``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import _proc, engines, errors, models, providers

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray] | list[np.ndarray]

CPU = providers.CPU


def onnx_precision(path: str | os.PathLike[str] | models.ModelRef) -> str:
    """The storage precision an ONNX file's operators and weights show: int4, int8, fp16 or fp32.

    Example:
        >>> from localml_kit import samples
        >>> onnx_precision(samples.path("smollm2-135m-instruct", "onnx-int8") / "model.onnx")
        'int8'
    """
    if isinstance(path, models.ModelRef):
        return path.precision
    try:
        return models.read_io(path).precision
    except errors.ModelFormatError:  # not readable here: the session will say why
        return "fp32"


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
    model: models.ModelRef | None = None

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
    model: str | os.PathLike[str] | models.ModelRef,
    *,
    provider: str | None = None,
    label: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
    provider_options: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
) -> Runner:
    """A runner for an ONNX model on a provider: here, or in a provider environment's Python.

    ``provider`` defaults to the one the reference names (``model.onnx@openvino``),
    else the CPU provider. With ``timeout_s`` the model runs in a child process
    that is killed when it takes longer, so a hanging model raises
    :class:`~localml_kit.errors.ChildTimeoutError` instead of freezing the caller.

    Example:
        >>> r = onnx_runner("digits-mlp")
        >>> r.label, r.precision
        ('digits-mlp', 'fp32')
    """
    import onnxruntime as ort

    ref = models.resolve(model).require_onnx("comparing outputs")
    provider = providers.resolve(provider) if provider else ref.provider_name
    label = label or ref.label
    precision = precision or onnx_precision(ref)
    if providers.is_engine(provider):
        return engine_runner(
            ref,
            engine=provider,
            label=label,
            precision=precision,
            threads=threads,
            options=provider_options,
            timeout_s=timeout_s,
        )
    here = provider in ort.get_available_providers()
    if here and timeout_s is None:
        chain: list[Any] = [(provider, dict(provider_options or {}))]
        if provider != CPU:
            chain.append(CPU)
        try:
            session = ort.InferenceSession(
                str(ref.path), _session_options(threads), providers=chain
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise errors.ModelFormatError(
                f"ONNX Runtime cannot load {ref.path}: {str(exc).splitlines()[0][:300]}"
            ) from exc
        runner = _session_runner(session, label, precision)
        runner.model = ref
        return runner
    if here:
        python = sys.executable
    else:
        from localml_kit import envs

        env = envs.find(provider)
        if env is None:
            package = providers.PACKAGES.get(provider, "")
            hint = (
                " Run `localml-kit envs create openvino` to make an environment that serves it."
                if provider == "OpenVINOExecutionProvider"
                else (f" It ships in the {package} package." if package else "")
            )
            raise errors.ProviderUnavailableError(
                f"{provider} is not available in this ONNX Runtime "
                f"({', '.join(ort.get_available_providers())}) nor in a provider environment.{hint}"
            )
        python = env.python
    return env_runner(
        ref,
        python=python,
        provider=provider,
        label=label,
        precision=precision,
        threads=threads,
        provider_options=provider_options,
        timeout=timeout_s if timeout_s is not None else 600,
    )


def engine_runner(
    model: str | os.PathLike[str] | models.ModelRef,
    *,
    engine: str,
    label: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
    options: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
) -> Runner:
    """A runner for an ONNX model on an engine other than ONNX Runtime (tract, onnxruntime-web).

    An engine that cannot run here raises
    :class:`~localml_kit.errors.ProviderUnavailableError` at once, saying what
    is missing. See :func:`localml_kit.engines.run`.

    Example:
        >>> engine_runner("all-minilm-l6-v2", engine="tract").kind
        'tract 0.23.9'
    """
    ref = models.resolve(model).require_onnx("comparing outputs")
    status = engines.require(engine)
    full = status.engine

    def call(batches: list[dict[str, np.ndarray]]) -> list[Outputs]:
        outputs = engines.run(
            ref, batches, engine=full, threads=threads, options=options, timeout_s=timeout_s
        )
        return [dict(o) for o in outputs]

    return Runner(
        label or f"{ref.label}@{status.short}",
        precision or onnx_precision(ref),
        f"{status.short} {status.version}",
        call,
        {s.name: s.dtype for s in ref.io.inputs},
        [o.name for o in ref.io.outputs],
        model=ref,
    )


def env_runner(
    model: str | os.PathLike[str] | models.ModelRef,
    *,
    python: str,
    provider: str,
    label: str,
    precision: str,
    threads: int | None = None,
    provider_options: Mapping[str, Any] | None = None,
    timeout: float = 600,
) -> Runner:
    """A runner that runs the model in a child Python's ONNX Runtime (inputs and outputs as npz).

    The child is killed after ``timeout`` seconds per call.
    """
    ref = models.resolve(model)
    io = ref.io
    inputs = {s.name: s.dtype for s in io.inputs}
    names = [o.name for o in io.outputs]
    worker = Path(__file__).with_name("_env_worker.py")

    def call(batches: list[dict[str, np.ndarray]]) -> list[Outputs]:
        with tempfile.TemporaryDirectory(prefix="localml-compare-") as tmp:
            t = Path(tmp)
            arrays: dict[str, Any] = {
                f"{i}/{k}": v for i, f in enumerate(batches) for k, v in f.items()
            }
            np.savez(t / "in.npz", **arrays)
            job = {
                "model": str(ref.path),
                "provider": provider,
                "provider_options": dict(provider_options or {}),
                "threads": threads,
                "inputs": str(t / "in.npz"),
                "outputs": str(t / "out.npz"),
                "record": str(t / "record.json"),
            }
            (t / "job.json").write_text(json.dumps(job))
            where = "this Python" if python == sys.executable else python
            try:
                _proc.run(
                    [python, str(worker), str(t / "job.json")],
                    what=f"{label} on {providers.short_name(provider)} in {where}",
                    timeout=timeout,
                )
            except errors.ChildTimeoutError as exc:
                raise errors.ChildTimeoutError(
                    f"{label} did not finish within {timeout:g} s on "
                    f"{providers.short_name(provider)} and was stopped: the model may hang on "
                    "these inputs. Give it more time (timeout_s=) or smaller inputs.",
                    cli=f"{label} did not finish within {timeout:g} s on "
                    f"{providers.short_name(provider)} and was stopped: the model may hang on "
                    "these inputs. Give it more time (--timeout) or smaller inputs (--batch, --dims).",
                ) from exc
            except errors.ChildProcessFailedError as exc:
                raise errors.ProviderUnavailableError(str(exc)) from exc
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

    kind = (
        "onnx (child process)"
        if python == sys.executable and provider == CPU
        else (f"onnx@{provider} ({python})")
    )
    runner = Runner(label, precision, kind, call, inputs, names, model=ref)
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


def split_provider(text: str) -> tuple[str, str | None]:
    """``"model.onnx@openvino"`` -> ``("model.onnx", "OpenVINOExecutionProvider")``; no @: None.

    Example:
        >>> split_provider("digits-mlp@cpu")
        ('digits-mlp', 'CPUExecutionProvider')
    """
    return models.split_provider(text)


def as_runner(
    obj: Any,
    *,
    label: str | None = None,
    precision: str | None = None,
    timeout_s: float | None = None,
) -> Runner:
    """Turn anything comparable into a Runner (see the module docstring for the forms).

    Example:
        >>> as_runner("digits-mlp@cpu").kind
        'onnx'
        >>> as_runner({"y": np.zeros(3)}).kind
        'recorded outputs'
    """
    if isinstance(obj, Runner):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], str):
        provider = providers.resolve(obj[1])  # an unknown name fails before the model is read
        base = models.as_ref(obj[0])
        if base is None:
            raise errors.ModelFormatError(
                f"cannot run {type(obj[0]).__name__} on a provider: give a model path, a sample "
                "name or a Variant with (model, provider)."
            )
        ref = base.with_provider(provider)
        return onnx_runner(
            ref,
            label=label or f"{base.label}@{providers.short_name(ref.provider_name)}",
            precision=precision or getattr(obj[0], "precision", None),
            timeout_s=timeout_s,
        )
    found = models.as_ref(obj, label=label)
    if found is not None:
        return onnx_runner(
            found,
            precision=precision or getattr(obj, "precision", None),
            timeout_s=timeout_s,
        )
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
