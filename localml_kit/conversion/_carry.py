"""Carry a GGUF's quantized blocks into an ONNX Runtime GenAI model (precision ``"gguf"``).

The ONNX Runtime GenAI builder's fp32 model of the same GGUF gives the graph
(attention, norms, KV cache, the config GenAI reads); this module swaps its
float weights for the GGUF's own blocks:

- each linear layer ``MatMul`` becomes ``MatMulNBits`` (blocks of 32, or 16
  for Q2_K, Q3_K and Q6_K) over the GGUF integers and scales, plus, for types
  with a per-block minimum, the exact term ``(x summed per block) @ minima``;
  a projection packing tensors of different block sizes or widths (a Q4_K_M
  file's Q4_K q and k with a Q6_K v) gets one ``MatMulNBits`` per run of alike
  tensors, concatenated;
- the token embedding ``Gather`` becomes ``GatherBlockQuantized``, sharing the
  output layer's blocks when the model ties them, as the GGUF does;
- F16 and BF16 weights are stored at their own width and cast to fp32 once,
  when the session loads (ONNX Runtime folds the ``Cast``);
- the output layer reads the last position only, as llama.cpp's does: a prompt
  of 46 tokens no longer pays for 46 rows of vocabulary logits before its first
  token. The ``logits`` output is ``[batch, 1, vocab]``, which ONNX Runtime GenAI
  reads as trimmed prefill logits; :func:`localml_kit._genai.logits` feeds such a
  model one token at a time for the logits at every position.

Every carried weight is checked twice: its blocks must give
``gguf.quants.dequantize``'s values bit for bit, and they must agree with the
fp32 model's weights (which transformers dequantized from the same GGUF) to
float rounding, or the build stops (:class:`~localml_kit.errors.ConversionError`).
``carried.json`` lists every GGUF tensor type found and how its tensors were
carried (F32 norms stay fp32, as in the file).

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
from localml_kit.conversion._blocks import SUPPORTED, Blocks, concat, describe, from_gguf

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
# GGUF float types stored at their own width (ONNX tensor type), cast to fp32 at load.
_HALF_TYPES = {"F16": 10, "BF16": 16}
# Reconstruction tolerance relative to the weight's largest magnitude (float rounding only).
_RTOL = 1e-6


@dataclass
class CarryReport:
    """What the carry did: tensors carried by GGUF type, kept as float, and the worst error.

    ``types`` holds every GGUF tensor type in the file, each with how many of
    its tensors were carried which way (e.g. ``{"Q6_K": {"MatMulNBits 8-bit
    blocks of 16": 14}}``); ``kept_float`` counts the tensors of a quantized or
    half-width type that the carry could not map and left as fp32.
    """

    carried: dict[str, int] = field(default_factory=dict)
    kept_float: dict[str, int] = field(default_factory=dict)
    max_abs_error: float = 0.0
    accuracy_level: int = 4
    tied_embedding: bool = False
    last_position_logits: bool = False
    weight_bytes: int = 0
    types: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def count(self, table: dict[str, int], gguf_type: str) -> None:
        table[gguf_type] = table.get(gguf_type, 0) + 1


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
        """The tensor's blocks, checked to give ``gguf.quants.dequantize``'s values bit for bit."""
        from gguf import quants

        t = self.tensors[name]
        k = int(t.shape[0])
        rows = int(np.prod(t.shape[1:]))
        blocks = from_gguf(self.type_of(name), np.asarray(t.data).reshape(rows, -1), k)
        want = quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(rows, k)
        if not np.array_equal(blocks.dequantize(), want):
            raise errors.ConversionError(
                f"the blocks of GGUF tensor {name} ({blocks.gguf_type}) do not give the values "
                "gguf.quants.dequantize gives; this is a bug in the carry: report it, and build "
                "at int4, int8 or fp32 meanwhile."
            )
        return blocks

    def values(self, name: str) -> np.ndarray:
        """The tensor's values [N, K] as float32 (``gguf.quants.dequantize``)."""
        from gguf import quants

        t = self.tensors[name]
        rows = int(np.prod(t.shape[1:]))
        return quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(rows, int(t.shape[0]))


def _orders(n_rows: int, heads: int) -> list[np.ndarray | None]:
    """The row orders a GGUF tensor may have in the fp32 model: as is, or transformers' q/k order."""
    orders: list[np.ndarray | None] = [None]
    if heads and n_rows % (2 * heads) == 0:
        orders.append(_reverse_permute_rows(n_rows, heads))
    return orders


def _match(reference: np.ndarray, blocks: Blocks, heads: int) -> tuple[Blocks, float] | None:
    """``blocks`` (or its rows in transformers' q/k order) against ``reference`` [N, K]."""
    scale = float(np.abs(reference).max()) or 1.0
    for order in _orders(blocks.shape[0], heads):
        cand = blocks if order is None else blocks.rows(order)
        err = float(np.abs(cand.dequantize() - reference).max())
        if err <= _RTOL * scale:
            return cand, err
    return None


def _heads_of(gg: _Gguf, name: str) -> int:
    return gg.heads if ".attn_q." in name else gg.kv_heads if ".attn_k." in name else 0


class _Graph:
    """Accumulates the new nodes and initializers of the rewritten decoder."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        self.new_inits: list[Any] = []
        self.names: set[str] = set()
        # (input, block size) -> the per-block sums of that input, computed once.
        self.block_sums: dict[tuple[str, int], str] = {}

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
    size = blocks.block_size
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
            block_size=size,
            accuracy_level=level,
        )
    )
    if blocks.mins is not None:
        sums = g.block_sums.get((x, size))
        if sums is None:
            # The per-block sums of x, as x @ P with P [K, K/size] the block indicator.
            sums = f"{name}/BlockSum/output_0"
            indicator = f"/carry/block_indicator/{k}" + ("" if size == 32 else f"/{size}")
            if indicator not in g.names:
                g.add_init(
                    np.kron(np.eye(k // size, dtype=np.float32), np.ones((size, 1), np.float32)),
                    indicator,
                )
            out.append(helper.make_node("MatMul", [x, indicator], [sums], name=f"{name}/BlockSum"))
            g.block_sums[(x, size)] = sums
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


def _runs(parts: list[Blocks]) -> list[list[int]]:
    """Consecutive parts of one block size and width (one ``MatMulNBits`` each)."""
    runs: list[list[int]] = []
    for i, p in enumerate(parts):
        first = parts[runs[-1][0]] if runs else None
        if first is not None and (first.block_size, first.bits) == (p.block_size, p.bits):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _projection(
    g: _Graph,
    x: str,
    outputs: list[tuple[str, int]],
    parts: list[Blocks],
    name: str,
    stem: str,
    level: int,
    out: list[Any],
) -> list[Blocks]:
    """The GGUF tensors ``parts`` (row-stacked) as ``MatMulNBits`` from ``x`` into ``outputs``.

    Tensors alike in block size and width share one node; a mix (Q4_K q and k
    with a Q6_K v) gets one node per run, concatenated. Returns, per part, the
    blocks its node holds.
    """
    from onnx import helper

    runs = _runs(parts)
    if len(runs) == 1:
        blocks = concat(parts) if len(parts) > 1 else parts[0]
        _matmul_nbits(g, x, outputs, blocks, name, stem, level, out)
        return [blocks] * len(parts)
    forms: list[Blocks] = []
    pieces = []
    for j, run in enumerate(runs):
        blocks = concat([parts[i] for i in run])
        piece = f"{name}/Run{j}/output_0"
        _matmul_nbits(
            g, x, [(piece, blocks.shape[0])], blocks, f"{name}/Run{j}", f"{stem}.run{j}", level, out
        )
        pieces.append(piece)
        forms += [blocks] * len(run)
    y = outputs[0][0] if len(outputs) == 1 else f"{name}/Joined/output_0"
    out.append(helper.make_node("Concat", pieces, [y], name=f"{name}/Concat", axis=-1))
    if len(outputs) > 1:
        sizes = g.const([w for _, w in outputs])
        out.append(
            helper.make_node(
                "Split", [y, sizes], [o for o, _ in outputs], name=f"{name}/Split", axis=-1
            )
        )
    return forms


def _embedding(
    g: _Graph, node: Any, blocks: Blocks, data: str | None, stem: str, out: list[Any]
) -> None:
    """``Gather`` -> ``GatherBlockQuantized`` (+ the minima, gathered per token, when present)."""
    from onnx import helper

    v, k = blocks.shape
    size = blocks.block_size
    nb = k // size
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
            block_size=size,
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
            "Reshape", [base, g.const([0, 0, nb, size])], [f"{n}/b4"], name=f"{n}/Blocks"
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


def _mismatch(names: list[str], rows: int, reference: np.ndarray) -> errors.ConversionError:
    return errors.ConversionError(
        f"{names} hold {rows} rows and the fp32 weight has {reference.shape[0]}: the GGUF and "
        "the fp32 build do not match. Build the fp32 model from this GGUF "
        "(slm.build(gguf, 'fp32', force=True)) and carry again."
    )


def _not_from(name: str, gguf_type: str) -> errors.ConversionError:
    return errors.ConversionError(
        f"GGUF tensor {name} ({gguf_type}) does not reconstruct the fp32 model's weights; "
        "the GGUF and the fp32 build do not come from the same file. Build the fp32 "
        "model from this GGUF (slm.build(gguf, 'fp32', force=True)) and carry again."
    )


def _carried_parts(
    gg: _Gguf, names: list[str], reference: np.ndarray, report: CarryReport, centre: bool = True
) -> list[Blocks] | None:
    """The GGUF blocks of ``names``, each checked against its rows of reference [N, K].

    None when a tensor's type is not block-quantized (the caller keeps the weight).
    """
    types = [gg.type_of(n) for n in names]
    if any(t not in SUPPORTED for t in types):
        return None
    parts, row = [], 0
    for name in names:
        b = gg.blocks(name)
        got = _match(reference[row : row + b.shape[0]], b, _heads_of(gg, name))
        if got is None:
            raise _not_from(name, b.gguf_type)
        blocks = got[0].centred() if centre else got[0]
        err = float(np.abs(blocks.dequantize() - reference[row : row + b.shape[0]]).max())
        if err > _RTOL * (float(np.abs(reference).max()) or 1.0):
            raise errors.ConversionError(
                f"the carried blocks of {name} differ from the GGUF's values by {err:.3g}, more "
                "than float rounding; this is a bug in the carry: report it, and build at int4, "
                "int8 or fp32 meanwhile."
            )
        report.max_abs_error = max(report.max_abs_error, err)
        parts.append(blocks)
        row += b.shape[0]
    if row != reference.shape[0]:
        raise _mismatch(names, row, reference)
    for t in types:
        report.count(report.carried, t)
    return parts


def _half_width(gg: _Gguf, names: list[str], reference: np.ndarray, report: CarryReport) -> int:
    """The ONNX type to store an F16 / BF16 weight at (0: not such a weight), checked exact."""
    types = {gg.type_of(n) for n in names}
    if len(types) != 1 or next(iter(types)) not in _HALF_TYPES:
        return 0
    row = 0
    for name in names:
        values = gg.values(name)
        want = reference[row : row + values.shape[0]]
        orders = _orders(values.shape[0], _heads_of(gg, name))
        if not any(np.array_equal(values if o is None else values[o], want) for o in orders):
            raise _not_from(name, gg.type_of(name))
        row += values.shape[0]
    if row != reference.shape[0]:
        raise _mismatch(names, row, reference)
    for n in names:
        report.count(report.carried, gg.type_of(n))
    return _HALF_TYPES[next(iter(types))]


def _store_half(g: _Graph, weight: str, onnx_type: int) -> Any:
    """Store fp32 initializer ``weight`` at half width; return the ``Cast`` that gives it back."""
    from onnx import TensorProto, helper, numpy_helper

    values = numpy_helper.to_array(g.inits[weight]).astype(np.float32)
    if onnx_type == TensorProto.FLOAT16:
        stored, tensor = f"{weight}.fp16", numpy_helper.from_array(values.astype(np.float16))
        exact = np.array_equal(values.astype(np.float16).astype(np.float32), values)
    else:
        bits = np.ascontiguousarray(values).view(np.uint32)
        stored = f"{weight}.bf16"
        tensor = helper.make_tensor(
            stored,
            TensorProto.BFLOAT16,
            values.shape,
            (bits >> 16).astype(np.uint16).tobytes(),
            True,
        )
        exact = not np.any(bits & 0xFFFF)
    if not exact:
        raise errors.ConversionError(
            f"{weight} does not hold {TensorProto.DataType.Name(onnx_type)} values exactly; this "
            "is a bug in the carry: report it, and build at int4, int8 or fp32 meanwhile."
        )
    tensor.name = stored
    g.names.add(stored)
    g.new_inits.append(tensor)
    return helper.make_node(
        "Cast", [stored], [weight], name=f"/carry/Cast/{weight}", to=TensorProto.FLOAT
    )


def carry(
    gguf_path: Path, fp32_folder: Path, out: Path, accuracy_level: int = 4, centre: bool = True
) -> CarryReport:
    """Write ``out``: the fp32 GenAI model of ``gguf_path`` with the GGUF's blocks carried in.

    Usage (reads and rewrites every weight: tens of seconds for a 135M model)::

        report = carry(Path("m.gguf"), Path("onnx-fp32"), Path("onnx-gguf"))
        report.carried  # e.g. {'Q4_1': 210, 'Q8_0': 1}
        report.types  # e.g. {'Q4_1': {'MatMulNBits 4-bit blocks of 32 + minimum term': 210}, ...}
    """
    import onnx
    from onnx import numpy_helper

    gg = _Gguf(gguf_path)
    model = onnx.load(str(fp32_folder / "model.onnx"))
    g = _Graph(model)
    report = CarryReport(accuracy_level=accuracy_level)
    producers = {o: n for n in g.graph.node for o in n.output}
    uses: dict[str, list[str]] = {}  # GGUF tensor -> how it was carried
    halves: dict[str, int] = {}  # fp32 weight -> the ONNX type it is stored at
    # First pass: the carried blocks of every projection, grouped by input (gate and up
    # share theirs and become one MatMulNBits, split after).
    carried: dict[str, tuple[Any, list[Blocks]]] = {}
    groups: dict[str, list[Any]] = {}
    tensors: dict[str, list[str]] = {}
    for node in g.graph.node:
        weight = node.input[1] if node.op_type == "MatMul" and len(node.input) > 1 else ""
        names = _parts_for(weight, gg) if weight in g.inits else None
        if names is None:
            continue
        reference = numpy_helper.to_array(g.inits[weight]).T
        parts = _carried_parts(gg, names, reference, report, centre)
        if parts is None:
            half = _half_width(gg, names, reference, report)
            if half:
                halves[weight] = half
                for n in names:
                    uses.setdefault(n, []).append(f"{gg.type_of(n).lower()} weights + Cast")
            continue
        carried[node.name] = (node, parts)
        tensors[node.name] = names
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
        parts = [b for n in group for b in carried[n.name][1]]
        names = [t for n in group for t in tensors[n.name]]
        stem = group[0].input[1].removesuffix(".weight")
        if len(group) > 1:
            stem = "+".join(n.input[1].removesuffix(".MatMul.weight") for n in group)
        outputs = [(n.output[0], sum(b.shape[0] for b in carried[n.name][1])) for n in group]
        forms = _projection(
            g, node.input[0], outputs, parts, node.name, stem, accuracy_level, nodes
        )
        for name, form in zip(names, forms, strict=True):
            uses.setdefault(name, []).append(f"MatMulNBits {describe(form)}")
        if node.input[1] == "lm_head.MatMul.weight":
            lm_head = (f"{stem}.qweight", forms[0])
    if embed_node is not None:
        _replace_embedding(g, gg, embed_node, producers, lm_head, nodes, report, uses, halves)
    nodes = [_store_half(g, w, t) for w, t in halves.items()] + nodes
    report.last_position_logits = _last_position_logits(g, nodes)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.graph.initializer if i.name in used and i.name not in halves]
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    del g.graph.initializer[:]
    g.graph.initializer.extend(kept + [i for i in g.new_inits if i.name in used])
    report.weight_bytes = sum(
        int(np.prod(i.dims)) * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(i.data_type)).itemsize
        for i in g.graph.initializer
    )
    _account(gg, uses, report)
    _save(model, fp32_folder, out, report)
    return report


# Ops that act on each position alone (with constants): between the output layer and ``logits``.
_PER_POSITION = {"Cast", "Mul", "Div", "Tanh"}


def _last_position_logits(g: _Graph, nodes: list[Any], name: str = "logits") -> bool:
    """Slice the output layer's input to the last position; ``logits`` becomes [batch, 1, vocab].

    Returns False (and changes nothing) when ``logits`` is not made by a MatMul
    (or MatMulNBits) followed only by per-position ops.
    """
    from onnx import helper

    outputs = [o for o in g.graph.output if o.name == name]
    producers = {o: n for n in nodes for o in n.output}
    node = producers.get(name)
    constants = {i.name for i in g.graph.initializer} | g.names
    while (
        node is not None
        and node.op_type in _PER_POSITION
        and all(i in constants for i in node.input[1:])
    ):
        node = producers.get(node.input[0])
    if not outputs or node is None or node.op_type not in ("MatMul", "MatMulNBits"):
        return False
    dims = outputs[0].type.tensor_type.shape.dim
    if len(dims) != 3:
        return False
    last = f"{node.name}/LastPosition/output_0"
    slice_inputs = [node.input[0], g.const([-1]), g.const([2**62]), g.const([1])]
    nodes.insert(
        nodes.index(node),
        helper.make_node("Slice", slice_inputs, [last], name=f"{node.name}/LastPosition"),
    )
    node.input[0] = last
    dims[1].Clear()
    dims[1].dim_value = 1
    return True


def _account(gg: _Gguf, uses: dict[str, list[str]], report: CarryReport) -> None:
    """``report.types``: every GGUF tensor by type and how it was carried (and ``kept_float``)."""
    for name, tensor in gg.tensors.items():
        gguf_type = gg.type_of(name)
        if name in uses:
            how = " and ".join(dict.fromkeys(uses[name]))
        elif gguf_type == "F32":
            how = "fp32, as in the file"
        elif len(tensor.shape) < 2 or int(np.prod(tensor.shape[1:])) == 1:
            how = "fp32 in the fp32 build (a vector: norm or bias)"
        else:
            how = "kept as fp32 (a tensor the carry does not map)"
            report.count(report.kept_float, gguf_type)
        table = report.types.setdefault(gguf_type, {})
        table[how] = table.get(how, 0) + 1


def _replace_embedding(
    g: _Graph,
    gg: _Gguf,
    node: Any,
    producers: dict[str, Any],
    lm_head: tuple[str, Blocks] | None,
    nodes: list[Any],
    report: CarryReport,
    uses: dict[str, list[str]],
    halves: dict[str, int],
) -> None:
    from onnx import numpy_helper

    table = node.input[0]
    source = producers.get(table)
    transposed = source if source is not None and source.op_type == "Transpose" else None
    name = "token_embd.weight"
    if name not in gg.tensors:
        return
    gguf_type = gg.type_of(name)
    tied = transposed is not None and "output.weight" not in gg.tensors
    if (
        transposed is not None and tied and transposed.input[0] in halves
    ):  # the output layer's half-width weights
        uses.setdefault(name, []).append("embedding tied to the output layer's weights")
        report.tied_embedding = True
        return
    reference_name = transposed.input[0] if transposed is not None else table
    if gguf_type in _HALF_TYPES and not tied and reference_name in g.inits:
        reference = numpy_helper.to_array(g.inits[reference_name])
        reference = reference.T if transposed is not None else reference
        half = _half_width(gg, [name], reference, report)
        halves[reference_name] = half
        uses.setdefault(name, []).append(f"{gguf_type.lower()} embedding + Cast")
        return
    if gguf_type not in SUPPORTED:
        return
    new: list[Any] = []
    if tied and lm_head is not None:
        # Tied: the embedding reads the output layer's blocks, as the GGUF's one tensor does.
        report.tied_embedding = True
        _embedding(g, node, lm_head[1], lm_head[0], "model.embed_tokens", new)
        uses.setdefault(name, []).append("GatherBlockQuantized on the output layer's blocks")
    else:
        reference = numpy_helper.to_array(g.inits[reference_name])
        if transposed is not None:
            reference = reference.T
        parts = _carried_parts(gg, [name], reference, report)
        if parts is None:
            return
        _embedding(g, node, parts[0], None, "model.embed_tokens", new)
        uses.setdefault(name, []).append(f"GatherBlockQuantized {describe(parts[0])}")
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
