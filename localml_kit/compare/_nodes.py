"""Compare intermediate outputs: every node output of two models, matched by tensor name.

Both models are loaded, every node output of their main graph is made a graph
output, both run once on the same inputs with graph optimization off (so each
node runs as written), and each tensor name the two share is compared: max and
mean absolute error, relative error, cosine. Sorted in the reference's node
order, the table shows where a quantized or converted model starts to diverge.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import errors, models, providers
from localml_kit.compare._runners import _session_options, onnx_runner
from localml_kit.inputs import Feeds, inputs_for

COLUMNS = (
    "order",
    "tensor",
    "node",
    "op",
    "candidate_node",
    "candidate_op",
    "shape",
    "dtype",
    "max_abs",
    "mean_abs",
    "rel_error",
    "cosine",
    "added",
    "note",
)


# Shape and data-movement operators: a provider that compiles the graph itself (OpenVINO)
# folds them away and cannot hand their outputs back, so those runs expose only the rest.
MOVES = frozenset(
    [
        "Constant",
        "Shape",
        "Gather",
        "Unsqueeze",
        "Squeeze",
        "Concat",
        "Cast",
        "ConstantOfShape",
        "Equal",
        "Where",
        "Expand",
        "Range",
        "Slice",
        "Reshape",
        "Transpose",
        "Flatten",
        "Identity",
    ]
)


def _expose_all(
    ref: models.ModelRef, skip: frozenset[str] = frozenset()
) -> tuple[bytes, list[tuple[str, str, str, tuple[str, ...]]]]:
    """The model with every main-graph node output as a graph output, and (tensor, node, op)."""
    import onnx

    try:
        model = onnx.load(str(ref.path))
    except Exception as exc:
        raise errors.ModelFormatError(f"cannot load {ref.label} with its weights: {exc}") from exc
    try:
        typed = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
        kinds = {v.name: v.type.WhichOneof("value") for v in [*typed.value_info, *typed.output]}
    except Exception:  # custom ops: keep every output, types unknown
        kinds = {}
    present = {o.name for o in model.graph.output}
    produced = []
    for node in model.graph.node:
        for name in node.output:
            if not name:
                continue
            produced.append((name, node.name, node.op_type, tuple(node.input)))
            if node.op_type in skip:
                continue
            if name not in present and kinds.get(name, "tensor_type") in ("tensor_type", None):
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                present.add(name)
    if model.ByteSize() > 2**31 - 1:
        raise errors.ModelFormatError(
            f"{ref.label} is larger than 2 GB with its weights: per_node compares models that "
            "fit in one ONNX protobuf. Compare its final outputs with compare.outputs instead."
        )
    return model.SerializeToString(), produced


def _run_all(ref: models.ModelRef, feeds: Mapping[str, np.ndarray], threads: int | None) -> Any:
    import onnxruntime as ort

    provider = ref.provider_name
    here = provider in ort.get_available_providers()
    proto, produced = _expose_all(ref, frozenset() if here else MOVES)
    if not here:
        # A provider environment's Python (OpenVINO, say) runs the exposed model as a file;
        # such providers compile the graph themselves and fold the MOVES away.
        with tempfile.TemporaryDirectory(prefix="localml-per-node-") as tmp:
            path = Path(tmp) / "exposed.onnx"
            path.write_bytes(proto)
            runner = onnx_runner(path, provider=provider, label=ref.label, threads=threads)
            (values,) = runner.call([dict(feeds)])
        if not isinstance(values, dict):  # a file's runner names its outputs
            values = dict(zip(runner.outputs or [], values, strict=True))
        return values, produced
    so = _session_options(threads)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # every node kept
    chosen = [provider] if provider == providers.CPU else [provider, providers.CPU]
    try:
        session = ort.InferenceSession(proto, so, providers=chosen)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
        raise errors.ModelFormatError(
            f"ONNX Runtime cannot load {ref.label} with every node's output exposed: "
            f"{str(exc).splitlines()[0][:300]}"
        ) from exc
    wanted = {i.name for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {k: v for k, v in feeds.items() if k in wanted})
    return dict(zip(names, values, strict=True)), produced


def _stats(r: np.ndarray, c: np.ndarray) -> dict[str, Any]:
    if r.shape != c.shape:
        return {"note": f"shapes differ: {list(r.shape)} vs {list(c.shape)}"}
    if r.dtype.kind not in "fiub" or c.dtype.kind not in "fiub":
        return {"note": f"not numeric ({r.dtype})"}
    a = r.astype(np.float64).ravel()
    b = c.astype(np.float64).ravel()
    finite = np.isfinite(a) & np.isfinite(b)
    note = ""
    if not finite.all():
        same = (a[~finite] == b[~finite]) | (np.isnan(a[~finite]) & np.isnan(b[~finite]))
        note = f"{int((~finite).sum())} non-finite values{'' if same.all() else ' that differ'}"
        a, b = a[finite], b[finite]
    if not a.size:
        return {"max_abs": 0.0, "mean_abs": 0.0, "rel_error": 0.0, "cosine": 1.0, "note": "empty"}
    diff = np.abs(a - b)
    scale = float(np.max(np.abs(a)))
    # einsum, not BLAS: one small dot per tensor, hundreds of them, each cheap on one core.
    norm = float(np.sqrt(np.einsum("i,i->", a, a) * np.einsum("i,i->", b, b)))
    dot = float(np.einsum("i,i->", a, b))
    cosine = dot / norm if norm > 0 else (1.0 if not diff.any() else 0.0)
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "rel_error": float(diff.max() / scale) if scale > 0 else float(diff.max() > 0),
        "cosine": cosine,
        "note": note,
    }


def per_node(
    reference: str | os.PathLike[str] | models.ModelRef,
    candidate: str | os.PathLike[str] | models.ModelRef,
    inputs: Mapping[str, np.ndarray] | Feeds | None = None,
    *,
    batch: int = 2,
    threads: int | None = None,
) -> pd.DataFrame:
    """Error per intermediate tensor between two ONNX models (fp32 vs int8, CPU vs another provider).

    A model given with ``@provider`` runs there: in this ONNX Runtime, or in the provider
    environment's Python (``"model.onnx@openvino"``, see :mod:`localml_kit.envs`).

    Every node output of both models becomes a graph output; tensors are
    matched by name; one row per reference tensor, in the reference's node
    order: ``tensor``, the reference ``node`` and ``op`` that made it, the
    candidate's (``candidate_node``, ``candidate_op``: ``MatMulInteger`` where
    int8 replaced a ``MatMul``), ``shape``, ``dtype``, ``max_abs``, ``mean_abs``,
    ``rel_error`` (max abs over the reference's largest magnitude), ``cosine``
    (of the flattened tensors), ``added`` (the ``1 - cosine`` this node adds
    above the worst of its inputs': where the divergence starts) and a ``note`` for tensors not compared (no match
    in the candidate, different shapes, not numeric). ``inputs`` default to
    :func:`localml_kit.inputs.inputs_for` (a sample's realistic inputs, ``batch``
    rows). Draw it with ``graph.error_overlay(frame)``.

    Example:
        >>> from localml_kit import compare
        >>> frame = compare.per_node("ppocr-v4-cls", "ppocr-v4-cls")
        >>> float(frame["max_abs"].max()), len(frame) > 100
        (0.0, True)
    """
    ref = models.resolve(reference).require_onnx("per_node")
    cand = models.resolve(candidate).require_onnx("per_node")
    if inputs is None:
        feeds = inputs_for(ref, batch=batch).arrays
    elif isinstance(inputs, Feeds):
        feeds = inputs.arrays
    else:
        feeds = dict(inputs)
    ref_values, ref_made = _run_all(ref, feeds, threads)
    cand_values, cand_made = _run_all(cand, feeds, threads)
    cand_by = {name: (node, op) for name, node, op, _ in cand_made}
    exposed = {name for name, _, op, _ in cand_made if op not in MOVES} | set(cand_values)
    rows = []
    for order, (name, node, op, _) in enumerate(ref_made):
        value = ref_values.get(name)
        row: dict[str, Any] = {
            "order": order,
            "tensor": name,
            "node": node,
            "op": op,
            "candidate_node": cand_by.get(name, ("", ""))[0],
            "candidate_op": cand_by.get(name, ("", ""))[1],
            "shape": "x".join(map(str, np.shape(value))) if value is not None else "",
            "dtype": str(np.asarray(value).dtype) if value is not None else "",
        }
        other = cand_values.get(name)
        if value is None:
            row["note"] = "not a tensor output"
        elif other is None and name in cand_by and name not in exposed:
            where = providers.short_name(cand.provider_name)
            row["note"] = f"not exposed on {where} (it folds shape and data-movement nodes)"
        elif other is None:
            row["note"] = "no tensor of this name in the candidate"
        else:
            row.update(_stats(np.asarray(value), np.asarray(other)))
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("max_abs", "mean_abs", "rel_error", "cosine"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    table["note"] = table["note"].fillna("").astype(str)
    # The error a node adds: its output's 1 - cosine above the worst of its inputs'.
    err = dict(zip(table["tensor"], (1.0 - table["cosine"]).fillna(0.0), strict=True))
    table["added"] = [
        max(float(e) - max((err.get(i, 0.0) for i in ins), default=0.0), 0.0)
        if not np.isnan(e)
        else np.nan
        for (_, _, _, ins), e in zip(ref_made, 1.0 - table["cosine"], strict=True)
    ]
    return table
