"""What the app runs on, resolved once: the model file, its tokenizer, where it came from."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localml_kit import errors, models, samples

DEFAULT_MODEL = "all-minilm-l6-v2"
TOKENIZER = "tokenizer.json"


@dataclass(frozen=True)
class AppModel:
    """A sentence encoder ready for the app: the ONNX file, its ``tokenizer.json``, a label.

    ``sample`` is the sample the model is (or, for an optimize ``Variant``, was
    made from): its card gives the licence. ``method`` and ``checked`` come from
    a ``Variant`` (how it was made; its comparison's verdict, None if not compared).
    """

    ref: models.ModelRef
    tokenizer: Path
    label: str
    sample: str | None = None
    method: str | None = None
    checked: bool | None = None
    check_note: str = ""

    @property
    def path(self) -> Path:
        return self.ref.path


def _sample_of(path: Path) -> str | None:
    """The ready sample whose variant is the file at ``path``, else None."""
    try:
        target = path.resolve()
    except OSError:
        return None
    for name in samples.names():
        for variant in samples.get(name).variants:
            try:
                if samples.path(name, variant).resolve() == target:
                    return name
            except (errors.LocalMLError, OSError):
                break  # not ready: none of its variants is on disk
    return None


def app_model(
    model: Any = DEFAULT_MODEL, tokenizer: str | os.PathLike[str] | None = None
) -> AppModel:
    """Resolve a model (a path, a sample, a ModelRef, an optimize ``Variant``) and find its tokenizer.

    The tokenizer is ``tokenizer`` when given, else a ``tokenizer.json`` next to
    the model, else next to the model a ``Variant`` was made from, else the
    sample's own. None found raises :class:`~localml_kit.errors.ModelNotFoundError`.

    Example:
        >>> m = app_model("all-minilm-l6-v2")
        >>> m.path.name, m.tokenizer.name, m.sample, m.method
        ('model.onnx', 'tokenizer.json', 'all-minilm-l6-v2', None)
    """
    ref = models.as_ref(model)
    if ref is None:
        raise errors.ConfigError(
            f"cannot serve a {type(model).__name__}: give a model path, a sample name, a "
            "ModelRef or an optimize Variant."
        )
    ref.require_onnx("serving")
    if ref.kind != "onnx":
        raise errors.ModelFormatError(
            f"{ref.text} is an ONNX Runtime GenAI model; the service runs sentence encoders "
            "(e.g. all-minilm-l6-v2). Chat with language models through slm.Chat."
        )
    source = getattr(model, "source", None) if hasattr(model, "method") else None
    sample = ref.sample or _sample_of(ref.path) or (_sample_of(Path(source)) if source else None)
    candidates = [ref.folder / TOKENIZER]
    if source:
        candidates.append(Path(source).parent / TOKENIZER)
    if sample and "tokenizer" in samples.get(sample).files:
        candidates.append(samples.path(sample, "tokenizer"))
    if tokenizer is not None:
        candidates = [Path(tokenizer).expanduser()]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        where = ", ".join(str(p) for p in candidates)
        raise errors.ModelNotFoundError(
            f"no tokenizer for {ref.label} (looked for {where}): pass tokenizer='path/to/"
            "tokenizer.json' (--tokenizer on the command line).",
            cli=f"no tokenizer for {ref.label} (looked for {where}): pass --tokenizer FILE.",
        )
    passed = getattr(model, "passed", None) if hasattr(model, "method") else None
    note = ""
    if hasattr(model, "method"):
        note = (
            "compared with its source: passed"
            if passed
            else "compared with its source: FAILED"
            if passed is False
            else "not compared with its source (optimize with compare=True)"
        )
    return AppModel(
        ref=ref,
        tokenizer=found,
        label=getattr(model, "label", None) or ref.label,
        sample=sample,
        method=getattr(model, "method", None),
        checked=passed,
        check_note=note,
    )
