"""The records a model summary is made of."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd


def shape_text(shape: tuple[Any, ...] | None, unknown: str = "unknown") -> str:
    """A shape as text, e.g. ``[batch, seq, 384]``: ``?`` for an unnamed dim, ``unknown`` for none.

    Example:
        >>> shape_text(("batch", None, 384)), shape_text(None, unknown="?")
        ('[batch, ?, 384]', '?')
    """
    if shape is None:
        return unknown
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: name, element type and shape (symbolic dims by name, None if unknown)."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...] | None

    @property
    def shape_text(self) -> str:
        """The shape as text, e.g. ``[batch, seq, 384]`` (``?`` for an unnamed unknown dim)."""
        return shape_text(self.shape)

    @property
    def dynamic_dims(self) -> tuple[str, ...]:
        """The symbolic dimension names in this shape."""
        return tuple(d for d in (self.shape or ()) if isinstance(d, str))


@dataclass(frozen=True)
class TensorInfo:
    """A stored weight: where it lives and how big it is."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    count: int
    nbytes: int
    location: str  # "inline", an external data file name, or "gguf"


@dataclass(frozen=True)
class ExternalFile:
    """An external-data file an ONNX model refers to."""

    name: str
    expected_bytes: int
    present: bool
    size_bytes: int


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _mb(nbytes: float) -> str:
    if nbytes < 1e6:
        return f"{nbytes / 1e3:,.1f} kB"
    return f"{nbytes / 1e6:,.1f} MB"


