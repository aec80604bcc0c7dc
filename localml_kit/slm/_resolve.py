"""From a model reference to an ONNX Runtime GenAI folder: ``build``, ``resolve_model``.

A reference becomes a :class:`~localml_kit.models.ModelRef` once
(:func:`model_ref`); samples are looked up in the sample cache, GGUF files and
Hugging Face folders go to :func:`localml_kit.conversion.build`.
"""

from __future__ import annotations

import os
from pathlib import Path

from localml_kit import conversion, errors, models, samples

_GENAI_VARIANTS = tuple(f"onnx-{p}" for p in conversion.PRECISIONS)


def _language_samples() -> list[str]:
    return [n for n in samples.names() if set(samples.get(n).variants) & set(_GENAI_VARIANTS)]


def _not_a_language_model(sample: str, precision: str | None = None) -> errors.ModelFormatError:
    build = f" with a {precision} build" if precision else ""
    return errors.ModelFormatError(
        f"sample {sample!r} is not a language model{build}; "
        f"language-model samples: {', '.join(_language_samples())}."
    )


def _named_sample(text: str) -> str | None:
    """The sample a reference names (``name`` or ``name:variant``), to fetch it before resolving."""
    return next((n for n in samples.names() if text == n or text.startswith(f"{n}:")), None)


def model_ref(
    model: str | os.PathLike[str] | models.ModelRef, *, progress: bool = False
) -> models.ModelRef:
    """``models.resolve(model)``; a language-model sample not built yet is fetched (built) first.

    Example:
        >>> model_ref("smollm2-135m-instruct").variant
        'onnx-gguf'
    """
    try:
        return models.resolve(model)
    except errors.SampleNotReadyError:
        name = None if isinstance(model, models.ModelRef) else _named_sample(os.fspath(model))
        if name is None:
            raise
        if name not in _language_samples():
            raise _not_a_language_model(name) from None
        samples.fetch(name, progress=progress)
        return models.resolve(model)


def default_precision(source: str | os.PathLike[str] | models.ModelRef) -> str:
    """The precision ``build`` uses when none is given: "gguf" for a .gguf file, else "int4".

    Example:
        >>> default_precision("model.Q4_K_M.gguf")
        'gguf'
    """
    if isinstance(source, models.ModelRef):
        return "gguf" if source.kind == "gguf" else "int4"
    return conversion.default_precision(source)


def _sample_precision(ref: models.ModelRef) -> str:
    """The precision a sample reference names: its onnx-* variant's, else by kind."""
    variant = ref.variant or ""
    if variant in _GENAI_VARIANTS:
        return variant.removeprefix("onnx-")
    return default_precision(ref)


def build(
    source: str | os.PathLike[str] | models.ModelRef,
    precision: str | None = None,
    *,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """An ONNX Runtime GenAI model folder for ``source`` at ``precision`` (built once, cached).

    ``source`` is a GGUF file, a Hugging Face folder (config.json and weights),
    an ONNX Runtime GenAI folder (returned as is), a sample name (``name`` or
    ``name:variant``) or a resolved :class:`~localml_kit.models.ModelRef`. GGUF
    goes GGUF -> Hugging Face fp32 -> ONNX, offline, each step in a child
    process (:func:`localml_kit.conversion.build`); the result is cached under
    the kit home.

    Precisions: ``"gguf"`` keeps a GGUF's own quantized blocks (Q4_0, Q4_1,
    Q5_0, Q5_1, Q8_0 and the K-quants Q2_K to Q6_K; F16 / BF16 at their own
    width) as ONNX Runtime block-quantized weights, without re-quantizing, so
    the model computes with exactly the GGUF's weights;
    ``"int4"``, ``"int8"`` and ``"fp32"`` are the GenAI builder's from fp32
    weights (int4 re-quantizes a GGUF's blocks a second time). The default is
    ``"gguf"`` for GGUF sources and ``"int4"`` otherwise; for a sample, the
    precision of the ``onnx-*`` variant it names.

    Example:
        >>> build("smollm2-135m-instruct", "int8").name
        'onnx-int8'
    """
    if precision is not None:
        conversion.check_precision(precision)
    ref = model_ref(source, progress=progress)
    if ref.sample is not None:
        precision = precision or _sample_precision(ref)
        variant = f"onnx-{precision}"
        if variant not in samples.get(ref.sample).variants:
            raise _not_a_language_model(ref.sample, precision)
        return samples.path(ref.sample, variant)
    if ref.kind == "genai":
        return ref.folder
    return conversion.build(
        ref.path, precision or default_precision(ref), progress=progress, force=force
    )


def resolve_model(model: str | os.PathLike[str] | models.ModelRef) -> Path:
    """The ONNX Runtime GenAI folder for ``model``: a folder, a sample name[:variant] or a source.

    A sample name alone means its default (int4) build; ``name:onnx-int8`` picks
    another. GGUF files are built with their own blocks ("gguf") and Hugging Face
    folders at int4 (cached).

    Example:
        >>> resolve_model("smollm2-135m-instruct:onnx-fp32").name
        'onnx-fp32'
    """
    ref = model_ref(model)
    if ref.sample is not None and ref.kind != "genai":
        if ref.sample not in _language_samples():
            raise _not_a_language_model(ref.sample)
        raise errors.ModelFormatError(
            f"{ref.text!r}: chat needs an ONNX Runtime GenAI build "
            f"({', '.join(_GENAI_VARIANTS)}), not the {ref.variant!r} variant."
        )
    if ref.kind == "genai":
        return ref.folder
    return build(ref, progress=False)


def source_gguf(ref: models.ModelRef) -> Path | None:
    """The GGUF file a model comes from: a sample's ``gguf`` variant, or the GGUF itself."""
    if ref.sample is not None:
        return (
            samples.path(ref.sample, "gguf") if "gguf" in samples.get(ref.sample).variants else None
        )
    return ref.path if ref.kind == "gguf" else None
