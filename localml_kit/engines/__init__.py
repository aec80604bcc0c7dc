"""Other engines for the same ONNX file: tract, and ONNX Runtime Web in a browser.

An **engine** is a runtime other than this Python's ONNX Runtime that runs the
same ``.onnx`` file. The kit names one where it names a provider, so every
function that takes a model reference takes it too: ``"model.onnx@tract"``,
``"all-minilm-l6-v2@web"`` in :func:`localml_kit.compare.outputs`, and
``providers=["cpu", "tract", "web"]`` in a :class:`localml_kit.profile.Plan`.

* ``tract`` (:mod:`localml_kit.engines.tract`): a Rust engine from PyPI,
  in-process (or in a child process when a time limit is given).
* ``onnxruntime-web`` (aliases ``web``, ``ort-web``;
  :mod:`localml_kit.engines.web`): ONNX Runtime compiled to WebAssembly, in
  headless Chromium, always in a child process.

An engine that cannot run here raises
:class:`~localml_kit.errors.ProviderUnavailableError` saying what is missing
(the package, the npm files, playwright, Chromium).

Example:
    >>> from localml_kit import engines
    >>> from localml_kit import compare
    >>> "tract" in set(engines.table()["name"])
    True
    >>> feeds = compare.sentence_inputs(["A cat sat on the mat.", "It rained all week."])
    >>> out = engines.run("all-minilm-l6-v2", feeds, engine="tract")
    >>> out[0]["sentence_embedding"].shape
    (2, 384)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import _proc, config, envs, errors, hardware, models, providers
from localml_kit.engines import _driver, tract, web

__all__ = [
    "DRIVER",
    "EngineStatus",
    "find_chromium",
    "job",
    "require",
    "run",
    "setup",
    "status",
    "table",
]

DRIVER = Path(_driver.__file__)
find_chromium = config.chromium


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can run here: its version, where it comes from, else why not.

    Example:
        >>> EngineStatus("tract", "tract", False, "", "tract (PyPI)", "", "not installed").available
        False
    """

    engine: str
    short: str
    available: bool
    version: str
    package: str
    where: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _engine(name: str) -> str:
    full = providers.resolve(name)
    if not providers.is_engine(full):
        raise errors.UnknownProviderError(
            f"{name!r} is an ONNX Runtime provider, not an engine; engines: "
            f"{', '.join(providers.ENGINES)}."
        )
    return full


def status(engine: str) -> EngineStatus:
    """Whether ``engine`` (``tract``, ``web``...) can run here, and why not.

    Example:
        >>> status("tract").engine
        'tract'
    """
    full = _engine(engine)
    if full == providers.TRACT:
        why, version, where = tract.reason(), tract.version(), "this Python"
    else:
        why, version, where = web.reason(), web.VERSION, str(web.folder())
    return EngineStatus(
        engine=full,
        short=providers.short_name(full),
        available=not why,
        version=version if not why else "",
        package=providers.package(full),
        where=where if not why else "",
        reason=why,
    )


def require(engine: str) -> EngineStatus:
    """The engine's status, or :class:`~localml_kit.errors.ProviderUnavailableError` saying why
    it cannot run here.

    Example:
        >>> require("tract").version >= "0.23"
        True
    """
    st = status(engine)
    if not st.available:
        raise errors.ProviderUnavailableError(
            f"the {st.short} engine cannot run here: {st.reason}."
        )
    return st


def table() -> pd.DataFrame:
    """Every well-known provider and both engines: available, where, version, what brings it.

    ``kind`` is ``provider`` (an ONNX Runtime execution provider, here or in a
    provider environment) or ``engine``; ``where`` is ``main`` (this Python),
    ``env NAME`` (a provider environment), the engine's folder or this Python.

    Example:
        >>> t = table().set_index("name")
        >>> bool(t.loc["CPUExecutionProvider", "available"]), t.loc["tract", "kind"]
        (True, 'engine')
    """
    import onnxruntime

    rows = []
    hw = hardware.providers_table()
    for name, here, package in zip(hw["provider"], hw["available"], hw["package"], strict=True):
        env = None if here else envs.find(name)
        available = bool(here) or env is not None
        rows.append(
            {
                "name": name,
                "short": providers.short_name(name),
                "kind": "provider",
                "available": available,
                "where": "main" if here else (f"env {env.name}" if env else ""),
                "version": onnxruntime.__version__ if here else (env.onnxruntime if env else ""),
                "package": package,
                "reason": "" if available else f"needs {package or 'its onnxruntime package'}",
            }
        )
    for engine in providers.ENGINES:
        st = status(engine)
        rows.append(
            {
                "name": st.engine,
                "short": st.short,
                "kind": "engine",
                "available": st.available,
                "where": st.where,
                "version": st.version,
                "package": st.package,
                "reason": st.reason,
            }
        )
    return pd.DataFrame(rows)


def job(
    model: str | os.PathLike[str] | models.ModelRef,
    engine: str,
    *,
    threads: int | None = None,
    options: Mapping[str, Any] | None = None,
    optimization: str = "all",
) -> dict[str, Any]:
    """What the engine driver needs to run ``model`` (plain JSON): model, outputs, files, options.

    Example:
        >>> job("all-minilm-l6-v2", "tract")["engine"]
        'tract'
    """
    ref = models.resolve(model).require_onnx(f"the {providers.short_name(_engine(engine))} engine")
    full = _engine(engine)
    out: dict[str, Any] = {
        "engine": full,
        "model": str(ref.path),
        "output_names": [o.name for o in ref.io.outputs],
        "threads": threads,
        "provider_options": {k: str(v) for k, v in dict(options or {}).items()},
        "optimization": optimization,
        "engine_version": tract.version() if full == providers.TRACT else web.VERSION,
    }
    if full == providers.WEB:
        from localml_kit.graph._netron import served_files

        out["web_root"] = str(web.folder())
        out["chromium"] = config.chromium()[0] or ""
        out["data_files"] = {name: str(path) for name, path in served_files(ref.path).items()}
    return out


