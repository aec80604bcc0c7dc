"""GGUF blocks carried into ONNX: exact reconstruction per type, the operators, the real SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gguf import quants
from onnx import helper, numpy_helper

from localml_kit import _genai, errors, samples, slm
from localml_kit.conversion import _blocks, _carry

# Bytes per block (per super-block of 256 for the K-quants), by GGUF type.
TYPES = {
    "Q4_0": 18,
    "Q4_1": 20,
    "Q5_0": 22,
    "Q5_1": 24,
    "Q8_0": 34,
    "Q2_K": 84,
    "Q3_K": 110,
    "Q4_K": 144,
    "Q5_K": 176,
    "Q6_K": 210,
}
# Where a K-quant keeps its fp16 super-block scale and minimum scale (byte offsets).
K_HALVES = {"Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}
# (bits, block size) each type is carried at.
FORMS = {
    "Q4_0": (4, 32),
    "Q4_1": (4, 32),
    "Q5_0": (8, 32),
    "Q5_1": (8, 32),
    "Q8_0": (8, 32),
    "Q2_K": (4, 16),
    "Q3_K": (4, 16),
    "Q4_K": (4, 32),
    "Q5_K": (8, 32),
    "Q6_K": (8, 16),
}


def random_gguf_rows(gguf_type: str, n: int, k: int, seed: int = 0) -> np.ndarray:
    """Random GGUF rows as a quantizer writes them: random integers and small scales, a positive
    fp16 scale and, for the ``_1`` types, a minimum between ``-top * d`` and 0; the K-quants'
    6- and 8-bit sub-block scales and minima are random bytes."""
    rng = np.random.default_rng(seed)
    size = TYPES[gguf_type]
    if gguf_type in K_HALVES:
        raw = rng.integers(0, 256, size=(n, k // 256, size), dtype=np.uint8)
        for at in K_HALVES[gguf_type]:
            half = (np.abs(rng.standard_normal((n, k // 256, 1))) * 0.01 + 1e-4).astype(np.float16)
            raw[..., at : at + 2] = half.view(np.uint8)
        return raw.reshape(n, -1)
    raw = rng.integers(0, 256, size=(n, k // 32, size), dtype=np.uint8)
    d = np.abs(rng.standard_normal((n, k // 32, 1))) * 0.05 + 1e-3
    halves = d
    if gguf_type.endswith("_1"):
        top = 15 if gguf_type.startswith("Q4") else 31
        halves = np.concatenate([d, -d * rng.uniform(0, top, d.shape)], axis=-1)
    halves = halves.astype(np.float16)
    raw[..., : 2 * halves.shape[-1]] = halves.view(np.uint8).reshape(n, k // 32, -1)
    return raw.reshape(n, -1)


def blocks_of(gguf_type: str, n: int, k: int, seed: int = 0) -> _blocks.Blocks:
    return _blocks.from_gguf(gguf_type, random_gguf_rows(gguf_type, n, k, seed), k)


@pytest.mark.parametrize("gguf_type", sorted(TYPES))
def test_blocks_reconstruct_the_gguf_values_exactly(gguf_type: str) -> None:
    """Every carried form gives gguf.quants.dequantize's values bit for bit."""
    raw = random_gguf_rows(gguf_type, 12, 512)
    expected = quants.dequantize(raw, gguf.GGMLQuantizationType[gguf_type])
    assert np.isfinite(expected).all() and np.abs(expected).max() > 0
    blocks = _blocks.from_gguf(gguf_type, raw, 512)
    assert blocks.shape == (12, 512) and (blocks.bits, blocks.block_size) == FORMS[gguf_type]
    np.testing.assert_array_equal(blocks.dequantize(), expected)
    np.testing.assert_array_equal(blocks.widened().dequantize(), expected)
    np.testing.assert_array_equal(blocks.reblocked(16).dequantize(), expected)
    centred = blocks.centred()
    np.testing.assert_array_equal(centred.dequantize(), expected)
    if blocks.mins is not None:
        # The integer zero point carries the block's offset where that is exact (most blocks);
        # what is left there is at most half a step (where the offset is within the range).
        assert centred.mins is not None and not isinstance(centred.zero_point, int)
        moved = centred.zero_point > 0
        assert moved.mean() > 0.4
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = -blocks.mins / blocks.scales
        inside = moved & (ratio <= (15 if blocks.bits == 4 else 255))
        assert inside.mean() > 0.3
        assert np.all(np.abs(centred.mins[inside]) <= np.abs(blocks.scales[inside]) / 2 + 1e-8)


