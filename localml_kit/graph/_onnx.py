"""ModelSummary fields for an ONNX model, read from its skeleton (no weights in memory)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
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


def dtype_name(elem_type: int) -> str:
    """A readable element type: 'float32', 'int64', 'int4', ... ('undefined' for 0)."""
    if elem_type == 0:
        return "undefined"
    name = onnx.TensorProto.DataType.Name(elem_type)
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return name.lower()


def _bits(elem_type: int) -> int:
    name = onnx.TensorProto.DataType.Name(elem_type) if elem_type else "UNDEFINED"
    if name in _SUB_BYTE_BITS:
        return _SUB_BYTE_BITS[name]
    if name == "STRING" or elem_type == 0:
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


def _tensor_info(tensor: onnx.TensorProto, model_dir: Path | None) -> TensorInfo:
    count = int(np.prod(tensor.dims, dtype=np.int64)) if tensor.dims else 1
    nbytes = (count * _bits(tensor.data_type) + 7) // 8
    location = "inline"
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        entries = {e.key: e.value for e in tensor.external_data}
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


def _constant_info(node: onnx.NodeProto) -> TensorInfo:
    tensor = next(a.t for a in node.attribute if a.name == "value")
    info = _tensor_info(tensor, None)
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

    tensors = [_tensor_info(t, model_dir) for t in graph.initializer]
    tensors += [_tensor_info(s.values, model_dir) for s in graph.sparse_initializer]
    initializer_names = {t.name for t in tensors}
    # Some exporters (PaddlePaddle's, older PyTorch) keep weights in Constant nodes.
    tensors += [_constant_info(node) for node in nodes if _is_tensor_constant(node)]
    tensors += [t for node in nodes if node.domain == "ai.onnx.ml" for t in _attribute_arrays(node)]
    tensors = _label_block_quantized(tensors, nodes)

    external: dict[str, list[int]] = {}
    for tensor in graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        end = int(entries.get("offset", 0)) + int(entries.get("length", 0))
        external.setdefault(entries.get("location", ""), []).append(end)
    external_files = []
    for name, ends in sorted(external.items()):
        file = (model_dir / name) if model_dir else None
        present = bool(file and file.is_file())
        external_files.append(
            ExternalFile(
                name=name,
                expected_bytes=max(ends),
                present=present,
                size_bytes=file.stat().st_size if present and file else 0,
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
