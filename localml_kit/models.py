"""Turn what a user names (a path, a folder, a sample name) into one model file.

Every command that takes a model accepts the same forms:

* a path to an ``.onnx`` or ``.gguf`` file;
* a folder holding exactly one such file (e.g. an ONNX Runtime GenAI folder);
* a sample name, optionally with a variant: ``all-minilm-l6-v2`` or
  ``smollm2-135m-instruct:gguf``.

Example:
    >>> from localml_kit import models
    >>> models.resolve("digits-mlp").name  # doctest: +SKIP
    'model.onnx'
"""

from __future__ import annotations

import os
from pathlib import Path

from localml_kit import errors, samples

__all__ = ["MODEL_SUFFIXES", "resolve", "sample_choices"]

MODEL_SUFFIXES = (".onnx", ".gguf")


def _in_folder(folder: Path, label: str) -> Path:
    found = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise errors.ModelFormatError(
            f"{label} is a folder with no .onnx or .gguf file in it; name a model file instead."
        )
    names = ", ".join(p.name for p in found[:8])
    raise errors.ModelFormatError(
        f"{label} is a folder with {len(found)} model files ({names}); name one of them."
    )


def resolve(model: str | os.PathLike[str]) -> Path:
    """The model file that ``model`` names (a path, a folder with one model, or a sample).

    Raises ModelNotFoundError for a path that does not exist and is not a sample
    name, and SampleNotReadyError for a sample that is not built yet.

    Example:
        >>> resolve("smollm2-135m-instruct:gguf").suffix  # doctest: +SKIP
        '.gguf'
    """
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.exists():
        return _in_folder(path, text) if path.is_dir() else path
    name, _, variant = text.partition(":")
    if name in samples.names():
        target = samples.path(name, variant or None)
        return _in_folder(target, text) if target.is_dir() else target
    known = ", ".join(samples.names())
    raise errors.ModelNotFoundError(
        f"no model at {text!r}: the path does not exist and it is not a sample name "
        f"(samples: {known}; add ':variant' for a variant)."
    )


def sample_choices(formats: tuple[str, ...] = MODEL_SUFFIXES) -> list[str]:
    """Every sample model reference (``name`` or ``name:variant``) whose target is a model file.

    Only samples that are ready are listed.

    Example:
        >>> "digits-mlp" in sample_choices()  # doctest: +SKIP
        True
    """
    choices: list[str] = []
    for name in samples.names():
        status = samples.status(name)
        if not status.ready:
            continue
        sample = samples.get(name)
        for variant in status.variants:
            target = samples.path(name, variant)
            if target.is_dir():
                if not any(p.suffix.lower() in formats for p in target.iterdir()):
                    continue
            elif target.suffix.lower() not in formats:
                continue
            choices.append(name if variant == sample.default_variant else f"{name}:{variant}")
    return choices