def test_concat_mixes_block_sizes_and_widths_exactly() -> None:
    parts = [blocks_of("Q4_K", 8, 256, 1).centred(), blocks_of("Q6_K", 4, 256, 2)]
    joined = _blocks.concat(parts)
    assert (joined.bits, joined.block_size) == (8, 16)
    want = np.concatenate([p.dequantize() for p in parts])
    np.testing.assert_array_equal(joined.dequantize(), want)
    same_width = _blocks.concat([blocks_of("Q3_K", 8, 256, 3), blocks_of("Q2_K", 4, 256, 4)])
    assert (same_width.bits, same_width.block_size) == (4, 16)  # zero points 8 and 0: per block


def test_unsupported_types_and_ragged_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="IQ4_XS is not carried"):
        _blocks.from_gguf("IQ4_XS", np.zeros((1, 136), np.uint8), 256)
    with pytest.raises(ValueError, match="whole Q8_0 blocks of 32"):
        _blocks.from_gguf("Q8_0", np.zeros((1, 34), np.uint8), 40)
    with pytest.raises(ValueError, match="whole Q4_K blocks of 256"):
        _blocks.from_gguf("Q4_K", np.zeros((1, 144), np.uint8), 576)


def _session(nodes: list, graph: _carry._Graph, inputs: list, outputs: list[str]):
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "carry",
            inputs,
            [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in outputs],
            graph.new_inits,
        ),
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
        ir_version=10,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize("gguf_type", sorted(TYPES))
def test_matmulnbits_computes_with_the_gguf_weights(gguf_type: str) -> None:
    """The kit's MatMulNBits (+ minima) nodes give x @ W.T for W the GGUF's values (two outputs)."""
    k, n_gate, n_up = 512, 40, 24
    gate = blocks_of(gguf_type, n_gate, k, 1).centred()
    up = blocks_of(gguf_type, n_up, k, 2).centred()
    graph = _carry._Graph(helper.make_model(helper.make_graph([], "empty", [], [])))
    nodes: list = []
    _carry._matmul_nbits(
        graph,
        "x",
        [("gate", n_gate), ("up", n_up)],
        _blocks.concat([gate, up]),
        "/mm",
        "w",
        0,
        nodes,
    )
    x_info = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, k])
    session = _session(nodes, graph, [x_info], ["gate", "up"])
    x = np.random.default_rng(3).standard_normal((1, 3, k)).astype(np.float32)
    got_gate, got_up = session.run(None, {"x": x})
    for got, blocks in ((got_gate, gate), (got_up, up)):
        w = blocks.dequantize().T.astype(np.float64)
        want = x.astype(np.float64) @ w
        # fp32 accumulation over K terms: error relative to the sum of magnitudes.
        bound = 1e-5 * float((np.abs(x) @ np.abs(w)).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=bound)


