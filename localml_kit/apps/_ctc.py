"""CTC greedy decoding: a recognizer's per-step class probabilities to text.

A CTC recognizer outputs, for each horizontal step of the line image, a
probability for every character plus a *blank*. Greedy decoding takes the most
likely class at each step, merges repeats, and drops blanks: ``--hh-e-ll-ll-o``
reads ``hello`` (the blank between the two ``l`` runs keeps both).

Example:
    >>> chars = ["", "h", "e", "l", "o"]
    >>> steps = [0, 1, 1, 0, 2, 3, 3, 0, 3, 4]
    >>> probs = np.eye(5, dtype=np.float32)[steps]
    >>> ctc_greedy(probs, chars)
    [('hello', 1.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from localml_kit import errors

__all__ = ["ctc_greedy", "recognizer_characters"]


def recognizer_characters(metadata: Mapping[str, str], classes: int | None = None) -> list[str]:
    """A PaddleOCR recognizer's classes from its ONNX metadata: blank, the ``character`` list, space.

    PaddleOCR stores the character list (one per line) under ``character``; class
    0 is the CTC blank and the last class a space. ``classes`` (the output's
    last dim) is checked when given.

    Example:
        >>> recognizer_characters({"character": "a\\nb"})
        ['', 'a', 'b', ' ']
    """
    text = metadata.get("character")
    if not text:
        raise errors.ModelFormatError(
            "the recognizer has no 'character' list in its metadata: give the characters "
            "(one per class, blank first) yourself."
        )
    chars = ["", *text.splitlines(), " "]
    if classes is not None and classes != len(chars):
        raise errors.ModelFormatError(
            f"the recognizer outputs {classes} classes, but its metadata lists {len(chars) - 2} "
            f"characters (+ blank + space = {len(chars)}): the model and its character list "
            "do not belong together."
        )
    return chars


def ctc_greedy(
    probs: np.ndarray, characters: Sequence[str], *, blank: int = 0
) -> list[tuple[str, float]]:
    """Decode per-step probabilities (lines x steps x classes, or steps x classes) to (text, score).

    The score is the mean probability of the characters kept (0.0 for an empty
    line).

    Example:
        >>> ctc_greedy(np.eye(3, dtype=np.float32)[[0, 0]], ["", "a", "b"])
        [('', 0.0)]
    """
    arr = np.asarray(probs)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise errors.InputError(
            f"CTC decoding takes lines x steps x classes probabilities; got shape {arr.shape}."
        )
    if arr.shape[2] != len(characters):
        raise errors.InputError(
            f"the probabilities have {arr.shape[2]} classes but {len(characters)} characters "
            "were given."
        )
    best = arr.argmax(axis=2)
    confidence = arr.max(axis=2)
    out = []
    for idx, conf in zip(best, confidence, strict=True):
        keep = idx != blank
        keep[1:] &= idx[1:] != idx[:-1]
        text = "".join(characters[i] for i in idx[keep])
        score = float(conf[keep].mean()) if keep.any() else 0.0
        out.append((text, score))
    return out
