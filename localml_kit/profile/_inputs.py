"""Model inputs for profiling: the kit's one input maker lives in :mod:`localml_kit.inputs`."""

from __future__ import annotations

import os
from pathlib import Path

from localml_kit.inputs import check, fit_batch, resolve_shapes, synthesize
from localml_kit.models import InputSpec, read_io

__all__ = [
    "InputSpec",
    "check",
    "fit_batch",
    "is_genai_folder",
    "read_specs",
    "resolve_shapes",
    "synthesize",
]


def read_specs(model: str | os.PathLike[str]) -> tuple[list[InputSpec], dict[str, str]]:
    """The graph inputs of an ONNX file (initializers excluded) and its metadata properties."""
    io = read_io(model)
    return list(io.inputs), dict(io.metadata)


def is_genai_folder(path: Path) -> bool:
    """True for an ONNX Runtime GenAI model folder (a decoder with a KV cache)."""
    folder = path if path.is_dir() else path.parent
    return (folder / "genai_config.json").is_file()