def test_a_projection_of_mixed_types_runs_one_node_per_run() -> None:
    """Q4_K q, Q4_K k and Q6_K v (a Q4_K_M layer): two MatMulNBits, concatenated, exact."""
    k = 256
    parts = [
        blocks_of("Q4_K", 32, k, 5).centred(),
        blocks_of("Q4_K", 16, k, 6).centred(),
        blocks_of("Q6_K", 16, k, 7),
    ]
    graph = _carry._Graph(helper.make_model(helper.make_graph([], "empty", [], [])))
    nodes: list = []
    forms = _carry._projection(graph, "x", [("qkv", 64)], parts, "/qkv", "w", 0, nodes)
    assert [n.op_type for n in nodes].count("MatMulNBits") == 2
    assert [(f.bits, f.block_size) for f in forms] == [(4, 32), (4, 32), (8, 16)]
    x_info = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, k])
    session = _session(nodes, graph, [x_info], ["qkv"])
    x = np.random.default_rng(8).standard_normal((1, 2, k)).astype(np.float32)
    (got,) = session.run(None, {"x": x})
    weights = np.concatenate([p.dequantize() for p in parts]).astype(np.float64)
    bound = 1e-5 * float((np.abs(x) @ np.abs(weights).T).max())
    np.testing.assert_allclose(got, x.astype(np.float64) @ weights.T, rtol=0, atol=bound)


@pytest.mark.parametrize("gguf_type", ["Q8_0", "Q4_1", "Q4_0", "Q4_K", "Q6_K", "Q2_K"])
def test_gather_block_quantized_returns_the_gguf_rows(gguf_type: str) -> None:
    k, vocab = 256, 50
    blocks = blocks_of(gguf_type, vocab, k, 4).centred()
    graph = _carry._Graph(helper.make_model(helper.make_graph([], "empty", [], [])))
    node = helper.make_node("Gather", ["table", "input_ids"], ["embedded"], name="/embed")
    nodes: list = []
    _carry._embedding(graph, node, blocks, None, "embed", nodes)
    ids_info = helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, [1, 4])
    session = _session(nodes, graph, [ids_info], ["embedded"])
    ids = np.array([[0, 7, 49, 7]], np.int64)
    (got,) = session.run(None, {"input_ids": ids})
    np.testing.assert_array_equal(got[0], blocks.dequantize()[ids[0]])


# ---- a whole carry: a synthetic GGUF of mixed types, the real SmolLM2 ---------------------


def _onnx_weight(inits: dict[str, np.ndarray], stem: str, k: int) -> np.ndarray:
    """Decode a MatMulNBits weight from the model's initializers, independently of the kit."""
    packed = inits[f"{stem}.qweight"]
    n, nb, blob = packed.shape
    size = k // nb
    bits = 8 * blob // size
    if bits == 4:
        q = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, nb, size)
        default = 8
    else:
        q = packed
        default = 128
    zp = np.full((n, nb), default, np.float32)
    if f"{stem}.qzeros" in inits:
        z = inits[f"{stem}.qzeros"].reshape(n, -1)
        if bits == 4:
            z = np.stack([z & 0x0F, z >> 4], axis=-1).reshape(n, -1)
        zp = z[:, :nb].astype(np.float32)
    scales = inits[f"{stem}.scales"].reshape(n, nb)
    w = (q.astype(np.float32) - zp[..., None]) * scales[..., None]
    if f"{stem}.minima" in inits:
        w = w + inits[f"{stem}.minima"].T[..., None]
    return w.reshape(n, k)


