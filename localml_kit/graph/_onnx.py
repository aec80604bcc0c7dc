"""ModelSummary fields for an ONNX model, read from its skeleton (no weights in memory)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import onnx

from localml_kit import errors
from localml_kit.graph._types import ExternalFile, TensorInfo, TensorSpec

# Bits per element for the types numpy cannot describe.
_SUB_BYTE_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}
_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
# Peak RSS of an ONNX Runtime CPU session while it loads, against the weight bytes: about 1.4x
# (kernels pre-pack weights into their own layout) plus a fixed runtime cost. Measured on the
# samples by benchmarks/graph_summary.py; it errs high rather than low.
_LOAD_FACTOR = 1.4
_SESSION_OVERHEAD_BYTES = 25 * 1024**2


def _type_name(elem_type: int) -> str | None:
    """ONNX's name of an element type (``FLOAT``...), None for a value this onnx does not know."""
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return None


def dtype_name(elem_type: int) -> str:
    """A readable element type: 'float32', 'int64', 'int4', ... ('undefined' for 0, 'type99' unknown)."""
    if elem_type == 0:
        return "undefined"
    name = _type_name(elem_type)
    if name is None:
        return f"type{elem_type}"
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return name.lower()


def _bits(elem_type: int) -> int:
    """Bits per element; 0 where unknown (strings, undefined, a type newer than this onnx)."""
    name = _type_name(elem_type) if elem_type else None
    if name in _SUB_BYTE_BITS:
        return _SUB_BYTE_BITS[name]
    if name is None or name == "STRING":
        return 0
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize * 8
    except (KeyError, TypeError, ValueError):
        return 8


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorSpec(value.name, kind or "unknown", None)
    tensor = value.type.tensor_type
    shape: tuple[int | str | None, ...] | None = None
    if tensor.HasField("shape"):
        dims: list[int | str | None] = []
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            elif dim.HasField("dim_param"):
                dims.append(dim.dim_param)
            else:
                dims.append(None)
        shape = tuple(dims)
    return TensorSpec(value.name, dtype_name(tensor.elem_type), shape)


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _walk(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for sub in _subgraphs(node):
            yield from _walk(sub)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in a graph and its subgraphs: initializers, sparse ones, attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            sparse_tensors = list(attr.sparse_tensors)
            if attr.HasField("sparse_tensor"):
                sparse_tensors.append(attr.sparse_tensor)
            for sparse in sparse_tensors:
                yield from (sparse.values, sparse.indices)
        for sub in _subgraphs(node):
            yield from _graph_tensors(sub)


def external_locations(model: onnx.ModelProto) -> list[str]:
    """The external-data file names (``location`` entries) of every tensor, in first-seen order.

    Example:
        >>> external_locations(onnx.ModelProto())
        []
    """
    found: dict[str, None] = {}
    for tensor in _graph_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    found.setdefault(entry.value, None)
    return list(found)


def safe_location(location: str) -> bool:
    """Whether an external-data ``location`` is what ONNX allows: a plain path inside the model's folder.

    Example:
        >>> safe_location("model.onnx.data"), safe_location("../../etc/passwd")
        (True, False)
    """
    relative = PurePosixPath(location)
    return bool(location) and not (
        "\\" in location
        or "\x00" in location
        or relative.is_absolute()
        or ".." in relative.parts
        or len(location) > 4096
    )


def _external(tensor: onnx.TensorProto, where: str) -> dict[str, str]:
    """A tensor's external-data entries, checked: a safe location, numbers for offset and length."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    if not safe_location(location):
        raise errors.ModelFormatError(
            f"{where}: tensor {tensor.name!r} keeps its data at {location[:200]!r}, which is not "
            "a file inside the model's folder (ONNX allows only relative paths without ..). "
            "The model is damaged or unsafe; re-export or re-download it."
        )
    for key in ("offset", "length"):
        value = entries.get(key, "0")
        if not (value.isascii() and value.isdigit()):
            raise errors.ModelFormatError(
                f"{where}: tensor {tensor.name!r} has external data {key}={value[:40]!r}, not a "
                "number of bytes. The model is damaged; re-export or re-download it."
            )
    return entries


def _tensor_info(tensor: onnx.TensorProto, where: str) -> TensorInfo:
    if any(d < 0 for d in tensor.dims):
        raise errors.ModelFormatError(
            f"{where}: tensor {tensor.name!r} has a negative dimension {list(tensor.dims)}. "
            "The model is damaged; re-export or re-download it."
        )
    count = math.prod(tensor.dims)
    nbytes = (count * _bits(tensor.data_type) + 7) // 8
    location = "inline"
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        entries = _external(tensor, where)
        location = entries.get("location", "")
        if "length" in entries:
            nbytes = int(entries["length"])
    return TensorInfo(
        tensor.name,
        dtype_name(tensor.data_type),
        tuple(int(d) for d in tensor.dims),
        count,
        nbytes,
        location,
    )


def _is_tensor_constant(node: onnx.NodeProto) -> bool:
    return (
        node.op_type == "Constant"
        and node.domain in ("", "ai.onnx")
        and any(a.name == "value" and a.type == onnx.AttributeProto.TENSOR for a in node.attribute)
    )


def _constant_info(node: onnx.NodeProto, where: str) -> TensorInfo:
    tensor = next(a.t for a in node.attribute if a.name == "value")
    info = _tensor_info(tensor, where)
    return TensorInfo(
        node.output[0] if node.output else node.name,
        info.dtype,
        info.shape,
        info.count,
        info.nbytes,
        "constant",
    )


def _attribute_arrays(node: onnx.NodeProto) -> list[TensorInfo]:
    """Classic-ML operators (tree ensembles, SVMs, ...) keep their parameters in attribute lists."""
    found = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.FLOATS and len(attr.floats) > 16:
            dtype, count, size = "float32", len(attr.floats), 4
        elif attr.type == onnx.AttributeProto.INTS and len(attr.ints) > 16:
            dtype, count, size = "int64", len(attr.ints), 8
        else:
            continue
        name = f"{node.name or node.op_type}.{attr.name}"
        found.append(TensorInfo(name, dtype, (count,), count, count * size, "attribute"))
    return found


# Operators whose packed weights hold several values per byte: (weight input, default bits).
_BLOCK_QUANTIZED = {"MatMulNBits": (1, 4), "GatherBlockQuantized": (0, 4)}


def _label_block_quantized(
    tensors: list[TensorInfo], nodes: list[onnx.NodeProto]
) -> list[TensorInfo]:
    """Count packed block-quantized weights (MatMulNBits, ...) in values, labelled e.g. 'int4 block'."""
    packed: dict[str, int] = {}
    for node in nodes:
        if node.domain == "com.microsoft" and node.op_type in _BLOCK_QUANTIZED:
            index, bits = _BLOCK_QUANTIZED[node.op_type]
            for attr in node.attribute:
                if attr.name == "bits":
                    bits = int(attr.i)
            if len(node.input) > index:
                packed[node.input[index]] = bits
    out = []
    for t in tensors:
        width = packed.get(t.name)
        if width and t.dtype in ("uint8", "int8"):
            t = TensorInfo(
                t.name, f"int{width} block", t.shape, t.count * 8 // width, t.nbytes, t.location
            )
        out.append(t)
    return out


def _check_complete(model: onnx.ModelProto, path: str) -> None:
    if not model.ir_version or not model.HasField("graph"):
        raise errors.ModelFormatError(
            f"{path} is not an ONNX model (no IR version or no graph). "
            "Check that the file is a .onnx model and not another format."
        )
    if not model.opset_import:
        raise errors.ModelFormatError(
            f"{path} has no opset imports: the file is truncated or was not written by an "
            "ONNX exporter. Re-export or re-download it."
        )


def _file_size(path: Path) -> int | None:
    """The size of a regular file, None when there is none (or it cannot be read)."""
    try:
        return path.stat().st_size if path.is_file() else None
    except (OSError, ValueError):
        return None


def summary_fields(
    model: onnx.ModelProto, path: Path | None, *, skipped_bytes: int
) -> dict[str, Any]:
    """The ONNX part of a ModelSummary, as keyword arguments."""
    where = str(path) if path else "the model"
    _check_complete(model, where)
    graph = model.graph
    model_dir = path.parent if path else None
    opsets = {(imp.domain or "ai.onnx"): int(imp.version) for imp in model.opset_import}

    nodes = list(_walk(graph))
    operators = Counter(f"{node.domain or 'ai.onnx'}::{node.op_type}" for node in nodes)
    used_domains = {node.domain for node in nodes}
    custom = sorted(
        d
        for d in used_domains | {imp.domain for imp in model.opset_import}
        if d not in _STANDARD_DOMAINS
    )

    tensors = [_tensor_info(t, where) for t in graph.initializer]
    tensors += [_tensor_info(s.values, where) for s in graph.sparse_initializer]
    initializer_names = {t.name for t in tensors}
    # Some exporters (PaddlePaddle's, older PyTorch) keep weights in Constant nodes.
    tensors += [_constant_info(node, where) for node in nodes if _is_tensor_constant(node)]
    tensors += [t for node in nodes if node.domain == "ai.onnx.ml" for t in _attribute_arrays(node)]
    tensors = _label_block_quantized(tensors, nodes)

    external: dict[str, list[int]] = {}
    for tensor in graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = _external(tensor, where)
        end = int(entries.get("offset", 0)) + int(entries.get("length", 0))
        external.setdefault(entries.get("location", ""), []).append(end)
    external_files = []
    for name, ends in sorted(external.items()):
        size = _file_size(model_dir / name) if model_dir else None
        external_files.append(
            ExternalFile(
                name=name,
                expected_bytes=max(ends),
                present=size is not None,
                size_bytes=size or 0,
            )
        )

    param_bytes = sum(t.nbytes for t in tensors)
    return {
        "ir_version": int(model.ir_version),
        "opsets": opsets,
        "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p),
        "graph_name": graph.name,
        "doc_string": (model.doc_string or graph.doc_string)[:2000],
        "metadata": {p.key: p.value for p in model.metadata_props},
        "inputs": [_spec(v) for v in graph.input if v.name not in initializer_names],
        "outputs": [_spec(v) for v in graph.output],
        "node_count": len(nodes),
        "operators": dict(operators.most_common()),
        "custom_domains": custom,
        "external_data": external_files,
        "tensors": tensors,
        "parameter_count": sum(t.count for t in tensors),
        "parameter_bytes": param_bytes,
        "load_memory_bytes": int(param_bytes * _LOAD_FACTOR) + _SESSION_OVERHEAD_BYTES,
        "skeleton_skipped_bytes": skipped_bytes,
    }
