"""Carry a GGUF's quantized blocks into an ONNX Runtime GenAI model (precision ``"gguf"``).

The ONNX Runtime GenAI builder's fp32 model of the same GGUF gives the graph
(attention, norms, KV cache, the config GenAI reads); this module swaps its
float weights for the GGUF's own blocks:

- each linear layer ``MatMul`` becomes ``MatMulNBits`` (block size 32) over the
  GGUF integers and scales, plus, for types with a per-block minimum, the exact
  term ``ReduceSum(x per block) @ minima``;
- the token embedding ``Gather`` becomes ``GatherBlockQuantized``, sharing the
  output layer's blocks when the model ties them, as the GGUF does.

Every carried weight is checked against the fp32 model's (which transformers
dequantized from the same GGUF): the reconstruction must agree to float
rounding, or the build stops (:class:`~localml_kit.errors.ConversionError`).
Tensors of other types (F16, F32, K-quants) keep the fp32 model's exact
dequantized weights.

``conversion.build`` (behind ``slm.build``) runs it in a child process
(``python -m localml_kit.conversion carry-blocks``).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import errors
from localml_kit.conversion._blocks import BLOCK, SUPPORTED, Blocks, concat, from_gguf

__all__ = ["CarryReport", "carry"]

# Builder projection name -> the GGUF tensors it packs, in order (alternatives in turn).
_PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "qkv_proj": (("attn_q", "attn_k", "attn_v"), ("attn_qkv",)),
    "q_proj": (("attn_q",),),
    "k_proj": (("attn_k",),),
    "v_proj": (("attn_v",),),
    "o_proj": (("attn_output",),),
    "gate_proj": (("ffn_gate",),),
    "up_proj": (("ffn_up",),),
    "gate_up_proj": (("ffn_gate", "ffn_up"), ("ffn_up",)),
    "down_proj": (("ffn_down",),),
}
_LAYER = re.compile(r"model\.layers\.(\d+)\.(?:attn|mlp)\.(\w+)\.MatMul\.weight$")
_FLOAT_TYPES = {"F32", "F16", "BF16"}
# Reconstruction tolerance relative to the weight's largest magnitude (float rounding only).
_RTOL = 1e-6


@dataclass
class CarryReport:
    """What the carry did: tensors carried by GGUF type, kept as float, and the worst error."""

    carried: dict[str, int] = field(default_factory=dict)
    kept_float: dict[str, int] = field(default_factory=dict)
    max_abs_error: float = 0.0
    accuracy_level: int = 4
    tied_embedding: bool = False
    weight_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _reverse_permute_rows(n_rows: int, n_head: int) -> np.ndarray:
    """The row order transformers applies to llama's GGUF q/k weights (undoing llama.cpp's)."""
    dim = n_rows // n_head // 2
    return np.arange(n_rows).reshape(n_head, dim, 2).swapaxes(2, 1).reshape(n_rows)


class _Gguf:
    def __init__(self, path: Path) -> None:
        import gguf

        self.reader = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}
        arch = self._field("general.architecture") or "llama"
        self.heads = int(self._field(f"{arch}.attention.head_count") or 0)
        self.kv_heads = int(self._field(f"{arch}.attention.head_count_kv") or self.heads)

    def _field(self, key: str) -> Any:
        f = self.reader.fields.get(key)
        if f is None:
            return None
        value = f.parts[f.data[0]]
        return bytes(value).decode() if value.dtype == np.uint8 else value[0]

    def type_of(self, name: str) -> str:
        return str(self.tensors[name].tensor_type.name)

    def blocks(self, name: str) -> Blocks:
        t = self.tensors[name]
        k = int(t.shape[0])
        rows = int(np.prod(t.shape[1:]))
        return from_gguf(self.type_of(name), np.asarray(t.data).reshape(rows, -1), k)


def _match(reference: np.ndarray, blocks: Blocks, heads: int) -> tuple[Blocks, float] | None:
    """``blocks`` (or its rows in transformers' q/k order) against ``reference`` [N, K]."""
    scale = float(np.abs(reference).max()) or 1.0
    candidates = [blocks]
    if heads and blocks.shape[0] % (2 * heads) == 0:
        candidates.append(blocks.rows(_reverse_permute_rows(blocks.shape[0], heads)))
    for cand in candidates:
        err = float(np.abs(cand.dequantize() - reference).max())
        if err <= _RTOL * scale:
            return cand, err
    return None


class _Graph:
    """Accumulates the new nodes and initializers of the rewritten decoder."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        self.new_inits: list[Any] = []
        self.names: set[str] = set()
        self.block_sums: dict[str, str] = {}

    def add_init(self, array: np.ndarray, name: str) -> str:
        """Add an initializer once (a later call with the same name reuses the first)."""
        from onnx import numpy_helper

        if name not in self.names:
            self.names.add(name)
            self.new_inits.append(numpy_helper.from_array(array, name))
        return name

    def const(self, values: list[int]) -> str:
        return self.add_init(np.array(values, np.int64), f"/carry/constants/INT64/{values}")


def _matmul_nbits(
    g: _Graph,
    x: str,
    outputs: list[tuple[str, int]],
    blocks: Blocks,
    name: str,
    stem: str,
    level: int,
    out: list[Any],
) -> None:
    """``MatMulNBits`` over ``blocks`` (+ the minima term), split into ``outputs`` (name, width)."""
    from onnx import helper

    n, k = blocks.shape
    inputs = [x, g.add_init(blocks.packed(), f"{stem}.qweight")]
    inputs.append(g.add_init(blocks.scales.reshape(-1), f"{stem}.scales"))
    zp = blocks.zero_points()
    if zp is not None:
        inputs.append(g.add_init(zp.reshape(-1), f"{stem}.qzeros"))
    y = outputs[0][0] if len(outputs) == 1 else f"{name}/Packed/output_0"
    base = y if blocks.mins is None else f"{name}/MatMulNBits/output_0"
    out.append(
        helper.make_node(
            "MatMulNBits",
            inputs,
            [base],
            name=f"{name}/MatMulNBits",
            domain="com.microsoft",
            K=k,
            N=n,
            bits=blocks.bits,
            block_size=BLOCK,
            accuracy_level=level,
        )
    )
    if blocks.mins is not None:
        sums = g.block_sums.get(x)
        if sums is None:
            # The per-block sums of x, as x @ P with P [K, K/32] the block indicator.
            sums = f"{name}/BlockSum/output_0"
            if f"/carry/block_indicator/{k}" not in g.names:
                indicator = np.kron(
                    np.eye(k // BLOCK, dtype=np.float32), np.ones((BLOCK, 1), np.float32)
                )
                g.add_init(indicator, f"/carry/block_indicator/{k}")
            out.append(
                helper.make_node(
                    "MatMul", [x, f"/carry/block_indicator/{k}"], [sums], name=f"{name}/BlockSum"
                )
            )
            g.block_sums[x] = sums
        minima = g.add_init(np.ascontiguousarray(blocks.mins.T), f"{stem}.minima")
        term = f"{name}/Minima/output_0"
        out.append(helper.make_node("MatMul", [sums, minima], [term], name=f"{name}/Minima"))
        out.append(helper.make_node("Add", [base, term], [y], name=f"{name}/AddMinima"))
    if len(outputs) > 1:
        sizes = g.const([w for _, w in outputs])
        out.append(
            helper.make_node(
                "Split", [y, sizes], [o for o, _ in outputs], name=f"{name}/Split", axis=-1
            )
        )


def _embedding(
    g: _Graph, node: Any, blocks: Blocks, data: str | None, stem: str, out: list[Any]
) -> None:
    """``Gather`` -> ``GatherBlockQuantized`` (+ the minima, gathered per token, when present)."""
    from onnx import helper

    v, k = blocks.shape
    nb = k // BLOCK
    flat = f"{stem}.qweight_rows"
    if data is None:
        g.add_init(blocks.packed().reshape(v, -1), flat)
    else:  # tied: the output layer's blocks, viewed as rows
        out.append(
            helper.make_node(
                "Reshape", [data, g.const([v, -1])], [flat], name=f"{node.name}/Reshape"
            )
        )
    inputs = [flat, node.input[1], g.add_init(blocks.scales, f"{stem}.embed_scales")]
    zp = blocks.zero_points()
    if zp is not None:
        inputs.append(g.add_init(zp, f"{stem}.embed_qzeros"))
    y = node.output[0]
    base = y if blocks.mins is None else f"{node.name}/GatherBlockQuantized/output_0"
    out.append(
        helper.make_node(
            "GatherBlockQuantized",
            inputs,
            [base],
            name=f"{node.name}/GatherBlockQuantized",
            domain="com.microsoft",
            bits=blocks.bits,
            block_size=BLOCK,
            gather_axis=0,
            quantize_axis=1,
        )
    )
    if blocks.mins is None:
        return
    mins = g.add_init(blocks.mins, f"{stem}.embed_minima")
    n = node.name
    out += [
        helper.make_node("Gather", [mins, node.input[1]], [f"{n}/m"], name=f"{n}/GatherMinima"),
        helper.make_node("Unsqueeze", [f"{n}/m", g.const([-1])], [f"{n}/m4"], name=f"{n}/Unsq"),
        helper.make_node(
            "Reshape", [base, g.const([0, 0, nb, BLOCK])], [f"{n}/b4"], name=f"{n}/Blocks"
        ),
        helper.make_node("Add", [f"{n}/b4", f"{n}/m4"], [f"{n}/s4"], name=f"{n}/AddMinima"),
        helper.make_node("Reshape", [f"{n}/s4", g.const([0, 0, k])], [y], name=f"{n}/Rows"),
    ]


def _parts_for(weight: str, gg: _Gguf) -> list[str] | None:
    """The GGUF tensor names a builder weight packs, or None when it is not a known projection."""
    if weight == "lm_head.MatMul.weight":
        return ["output.weight" if "output.weight" in gg.tensors else "token_embd.weight"]
    found = _LAYER.match(weight)
    if not found or found.group(2) not in _PARTS:
        return None
    layer = found.group(1)
    for option in _PARTS[found.group(2)]:
        names = [f"blk.{layer}.{p}.weight" for p in option]
        if all(n in gg.tensors for n in names):
            return names
    return None


def _carried_blocks(
    gg: _Gguf, names: list[str], reference: np.ndarray, report: CarryReport, centre: bool = True
) -> Blocks | None:
    """The GGUF blocks of ``names`` (row-stacked), checked against reference [N, K]; None = keep."""
    types = [gg.type_of(n) for n in names]
    if any(t not in SUPPORTED for t in types):
        for t in types:
            report.kept_float[t] = report.kept_float.get(t, 0) + 1
        return None
    parts, row = [], 0
    for name in names:
        b = gg.blocks(name)
        heads = gg.heads if ".attn_q." in name else gg.kv_heads if ".attn_k." in name else 0
        got = _match(reference[row : row + b.shape[0]], b, heads)
        if got is None:
            raise errors.ConversionError(
                f"GGUF tensor {name} ({b.gguf_type}) does not reconstruct the fp32 model's weights; "
                "the GGUF and the fp32 build do not come from the same file. Build the fp32 "
                "model from this GGUF (slm.build(gguf, 'fp32', force=True)) and carry again."
            )
        parts.append(got[0])
        row += b.shape[0]
    if row != reference.shape[0]:
        raise errors.ConversionError(
            f"{names} hold {row} rows and the fp32 weight has {reference.shape[0]}: the GGUF and "
            "the fp32 build do not match. Build the fp32 model from this GGUF "
            "(slm.build(gguf, 'fp32', force=True)) and carry again."
        )
    blocks = concat(parts) if len(parts) > 1 else parts[0]
    if centre:
        blocks = blocks.centred()
    err = float(np.abs(blocks.dequantize() - reference).max())
    if err > _RTOL * (float(np.abs(reference).max()) or 1.0):
        raise errors.ConversionError(
            f"the carried blocks of {names} differ from the GGUF's values by {err:.3g}, more "
            "than float rounding; this is a bug in the carry: report it, and build at int4, "
            "int8 or fp32 meanwhile."
        )
    report.max_abs_error = max(report.max_abs_error, err)
    for t in types:
        report.carried[t] = report.carried.get(t, 0) + 1
    return blocks


def carry(
    gguf_path: Path, fp32_folder: Path, out: Path, accuracy_level: int = 4, centre: bool = True
) -> CarryReport:
    """Write ``out``: the fp32 GenAI model of ``gguf_path`` with the GGUF's blocks carried in.

    Usage (reads and rewrites every weight: tens of seconds for a 135M model)::

        report = carry(Path("m.gguf"), Path("onnx-fp32"), Path("onnx-gguf"))
        report.carried  # e.g. {'Q4_1': 210, 'Q8_0': 1}
    """
    import onnx
    from onnx import numpy_helper

    gg = _Gguf(gguf_path)
    model = onnx.load(str(fp32_folder / "model.onnx"))
    g = _Graph(model)
    report = CarryReport(accuracy_level=accuracy_level)
    producers = {o: n for n in g.graph.node for o in n.output}
    # First pass: the carried blocks of every projection, grouped by input (gate and up
    # share theirs and become one MatMulNBits, split after).
    carried: dict[str, tuple[Any, Blocks]] = {}
    groups: dict[str, list[Any]] = {}
    for node in g.graph.node:
        weight = node.input[1] if node.op_type == "MatMul" and len(node.input) > 1 else ""
        names = _parts_for(weight, gg) if weight in g.inits else None
        if names is None:
            continue
        reference = numpy_helper.to_array(g.inits[weight]).T
        blocks = _carried_blocks(gg, names, reference, report, centre)
        if blocks is not None:
            carried[node.name] = (node, blocks)
            if weight != "lm_head.MatMul.weight":
                groups.setdefault(node.input[0], []).append(node)
    nodes: list[Any] = []
    lm_head: tuple[str, Blocks] | None = None  # (qweight name, blocks) of the output layer
    embed_node = None
    for node in g.graph.node:
        if node.name not in carried:
            if node.op_type == "Gather" and node.input[1] == "input_ids":
                embed_node = node
            nodes.append(node)
            continue
        group = groups.get(node.input[0], [node])
        if node is not group[0]:
            continue  # emitted with the first of its group
        parts = [carried[n.name][1] for n in group]
        blocks = concat(parts) if len(parts) > 1 else parts[0]
        stem = group[0].input[1].removesuffix(".weight")
        if len(group) > 1:
            stem = "+".join(n.input[1].removesuffix(".MatMul.weight") for n in group)
        outputs = [(n.output[0], b.shape[0]) for n, b in zip(group, parts, strict=True)]
        _matmul_nbits(g, node.input[0], outputs, blocks, node.name, stem, accuracy_level, nodes)
        if node.input[1] == "lm_head.MatMul.weight":
            lm_head = (f"{stem}.qweight", blocks)
    if embed_node is not None:
        _replace_embedding(g, gg, embed_node, producers, lm_head, nodes, report)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.graph.initializer if i.name in used]
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    del g.graph.initializer[:]
    g.graph.initializer.extend(kept + [i for i in g.new_inits if i.name in used])
    report.weight_bytes = sum(
        int(np.prod(i.dims)) * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(i.data_type)).itemsize
        for i in g.graph.initializer
    )
    _save(model, fp32_folder, out, report)
    return report


def _replace_embedding(
    g: _Graph,
    gg: _Gguf,
    node: Any,
    producers: dict[str, Any],
    lm_head: tuple[str, Blocks] | None,
    nodes: list[Any],
    report: CarryReport,
) -> None:
    from onnx import numpy_helper

    table = node.input[0]
    source = producers.get(table)
    transposed = source if source is not None and source.op_type == "Transpose" else None
    if "token_embd.weight" not in gg.tensors:
        return
    if gg.type_of("token_embd.weight") not in SUPPORTED:
        report.kept_float[gg.type_of("token_embd.weight")] = 1
        return
    new: list[Any] = []
    if transposed is not None and lm_head is not None and "output.weight" not in gg.tensors:
        # Tied: the embedding reads the output layer's blocks, as the GGUF's one tensor does.
        report.tied_embedding = True
        _embedding(g, node, lm_head[1], lm_head[0], "model.embed_tokens", new)
    else:
        reference_name = transposed.input[0] if transposed is not None else table
        reference = numpy_helper.to_array(g.inits[reference_name])
        if transposed is not None:
            reference = reference.T
        blocks = _carried_blocks(gg, ["token_embd.weight"], reference, report)
        if blocks is None:
            return
        _embedding(g, node, blocks, None, "model.embed_tokens", new)
    if transposed is not None:
        nodes.remove(transposed)
    at = nodes.index(node)
    nodes[at : at + 1] = new


def _save(model: Any, fp32_folder: Path, out: Path, report: CarryReport) -> None:
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    for f in fp32_folder.iterdir():
        if f.is_file() and not f.name.startswith("model.onnx"):
            shutil.copy2(f, out / f.name)
    onnx.save_model(
        model,
        str(out / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=1024,
    )
    (out / "carried.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