def _permute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """transformers' reordering of llama's q / k rows when it reads a GGUF."""
    dim = w.shape[0] // heads // 2
    return w.reshape(heads, dim, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# A one-layer llama GGUF of every carried kind: (tensor, GGUF type, rows, row length).
_MIXED = [
    ("token_embd.weight", "Q6_K", 16, 256),
    ("blk.0.attn_q.weight", "Q4_K", 256, 256),
    ("blk.0.attn_k.weight", "Q4_K", 128, 256),
    ("blk.0.attn_v.weight", "Q6_K", 128, 256),
    ("blk.0.attn_output.weight", "F16", 256, 256),
    ("blk.0.ffn_gate.weight", "Q5_K", 512, 256),
    ("blk.0.ffn_up.weight", "Q2_K", 512, 256),
    ("blk.0.ffn_down.weight", "Q3_K", 256, 512),
]


def _mixed_model(tmp_path: Path, half: str = "F16") -> tuple[Path, Path, dict[str, np.ndarray]]:
    """A GGUF holding ``_MIXED`` (+ a BF16 and an F32 tensor), and the fp32 graph of its weights
    in the GenAI builder's names (q / k rows in transformers' order), as a carry finds them.

    ``half`` is the type of the attention output weight: F16 or BF16."""
    from onnx import TensorProto

    path = tmp_path / "mixed.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    values: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(11)
    for seed, (name, gguf_type, n, k) in enumerate(_MIXED):
        gguf_type = half if gguf_type == "F16" else gguf_type
        qtype = gguf.GGMLQuantizationType[gguf_type]
        if gguf_type == "F16":
            data = (rng.standard_normal((n, k)) * 0.05).astype(np.float16)
            writer.add_tensor(name, data)
        elif gguf_type == "BF16":
            data = quants.quantize((rng.standard_normal((n, k)) * 0.05).astype(np.float32), qtype)
            writer.add_tensor(name, data, raw_dtype=qtype)
        else:
            data = random_gguf_rows(gguf_type, n, k, seed)
            writer.add_tensor(name, data, raw_dtype=qtype)
        values[name] = quants.dequantize(data.view(np.uint8), qtype).reshape(n, k)
    bf16 = (rng.standard_normal((8, 256)) * 0.05).astype(np.float32)
    bf16 = (bf16.view(np.uint32) & 0xFFFF0000).view(np.float32)  # exactly bf16 values
    writer.add_tensor(
        "blk.0.extra.weight",
        quants.quantize(bf16, gguf.GGMLQuantizationType.BF16),
        raw_dtype=gguf.GGMLQuantizationType.BF16,
    )
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(256, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    qkv = np.concatenate(
        [
            _permute_rows(values["blk.0.attn_q.weight"], 2),
            _permute_rows(values["blk.0.attn_k.weight"], 1),
            values["blk.0.attn_v.weight"],
        ]
    )
    weights = {
        "model.layers.0.attn.qkv_proj.MatMul.weight": qkv,
        "model.layers.0.attn.o_proj.MatMul.weight": values["blk.0.attn_output.weight"],
        "model.layers.0.mlp.gate_proj.MatMul.weight": values["blk.0.ffn_gate.weight"],
        "model.layers.0.mlp.up_proj.MatMul.weight": values["blk.0.ffn_up.weight"],
        "model.layers.0.mlp.down_proj.MatMul.weight": values["blk.0.ffn_down.weight"],
        "lm_head.MatMul.weight": values["token_embd.weight"],
    }
    inits = [numpy_helper.from_array(w.T.copy(), name) for name, w in weights.items()]
    mm = [
        ("qkv", "embedded", "model.layers.0.attn.qkv_proj.MatMul.weight", "/attn/qkv_proj"),
        ("o", "embedded", "model.layers.0.attn.o_proj.MatMul.weight", "/attn/o_proj"),
        ("gate", "o", "model.layers.0.mlp.gate_proj.MatMul.weight", "/mlp/gate_proj"),
        ("up", "o", "model.layers.0.mlp.up_proj.MatMul.weight", "/mlp/up_proj"),
        ("down", "gate", "model.layers.0.mlp.down_proj.MatMul.weight", "/mlp/down_proj"),
        ("logits", "down", "lm_head.MatMul.weight", "/lm_head"),
    ]
    nodes = [
        helper.make_node("Transpose", ["lm_head.MatMul.weight"], ["table"], name="/embed/T"),
        helper.make_node("Gather", ["table", "input_ids"], ["embedded"], name="/embed/Gather"),
    ] + [helper.make_node("MatMul", [x, w], [y], name=f"{n}/MatMul") for y, x, w, n in mm]
    outputs = ["embedded"] + [y for y, *_ in mm]
    vocab = values["token_embd.weight"].shape[0]
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "fp32",
            [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 5])],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs[:-1]]
            + [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "sequence", vocab])],
            inits,
        ),
        opset_imports=[helper.make_opsetid("", 21)],
        ir_version=10,
    )
    fp32 = tmp_path / "onnx-fp32"
    fp32.mkdir()
    onnx.save_model(model, str(fp32 / "model.onnx"))
    (fp32 / "genai_config.json").write_text("{}")
    return path, fp32, weights


