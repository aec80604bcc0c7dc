"""A classic-ML classifier served like any other ONNX model: the scikit-learn digits samples.

Example:
    >>> clf = Classifier("digits-mlp")
    >>> x, y = clf.test_set()
    >>> x.shape, clf.evaluate(x, y).accuracy
    ((450, 64), 0.9711)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import errors, models, samples
from localml_kit.apps._session import open_session

__all__ = ["Classifier", "Evaluation"]


@dataclass
class Evaluation:
    """A classifier on labelled rows: accuracy, rows, the time per row, the confusion table.

    ``confusion`` counts true labels (rows) against predicted ones (columns).

    Example:
        >>> Evaluation("m", 0.5, 2, 0.01, 0.02).accuracy
        0.5
    """

    model: str
    accuracy: float
    rows: int
    ms_per_row: float
    batch_ms: float
    confusion: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


class Classifier:
    """Predict classes with an ONNX classifier: a ``label`` output, and ``probabilities`` when it has one.

    Made for scikit-learn models converted with skl2onnx (``zipmap`` off: plain
    arrays), such as the ``digits-mlp`` and ``digits-forest`` samples, whose
    input is 64 pixel values (an 8 x 8 image, 0-16) per row.

    Example:
        >>> clf = Classifier("digits-forest")
        >>> x, y = clf.test_set()
        >>> bool((clf.predict(x[:3])["label"] == y[:3]).all())
        True
        >>> clf.predict(np.zeros((8, 8)))["label"].tolist()  # one 8 x 8 image is one row
        [1]
    """

    def __init__(self, model: Any = "digits-mlp", *, threads: int | None = 1) -> None:
        ref = models.as_ref(model)
        if ref is None:
            raise errors.ModelNotFoundError(
                f"{model!r} does not name a model: give a sample name, a path or a ModelRef."
            )
        self.model = ref.require_onnx("a classifier")
        self.session = open_session(ref, threads=threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise errors.InputError(
                f"{ref.label} has {len(inputs)} inputs; Classifier serves models with one "
                "input of rows."
            )
        self._input = inputs[0]
        names = [o.name for o in self.session.get_outputs()]
        self._label = "label" if "label" in names else names[0]
        self._probs = "probabilities" if "probabilities" in names else None
        width = self._input.shape[-1] if self._input.shape else None
        self.features = width if isinstance(width, int) else None

    def _rows(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if (
            self.features is not None
            and arr.size == self.features
            and arr.shape[-1] != self.features
        ):
            arr = arr.reshape(1, -1)  # one row, or one 8 x 8 image
        elif arr.ndim == 3 and self.features == arr.shape[1] * arr.shape[2]:
            arr = arr.reshape(len(arr), -1)  # a stack of images
        if arr.ndim != 2 or (self.features is not None and arr.shape[1] != self.features):
            raise errors.InputError(
                f"{self.model.label} takes rows of {self.features} values; got shape {arr.shape}."
            )
        return arr

    def predict(self, x: Any) -> pd.DataFrame:
        """One row per input: ``label``, and ``score`` (its probability) when the model gives them.

        ``x`` is rows (n x features), one row, or images whose pixels make a row.
        """
        rows = self._rows(x)
        names = [self._label] + ([self._probs] if self._probs else [])
        outs = self.session.run(names, {self._input.name: rows})
        frame = pd.DataFrame({"label": np.asarray(outs[0]).reshape(-1)})
        if self._probs:
            probs = np.asarray(outs[1])
            frame["score"] = probs.max(axis=1).round(4)
        return frame

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The sample's held-out rows and labels (``x``, ``y``), for a sample with a test set."""
        sample = self.model.sample
        if sample is None or "test-set" not in samples.get(sample).files:
            raise errors.InputError(
                f"{self.model.label} is not a sample with a test set; give your own rows to "
                "evaluate()."
            )
        with np.load(samples.path(sample, "test-set")) as data:
            return data["x"].astype(np.float32), data["y"]

    def evaluate(self, x: Any, y: Any, *, repeats: int = 5) -> Evaluation:
        """Accuracy on labelled rows, and the time per row (one batch, best of ``repeats``)."""
        rows = self._rows(x)
        truth = np.asarray(y).reshape(-1)
        if len(truth) != len(rows):
            raise errors.InputError(f"{len(rows)} rows but {len(truth)} labels.")
        feed = {self._input.name: rows}
        best = float("inf")
        for _ in range(max(1, int(repeats))):
            started = time.perf_counter()
            (labels,) = self.session.run([self._label], feed)
            best = min(best, time.perf_counter() - started)
        predicted = np.asarray(labels).reshape(-1)
        confusion = pd.crosstab(
            pd.Series(truth, name="true"), pd.Series(predicted, name="predicted")
        )
        return Evaluation(
            model=self.model.label,
            accuracy=round(float((predicted == truth).mean()), 4),
            rows=len(rows),
            ms_per_row=round(best * 1000 / len(rows), 5),
            batch_ms=round(best * 1000, 3),
            confusion=confusion,
        )

    def close(self) -> None:
        """Release the session (and the memory of its model)."""
        self.session = None
