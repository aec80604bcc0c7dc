"""One model reference: what a user names, resolved once into a record that travels unchanged.

Every command and function that takes a model accepts the same forms:

* a path to an ``.onnx`` or ``.gguf`` file;
* a folder: an ONNX Runtime GenAI folder (``genai_config.json``), a folder
  holding exactly one ``.onnx``/``.gguf`` file, or a Hugging Face folder
  (``config.json`` and weights);
* a sample name, optionally with a variant: ``all-minilm-l6-v2`` or
  ``smollm2-135m-instruct:gguf``;
* any of these with ``@provider`` at the end: ``model.onnx@openvino``.

:func:`resolve` turns the text into a frozen :class:`ModelRef` once, at the
edge; everything downstream takes the record and never parses the text again.
An ONNX model's inputs, outputs, metadata and storage precision are read from
the file the first time they are asked for, once per record
(:attr:`ModelRef.io`).

Example:
    >>> from localml_kit import models
    >>> ref = models.resolve("digits-mlp")
    >>> ref.kind, ref.sample, ref.path.name
    ('onnx', 'digits-mlp', 'model.onnx')
    >>> [spec.shape_text() for spec in ref.io.inputs]
    ['[?, 64]']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import errors, providers, samples

__all__ = [
    "KINDS",
    "MODEL_SUFFIXES",
    "InputSpec",
    "ModelIO",
    "ModelRef",
    "OutputSpec",
    "as_ref",
    "read_io",
    "resolve",
    "sample_choices",
    "split_provider",
]

MODEL_SUFFIXES = (".onnx", ".gguf")
KINDS = ("onnx", "gguf", "genai", "hf")

Dim = int | str | None


@dataclass(frozen=True)
class InputSpec:
    """One graph input: name, numpy dtype name, shape (int fixed, str symbolic, None unknown).

    ``high`` is an exclusive upper bound for integer values when the graph shows
    one (the row count of an embedding table the input indexes), else None.

    Example:
        >>> InputSpec("x", "float32", (None, "seq", 64)).shape_text()
        '[?, seq, 64]'
    """

    name: str
    dtype: str
    shape: tuple[Dim, ...]
    high: int | None = None

    def shape_text(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


@dataclass(frozen=True)
class OutputSpec:
    """One graph output: name, numpy dtype name (or ``onnx-type-N``), shape as for inputs."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]


@dataclass(frozen=True)
class ModelIO:
    """What an ONNX file says about itself without its weights: I/O, metadata, operators, precision."""

    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    metadata: Mapping[str, str]
    op_types: frozenset[str]
    precision: str
    opset: int | None = None


_INT8_OPS = frozenset(
    {
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearMatMul",
        "QLinearConv",
        "ConvInteger",
        "DynamicQuantizeMatMul",
        "QAttention",
        "QGemm",
    }
)
_INT4_OPS = frozenset({"MatMulNBits", "GatherBlockQuantized"})


def _dtype_name(elem_type: int) -> str:
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return f"onnx-type-{elem_type}"


def _shape(value: Any) -> tuple[Dim, ...]:
    shape: list[Dim] = []
    for dim in value.type.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param:
            shape.append(dim.dim_param)
        else:
            shape.append(None)
    return tuple(shape)


def _all_op_types(graph: Any) -> set[str]:
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attr in node.attribute:
            if attr.HasField("g"):
                ops |= _all_op_types(attr.g)
            for sub in attr.graphs:
                ops |= _all_op_types(sub)
    return ops


def _precision(proto: Any, ops: set[str]) -> str:
    import onnx

    bits: set[int] = set()
    for node in proto.graph.node:
        if node.op_type == "MatMulNBits":
            bits |= {a.i for a in node.attribute if a.name == "bits"} or {4}
    if ops & _INT4_OPS:
        return "int4" if 4 in bits or not bits else "int8"
    if ops & _INT8_OPS:
        return "int8"
    counts: dict[int, int] = {}
    for init in proto.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        counts[init.data_type] = counts.get(init.data_type, 0) + n
    fp16 = counts.get(onnx.TensorProto.FLOAT16, 0)
    return "fp16" if fp16 > counts.get(onnx.TensorProto.FLOAT, 0) else "fp32"