_IDS = {"input_ids": np.array([[0, 3, 15, 3, 9]], np.int64)}  # what the mixed graphs read


def _folder_session(folder: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )


def test_a_gguf_of_mixed_types_builds_as_one_exact_model(tmp_path: Path) -> None:
    """Q2_K..Q6_K, F16, BF16 and F32 in one file: one model, every weight the GGUF's bit for bit."""
    path, fp32, weights = _mixed_model(tmp_path)
    out = tmp_path / "onnx-gguf"
    report = _carry.carry(path, fp32, out, accuracy_level=0)
    saved = json.loads((out / "carried.json").read_text())
    assert saved["types"] == report.types and (out / "genai_config.json").is_file()
    assert set(report.types) == {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16", "F32"}
    assert report.carried == {"Q4_K": 2, "Q6_K": 2, "F16": 1, "Q5_K": 1, "Q2_K": 1, "Q3_K": 1}
    assert report.types["Q6_K"] == {
        "MatMulNBits 8-bit blocks of 16": 1,
        "MatMulNBits 8-bit blocks of 16 and GatherBlockQuantized on the output layer's blocks": 1,
    }
    assert report.types["Q4_K"] == {"MatMulNBits 4-bit blocks of 32 + minimum term": 2}
    assert report.types["F16"] == {"f16 weights + Cast": 1}
    assert report.types["BF16"] == {"kept as fp32 (a tensor the carry does not map)": 1}
    assert report.kept_float == {"BF16": 1} and report.tied_embedding
    assert report.max_abs_error == 0.0
    assert report.last_position_logits and saved["last_position_logits"]

    model = onnx.load(str(out / "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert not any(name.endswith("MatMul.weight") for name in inits)  # no float copy left
    assert inits["model.layers.0.attn.o_proj.MatMul.weight.fp16"].dtype == np.float16
    stem = "model.layers.0.attn.qkv_proj.MatMul"
    qk = _onnx_weight(inits, f"{stem}.run0", 256)  # Q4_K q and k, then Q6_K v
    v = _onnx_weight(inits, f"{stem}.run1", 256)
    qkv = weights[f"{stem}.weight"]
    np.testing.assert_array_equal(np.concatenate([qk, v]), qkv)
    gate_up = "model.layers.0.mlp.gate_proj+model.layers.0.mlp.up_proj"
    np.testing.assert_array_equal(
        _onnx_weight(inits, f"{gate_up}.run0", 256),
        weights["model.layers.0.mlp.gate_proj.MatMul.weight"],
    )
    np.testing.assert_array_equal(
        _onnx_weight(inits, f"{gate_up}.run1", 256),
        weights["model.layers.0.mlp.up_proj.MatMul.weight"],
    )
    np.testing.assert_array_equal(
        _onnx_weight(inits, "model.layers.0.mlp.down_proj.MatMul", 512),
        weights["model.layers.0.mlp.down_proj.MatMul.weight"],
    )

    # The carried model computes what the fp32 graph computes.
    carried, reference = _folder_session(out), _folder_session(fp32)
    names = [o.name for o in reference.get_outputs()]
    for name, got, want in zip(
        names, carried.run(names, _IDS), reference.run(names, _IDS), strict=True
    ):
        if name == "logits":  # the output layer reads the last position only
            assert got.shape == (1, 1, want.shape[-1])
            want = want[:, -1:]
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale, err_msg=name)


def test_a_bf16_projection_is_stored_at_bf16_and_computes_the_fp32_graph(tmp_path: Path) -> None:
    path, fp32, weights = _mixed_model(tmp_path, half="BF16")
    out = tmp_path / "onnx-gguf"
    report = _carry.carry(path, fp32, out, accuracy_level=0)
    assert report.types["BF16"] == {
        "bf16 weights + Cast": 1,
        "kept as fp32 (a tensor the carry does not map)": 1,
    }
    assert report.carried["BF16"] == 1 and report.kept_float == {"BF16": 1}
    model = onnx.load(str(out / "model.onnx"))
    stored = {i.name: i for i in model.graph.initializer}
    o_proj = "model.layers.0.attn.o_proj.MatMul.weight"
    assert o_proj not in stored and stored[f"{o_proj}.bf16"].data_type == onnx.TensorProto.BFLOAT16
    np.testing.assert_array_equal(  # the stored bits are the GGUF's
        numpy_helper.to_array(stored[f"{o_proj}.bf16"]).astype(np.float32).T, weights[o_proj]
    )
    carried, reference = _folder_session(out), _folder_session(fp32)
    got, want = carried.run(["o"], _IDS)[0], reference.run(["o"], _IDS)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))