def _kit_error(exc: _driver.EngineError | str, kind: str) -> errors.LocalMLError:
    message = str(exc)
    if kind == "unavailable":
        return errors.ProviderUnavailableError(message)
    if kind == "load":
        return errors.ModelFormatError(message)
    return errors.EngineRunError(message)


def run(
    model: str | os.PathLike[str] | models.ModelRef,
    inputs: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]],
    *,
    engine: str | None = None,
    threads: int | None = None,
    options: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run input sets through an engine; the outputs of each set, by the graph's output names.

    ``engine`` defaults to the one the reference names (``"m.onnx@tract"``).
    ``options`` for the web engine: ``{"backend": "webgpu"}`` (default
    ``wasm``). ``threads``: ONNX Runtime Web's WebAssembly threads (tract has
    one). tract runs in this process unless ``timeout_s`` is given; the web
    engine always runs in a child process (default limit 600 s), killed with
    the browser past its limit (:class:`~localml_kit.errors.ChildTimeoutError`).

    Raises :class:`~localml_kit.errors.ProviderUnavailableError` when the
    engine cannot run here, :class:`~localml_kit.errors.ModelFormatError` when
    it cannot take the model, :class:`~localml_kit.errors.EngineRunError` when
    it fails on the inputs.

    Example:
        >>> from localml_kit.inputs import inputs_for
        >>> feeds = inputs_for("ppocr-v4-cls", batch=1).arrays
        >>> [v.shape for v in run("ppocr-v4-cls@tract", feeds)[0].values()]
        [(1, 2)]
    """
    ref = models.resolve(model)
    full = _engine(engine or ref.provider_name)
    st = require(full)
    spec = job(ref, full, threads=threads, options=options)
    batches = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    if not batches:
        raise errors.InputError("inputs is an empty list; give at least one dict of arrays.")
    names = spec["output_names"]
    if full == providers.TRACT and timeout_s is None:
        session: _driver.TractSession | None = None
        try:
            session = _driver.TractSession(spec["model"], names)
            results = []
            for feeds in batches:
                values = session.run(None, {k: np.asarray(v) for k, v in feeds.items()})
                keys = (
                    names
                    if len(values) == len(names)
                    else [f"output_{i}" for i in range(len(values))]
                )
                results.append(dict(zip(keys, values, strict=True)))
            return results
        except _driver.EngineError as exc:
            raise _kit_error(exc, exc.kind) from exc
        finally:
            if session is not None:
                session.close()
    return _run_child(ref, st, spec, batches, timeout_s if timeout_s is not None else 600)


def _run_child(
    ref: models.ModelRef,
    st: EngineStatus,
    spec: dict[str, Any],
    batches: list[Mapping[str, np.ndarray]],
    timeout: float,
) -> list[dict[str, np.ndarray]]:
    with tempfile.TemporaryDirectory(prefix="localml-engine-") as tmp:
        t = Path(tmp)
        arrays = {f"{i}/{k}": np.asarray(v) for i, f in enumerate(batches) for k, v in f.items()}
        np.savez(t / "in.npz", **arrays)  # type: ignore[arg-type]
        spec = {
            **spec,
            "inputs": str(t / "in.npz"),
            "outputs": str(t / "out.npz"),
            "record": str(t / "record.json"),
        }
        (t / "job.json").write_text(json.dumps(spec))
        what = f"{ref.label} on the {st.short} engine"
        try:
            _proc.run(
                [sys.executable, str(DRIVER), str(t / "job.json")], what=what, timeout=timeout
            )
        except errors.ChildTimeoutError as exc:
            raise errors.ChildTimeoutError(
                f"{ref.label} did not finish within {timeout:g} s on the {st.short} engine and "
                "was stopped (with its browser, for the web engine): the model may hang on these "
                "inputs. Give it more time (timeout_s=) or smaller inputs.",
                cli=f"{ref.label} did not finish within {timeout:g} s on the {st.short} engine "
                "and was stopped: give it more time (--timeout) or smaller inputs (--batch, --dims).",
            ) from exc
        except errors.ChildProcessFailedError as exc:
            raise errors.EngineRunError(str(exc)) from exc
        record = json.loads((t / "record.json").read_text())
        if record.get("error"):
            raise _kit_error(record["error"], record.get("kind", "run"))
        data = np.load(t / "out.npz")
        out: list[dict[str, np.ndarray]] = [{} for _ in batches]
        for key in data.files:
            index, _, name = key.partition("/")
            out[int(index)][name] = data[key]
        return out


def setup(*, force: bool = False) -> dict[str, str]:
    """Prepare the engines that need a build step (onnxruntime-web from npm); what each one says.

    Usage (it may run npm)::

        setup()  # {'onnxruntime-web': '~/.cache/localml-kit/engines/onnxruntime-web-1.30.0'}
    """
    return {providers.WEB: str(web.setup(force=force))}