def read_io(path: str | os.PathLike[str]) -> ModelIO:
    """Read an ONNX file's I/O specs, metadata, operator types and precision (weights not loaded).

    Raises :class:`~localml_kit.errors.ModelFormatError` for a file ONNX cannot parse.

    Example:
        >>> from localml_kit import samples
        >>> io = read_io(samples.path("all-minilm-l6-v2"))
        >>> io.inputs[0].name, io.precision
        ('input_ids', 'fp32')
    """
    import onnx

    text = os.fspath(path)
    try:
        proto = onnx.load(text, load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError...
        raise errors.ModelFormatError(
            f"{text} is not a readable ONNX model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})."
        ) from exc
    if not proto.ir_version or not proto.HasField("graph"):
        raise errors.ModelFormatError(
            f"{text} is not an ONNX model: it is empty or holds no graph"
            f" ({os.path.getsize(text) if os.path.isfile(text) else 0} bytes). Export or "
            "download it again."
        )
    graph = proto.graph
    tables = {init.name: list(init.dims) for init in graph.initializer}
    bounds: dict[str, int] = {}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) >= 2 and node.input[0] in tables:
            dims = tables[node.input[0]]
            if dims:
                bounds[node.input[1]] = min(bounds.get(node.input[1], dims[0]), dims[0])
    inputs = tuple(
        InputSpec(
            v.name,
            _dtype_name(v.type.tensor_type.elem_type),
            _shape(v),
            bounds.get(v.name),
        )
        for v in graph.input
        if v.name not in tables
    )
    outputs = tuple(
        OutputSpec(v.name, _dtype_name(v.type.tensor_type.elem_type), _shape(v))
        for v in graph.output
    )
    ops = _all_op_types(graph)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return ModelIO(
        inputs=inputs,
        outputs=outputs,
        metadata={p.key: p.value for p in proto.metadata_props},
        op_types=frozenset(ops),
        precision=_precision(proto, ops),
        opset=opset,
    )


@dataclass(frozen=True)
class ModelRef:
    """A model, resolved once: the text as given, a label, the file, where it came from, the provider.

    ``kind`` is ``onnx`` (an ONNX file), ``gguf`` (a GGUF file), ``genai`` (an
    ONNX Runtime GenAI folder; ``path`` is its decoder's ``.onnx``) or ``hf`` (a
    Hugging Face folder; ``path`` is the folder). ``sample`` and ``variant`` are
    set for a sample; ``provider`` is the ONNX Runtime name given with
    ``@provider``, else None.

    Example:
        >>> ref = ModelRef("m.onnx", "m.onnx", Path("m.onnx"), "onnx")
        >>> ref.with_provider("openvino").provider
        'OpenVINOExecutionProvider'
    """

    text: str
    label: str
    path: Path
    kind: str
    sample: str | None = None
    variant: str | None = None
    provider: str | None = None
    _io: list[ModelIO] = field(default_factory=list, repr=False, compare=False, hash=False)

    @property
    def folder(self) -> Path:
        """The folder the model lives in (the model itself for ``hf``)."""
        return self.path if self.path.is_dir() else self.path.parent

    @property
    def io(self) -> ModelIO:
        """The ONNX file's inputs, outputs, metadata and precision, read on first use (once)."""
        if self.kind not in ("onnx", "genai"):
            raise errors.ModelFormatError(
                f"{self.text} is a {self.kind.upper()} model, not ONNX: "
                + (
                    "use `localml-kit slm` (slm.Chat, slm.build) for GGUF files."
                    if self.kind == "gguf"
                    else "export it to ONNX first."
                ),
                cli=f"{self.text} is a {self.kind.upper()} model, not ONNX: "
                + (
                    "chat with it with `localml-kit slm chat --model FILE`, or build an ONNX "
                    "model from it with slm.build."
                    if self.kind == "gguf"
                    else "export it to ONNX first."
                ),
            )
        if not self._io:
            self._io.append(read_io(self.path))
        return self._io[0]

    @property
    def precision(self) -> str:
        """The storage precision the ONNX file shows: int4, int8, fp16 or fp32."""
        return self.io.precision

    @property
    def provider_name(self) -> str:
        """The provider to run on: the one given with ``@provider``, else the CPU provider."""
        return self.provider or providers.CPU

    def with_provider(self, provider: str | None) -> ModelRef:
        """The same model on another provider (an alias or an ONNX Runtime name)."""
        full = providers.resolve(provider) if provider else None
        return replace(self, provider=full, _io=self._io)

    def with_label(self, label: str) -> ModelRef:
        """The same model under another label."""
        return replace(self, label=label, _io=self._io)

    def require_onnx(self, what: str) -> ModelRef:
        """This record, or a ModelFormatError saying ``what`` needs an ONNX model."""
        if self.kind in ("onnx", "genai"):
            return self
        hint = (
            "GGUF models run with localml_kit.slm (slm.Chat), or become ONNX with slm.build"
            if self.kind == "gguf"
            else "export it to ONNX first"
        )
        cli_hint = (
            "GGUF models run with `localml-kit slm chat --model FILE`"
            if self.kind == "gguf"
            else "export it to ONNX first"
        )
        raise errors.ModelFormatError(
            f"{what} needs an ONNX model, and {self.text} is a {self.kind.upper()} model: {hint}.",
            cli=f"{what} needs an ONNX model, and {self.text} is a {self.kind.upper()} model: "
            f"{cli_hint}.",
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "text": self.text,
            "label": self.label,
            "path": str(self.path),
            "kind": self.kind,
            "sample": self.sample,
            "variant": self.variant,
            "provider": self.provider,
        }