def test_a_gguf_that_is_not_the_fp32_builds_source_is_refused(tmp_path: Path) -> None:
    _, fp32, _ = _mixed_model(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    writer = gguf.GGUFWriter(str(other / "m.gguf"), "llama")
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    for seed, (name, gguf_type, n, k) in enumerate(_MIXED):
        if gguf_type == "F16":
            writer.add_tensor(name, np.zeros((n, k), np.float16))
        else:
            data = random_gguf_rows(gguf_type, n, k, seed + 100)
            writer.add_tensor(name, data, raw_dtype=gguf.GGMLQuantizationType[gguf_type])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(errors.ConversionError, match="do not come from the same file"):
        _carry.carry(other / "m.gguf", fp32, tmp_path / "out")


def test_real_smollm2_blocks_reconstruct_exactly(real_home: Path, tmp_path: Path) -> None:
    """Carrying the real Q4_1 sample: the ONNX weights are the GGUF's dequantized weights."""
    gguf_file = samples.path("smollm2-135m-instruct", "gguf")
    reader = gguf.GGUFReader(gguf_file)
    tensors = {t.name: t for t in reader.tensors}
    folder = tmp_path / "onnx-gguf"
    report = _carry.carry(gguf_file, samples.path("smollm2-135m-instruct", "onnx-fp32"), folder)
    assert report.carried == {"Q4_1": 210, "Q8_0": 1} and report.kept_float == {}
    assert report.types == {
        "Q8_0": {
            "MatMulNBits 8-bit blocks of 32 and GatherBlockQuantized on the output layer's blocks": 1
        },
        "Q4_1": {"MatMulNBits 4-bit blocks of 32 + minimum term": 210},
        "F32": {"fp32, as in the file": 61},
    }
    assert report.tied_embedding and report.max_abs_error == 0.0
    assert report.last_position_logits
    # The sample's own build is this same model.
    shipped = samples.path("smollm2-135m-instruct", "onnx-gguf")
    assert (shipped / "model.onnx.data").read_bytes() == (folder / "model.onnx.data").read_bytes()
    model = onnx.load(str(folder / "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    ops = {n.op_type for n in model.graph.node}
    assert {"MatMulNBits", "GatherBlockQuantized"} <= ops and "Gather" in ops
    logits = next(o for o in model.graph.output if o.name == "logits")
    assert [d.dim_value or d.dim_param for d in logits.type.tensor_type.shape.dim][1:] == [
        1,
        49152,
    ]
    assert not any(i.endswith("MatMul.weight") for i in inits)  # no float copy left behind
    for stem, name, k in [
        ("lm_head.MatMul", "token_embd.weight", 576),
        ("model.layers.7.mlp.down_proj.MatMul", "blk.7.ffn_down.weight", 1536),
    ]:
        t = tensors[name]
        want = quants.dequantize(t.data, t.tensor_type)
        np.testing.assert_array_equal(_onnx_weight(inits, stem, k), want)
    reference = onnx.load(str(samples.path("smollm2-135m-instruct", "onnx-fp32") / "model.onnx"))
    ref = {i.name: i for i in reference.graph.initializer}
    for stem in ("model.layers.0.attn.qkv_proj.MatMul",):
        want = numpy_helper.to_array(ref[f"{stem}.weight"]).T  # transformers' dequantized GGUF
        np.testing.assert_array_equal(_onnx_weight(inits, stem, 576), want)
    gate_up = _onnx_weight(inits, "model.layers.3.mlp.gate_proj+model.layers.3.mlp.up_proj", 576)
    want_gate = numpy_helper.to_array(ref["model.layers.3.mlp.gate_proj.MatMul.weight"]).T
    np.testing.assert_array_equal(gate_up[:1536], want_gate)


def test_carried_model_generates_and_agrees_with_fp32(real_home: Path) -> None:
    chat = slm.Chat("smollm2-135m-instruct:onnx-gguf", threads=2)
    reply = chat.send("Name three colours.", max_new_tokens=16)
    assert reply.text.strip() and reply.new_tokens > 0 and reply.decode_tokens_per_s > 0
    result = slm.fidelity(
        "smollm2-135m-instruct:onnx-gguf",
        prompts=slm.DEFAULT_PROMPTS[:2],
        max_new_tokens=32,
        progress=False,
    )
    # Same weights as the fp32 build; only the 8-bit activations of accuracy level 4 differ.
    assert result.agreement >= 0.9 and result.mean_kl < 0.05
    assert [row["positions"] for row in result.per_prompt] == [32, 32]


def test_teacher_forced_logits_of_a_last_position_model_come_one_token_at_a_time(
    real_home: Path,
) -> None:
    """The carried build's logits hold the last position; every row is still that prefix's."""
    model = _genai.load_model(samples.path("smollm2-135m-instruct", "onnx-gguf"), threads=2)
    ids = _genai.chat_prompt_ids(_genai.tokenizer(model), "Name three colours.")
    rows = _genai.logits(model, ids)
    assert rows.shape == (len(ids), 49152) and np.isfinite(rows).all()
    np.testing.assert_array_equal(_genai.logits(model, ids[:3]), rows[:3])
    og = _genai.require()
    for end in (3, len(ids)):
        # The same prefix read in one pass gives its last position's logits, up to the
        # rounding of the prompt's 8-bit kernels (a few percent); another prefix's differ.
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=end + 1)
        generator = og.Generator(model, params)
        generator.append_tokens(np.asarray(ids[:end], np.int32))
        once = np.asarray(generator.get_output("logits"), np.float32).reshape(-1)
        del generator
        scale = float(np.abs(once).max())
        assert np.abs(rows[end - 1] - once).max() < 0.15 * scale
        assert int(rows[end - 1].argmax()) in np.argsort(once)[-5:]
        other = rows[1] if end == len(ids) else rows[-1]
        assert np.abs(other - once).max() > 0.3 * scale


def test_gguf_precision_needs_a_gguf_source(real_home: Path) -> None:
    assert slm.default_precision("x/model.Q4_1.gguf") == "gguf"
    assert slm.default_precision(samples.path("smollm2-135m-instruct", "hf-fp32")) == "int4"
    with pytest.raises(errors.ModelFormatError, match=r"give the \.gguf file"):
        slm.build(samples.path("smollm2-135m-instruct", "hf-fp32"), "gguf")