@dataclass
class ModelSummary:
    """What is inside a model file, without loading its weights.

    ONNX and GGUF share the common fields; the format-specific ones are None or
    empty for the other format. Every string from the file is escaped in
    ``_repr_html_``.

    Example:
        >>> from localml_kit import graph
        >>> s = graph.summarize("digits-mlp")
        >>> s.inputs[0].shape_text
        '[?, 64]'
    """

    path: str | None
    format: str  # "onnx" or "gguf"
    file_bytes: int
    total_bytes: int  # the file plus its external data
    parameter_count: int
    parameter_bytes: int
    tensors: list[TensorInfo]
    load_memory_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    # ONNX
    ir_version: int | None = None
    opsets: dict[str, int] = field(default_factory=dict)
    producer: str = ""
    graph_name: str = ""
    doc_string: str = ""
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    node_count: int = 0
    operators: dict[str, int] = field(default_factory=dict)
    custom_domains: list[str] = field(default_factory=list)
    external_data: list[ExternalFile] = field(default_factory=list)
    skeleton_skipped_bytes: int = 0
    # GGUF
    gguf_version: int | None = None
    architecture: str | None = None
    name: str | None = None
    context_length: int | None = None
    embedding_length: int | None = None
    block_count: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None
    tokenizer_model: str | None = None
    vocab_size: int | None = None
    label: str = ""  # what the user called it: a sample name, else the file name

    # ---- derived views -------------------------------------------------------------------------
    @property
    def tensor_count(self) -> int:
        """How many weight tensors the file holds."""
        return len(self.tensors)

    @property
    def dynamic_dims(self) -> list[str]:
        """The symbolic dimension names used by the inputs and outputs, in order of appearance."""
        seen: dict[str, None] = {}
        for spec in [*self.inputs, *self.outputs]:
            for dim in spec.dynamic_dims:
                seen.setdefault(dim, None)
        return list(seen)

    def dtypes(self) -> pd.DataFrame:
        """Parameters by element type (GGUF: by quantization type): count, bytes, share of bytes."""
        rows: dict[str, list[int]] = {}
        for t in self.tensors:
            entry = rows.setdefault(t.dtype, [0, 0, 0])
            entry[0] += 1
            entry[1] += t.count
            entry[2] += t.nbytes
        frame = pd.DataFrame(
            [(k, *v) for k, v in rows.items()], columns=["dtype", "tensors", "parameters", "bytes"]
        )
        total = frame["bytes"].sum()
        frame["share"] = frame["bytes"] / total if total else 0.0
        return frame.sort_values("bytes", ascending=False, ignore_index=True)

    def largest(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` largest weights: name, dtype, shape, parameters, bytes, location."""
        top = sorted(self.tensors, key=lambda t: t.nbytes, reverse=True)[:n]
        return pd.DataFrame(
            [(t.name, t.dtype, list(t.shape), t.count, t.nbytes, t.location) for t in top],
            columns=["name", "dtype", "shape", "parameters", "bytes", "location"],
        )

    def operators_frame(self) -> pd.DataFrame:
        """The operator histogram: op (domain::type), count, share of nodes."""
        frame = pd.DataFrame(list(self.operators.items()), columns=["op", "count"])
        frame["share"] = frame["count"] / max(1, self.node_count)
        return frame

    def io(self) -> pd.DataFrame:
        """Inputs and outputs: kind, name, dtype, shape."""
        return pd.DataFrame(
            [("input", s.name, s.dtype, s.shape_text) for s in self.inputs]
            + [("output", s.name, s.dtype, s.shape_text) for s in self.outputs],
            columns=["kind", "name", "dtype", "shape"],
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tensors listed largest first)."""
        data = asdict(self)
        data["tensor_count"] = self.tensor_count
        data["dynamic_dims"] = self.dynamic_dims
        data["tensors"] = [
            asdict(t) for t in sorted(self.tensors, key=lambda t: t.nbytes, reverse=True)
        ]
        for spec in data["inputs"] + data["outputs"]:
            spec["shape"] = list(spec["shape"]) if spec["shape"] is not None else None
        for t in data["tensors"]:
            t["shape"] = list(t["shape"])
        return data

    # ---- display -------------------------------------------------------------------------------
    def facts(self) -> list[tuple[str, str]]:
        """The headline facts as (label, text) pairs, for tables and the CLI."""
        facts = [("format", self.format.upper()), ("file", self.path or "(in memory)")]
        size = _mb(self.total_bytes)
        if self.total_bytes != self.file_bytes:
            size += f" ({_mb(self.file_bytes)} graph + external data)"
        facts.append(("size", size))
        if self.format == "onnx":
            facts += [
                ("IR version", str(self.ir_version)),
                ("opsets", ", ".join(f"{d} {v}" for d, v in self.opsets.items())),
                ("producer", self.producer or "unknown"),
                ("graph", self.graph_name or "(unnamed)"),
                ("nodes", f"{self.node_count:,} ({len(self.operators)} operator types)"),
            ]
            if self.custom_domains:
                facts.append(("custom domains", ", ".join(self.custom_domains)))
            if self.external_data:
                facts.append(
                    (
                        "external data",
                        ", ".join(
                            f"{e.name} ({_mb(e.size_bytes) if e.present else 'MISSING'})"
                            for e in self.external_data
                        ),
                    )
                )
        else:
            facts += [
                ("name", self.name or "unknown"),
                ("architecture", self.architecture or "unknown"),
                ("context length", str(self.context_length)),
                ("embedding size", str(self.embedding_length)),
                ("layers", str(self.block_count)),
                ("heads (KV heads)", f"{self.head_count} ({self.head_count_kv})"),
                ("tokenizer", f"{self.tokenizer_model}, {self.vocab_size} tokens"),
            ]
        facts += [
            ("parameters", f"{self.parameter_count:,} in {self.tensor_count} tensors"),
            ("weights", _mb(self.parameter_bytes)),
            ("memory to load (estimate)", _mb(self.load_memory_bytes)),
        ]
        if self.dynamic_dims:
            facts.append(("dynamic dims", ", ".join(self.dynamic_dims)))
        return facts

    def __repr__(self) -> str:
        return (
            f"ModelSummary({self.format}, {self.path!r}, {self.parameter_count:,} parameters, "
            f"{_mb(self.parameter_bytes)})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{_escape(k)}</th><td style='text-align:left'>"
            f"{_escape(v)}</td></tr>"
            for k, v in self.facts()
        )
        parts = [f"<table class='localml-summary'>{rows}</table>"]
        if self.inputs or self.outputs:
            parts.append(
                "<h4>Inputs and outputs</h4>" + self.io().to_html(index=False, escape=True)
            )
        if self.metadata:
            meta = pd.DataFrame(
                [(k, str(v)[:200]) for k, v in self.metadata.items()], columns=["key", "value"]
            )
            parts.append("<h4>Metadata</h4>" + meta.to_html(index=False, escape=True))
        dtypes = self.dtypes()
        if len(dtypes):
            dtypes["bytes"] = dtypes["bytes"].map(_mb)
            dtypes["share"] = dtypes["share"].map("{:.1%}".format)
            parts.append("<h4>Parameters by type</h4>" + dtypes.to_html(index=False, escape=True))
            largest = self.largest(8)
            largest["bytes"] = largest["bytes"].map(_mb)
            parts.append("<h4>Largest weights</h4>" + largest.to_html(index=False, escape=True))
        return "<div class='localml-model-summary'>" + "".join(parts) + "</div>"