def _kind_of_file(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        return "gguf"
    if (path.parent / "genai_config.json").is_file() and suffix == ".onnx":
        return "genai"
    return "onnx"


def _in_folder(folder: Path, label: str) -> tuple[Path, str]:
    if (folder / "genai_config.json").is_file():
        onnx_files = sorted(folder.glob("*.onnx"))
        if len(onnx_files) == 1:
            return onnx_files[0], "genai"
    found = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()
    )
    if len(found) == 1:
        return found[0], _kind_of_file(found[0])
    if not found and (folder / "config.json").is_file():
        return folder, "hf"
    if not found:
        raise errors.ModelFormatError(
            f"{label} is a folder with no .onnx or .gguf file in it; name a model file instead."
        )
    names = ", ".join(p.name for p in found[:8])
    raise errors.ModelFormatError(
        f"{label} is a folder with {len(found)} model files ({names}); name one of them."
    )


def split_provider(text: str) -> tuple[str, str | None]:
    """``"model.onnx@openvino"`` -> ``("model.onnx", "OpenVINOExecutionProvider")``; no ``@``: None.

    An ``@`` that is part of an existing path, or whose tail is no provider name,
    stays in the text (an unknown provider after an existing model raises).

    Example:
        >>> split_provider("digits-mlp@ov")
        ('digits-mlp', 'OpenVINOExecutionProvider')
    """
    head, sep, tail = text.rpartition("@")
    if sep and head and not Path(text).expanduser().exists():
        try:
            return head, providers.resolve(tail)
        except errors.UnknownProviderError:
            if Path(head).expanduser().exists() or head.partition(":")[0] in samples.names():
                raise
    return text, None


def resolve(model: str | os.PathLike[str] | ModelRef, *, label: str | None = None) -> ModelRef:
    """Resolve what the user named into a :class:`ModelRef` (a record is returned as it is).

    Raises :class:`~localml_kit.errors.ModelNotFoundError` for a path that does
    not exist and is not a sample name, :class:`~localml_kit.errors.SampleNotReadyError`
    for a sample that is not built yet, and
    :class:`~localml_kit.errors.UnknownProviderError` for an unknown ``@provider``.

    Example:
        >>> resolve("smollm2-135m-instruct:gguf").kind
        'gguf'
    """
    if isinstance(model, ModelRef):
        return model if label is None else model.with_label(label)
    given = os.fspath(model)
    text, provider = split_provider(given)
    path = Path(text).expanduser()
    if path.exists():
        target, kind = _in_folder(path, text) if path.is_dir() else (path, _kind_of_file(path))
        if label is None:
            label = path.name if path.is_file() else (path.name or text)
            if provider is not None:
                label = f"{label}@{providers.short_name(provider)}"
        return ModelRef(given, label, target, kind, None, None, provider)
    name, _, variant = text.partition(":")
    if name in samples.names():
        sample = samples.get(name)
        chosen = variant or sample.default_variant
        where = samples.path(name, chosen)
        target, kind = _in_folder(where, text) if where.is_dir() else (where, _kind_of_file(where))
        return ModelRef(given, label or given, target, kind, name, chosen, provider)
    known = ", ".join(samples.names())
    raise errors.ModelNotFoundError(
        f"no model at {text!r}: the path does not exist and it is not a sample name "
        f"(samples: {known}; add ':variant' for a variant)."
    )


def as_ref(model: Any, *, label: str | None = None) -> ModelRef | None:
    """A ModelRef for anything that names a model file (text, path, record, or an object with
    ``.path`` such as an optimize Variant), else None.

    Example:
        >>> as_ref(42) is None
        True
    """
    if isinstance(model, ModelRef):
        return model if label is None else model.with_label(label)
    if isinstance(model, str | os.PathLike):
        return resolve(model, label=label)
    path = getattr(model, "path", None)
    if isinstance(path, str | os.PathLike) and hasattr(model, "method"):
        return resolve(path, label=label or getattr(model, "label", None))
    return None


def sample_choices(formats: tuple[str, ...] = MODEL_SUFFIXES) -> list[str]:
    """Every sample model reference (``name`` or ``name:variant``) whose target is a model file.

    Only samples that are ready are listed.

    Example:
        >>> "digits-mlp" in sample_choices(), "smollm2-135m-instruct:gguf" in sample_choices()
        (True, True)
        >>> "smollm2-135m-instruct:gguf" in sample_choices((".onnx",))
        False
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
