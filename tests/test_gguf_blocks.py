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

from localml_kit import errors, samples, slm
from localml_kit.conversion import _blocks, _carry

TYPES = {"Q4_0": 18, "Q4_1": 20, "Q5_0": 22, "Q5_1": 24, "Q8_0": 34}


def random_gguf_rows(gguf_type: str, n: int, k: int, seed: int = 0) -> np.ndarray:
    """Random GGUF rows as a quantizer writes them: random integers, a positive fp16 scale
    and, for the ``_1`` types, a minimum between ``-top * d`` and 0."""
    rng = np.random.default_rng(seed)
    size = TYPES[gguf_type]
    raw = rng.integers(0, 256, size=(n, k // 32, size), dtype=np.uint8)
    d = np.abs(rng.standard_normal((n, k // 32, 1))) * 0.05 + 1e-3
    halves = d
    if gguf_type.endswith("_1"):
        top = 15 if gguf_type.startswith("Q4") else 31
        halves = np.concatenate([d, -d * rng.uniform(0, top, d.shape)], axis=-1)
    halves = halves.astype(np.float16)
    raw[..., : 2 * halves.shape[-1]] = halves.view(np.uint8).reshape(n, k // 32, -1)
    return raw.reshape(n, -1)


@pytest.mark.parametrize("gguf_type", sorted(TYPES))
def test_blocks_reconstruct_the_gguf_values_exactly(gguf_type: str) -> None:
    raw = random_gguf_rows(gguf_type, 12, 96)
    expected = quants.dequantize(raw, gguf.GGMLQuantizationType[gguf_type])
    blocks = _blocks.from_gguf(gguf_type, raw, 96)
    assert blocks.shape == (12, 96) and blocks.bits == (4 if gguf_type.startswith("Q4") else 8)
    np.testing.assert_array_equal(blocks.dequantize(), expected)
    np.testing.assert_array_equal(blocks.widened().dequantize(), expected)
    centred = blocks.centred()
    np.testing.assert_allclose(centred.dequantize(), expected, rtol=0, atol=1e-7)
    if blocks.mins is not None:
        # The integer zero point carries the block's offset; what is left is at most half a step.
        assert centred.mins is not None
        assert np.all(np.abs(centred.mins) <= np.abs(blocks.scales) / 2 + 1e-8)


def test_unsupported_types_and_ragged_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="Q4_K is not carried"):
        _blocks.from_gguf("Q4_K", np.zeros((1, 144), np.uint8), 256)
    with pytest.raises(ValueError, match="whole blocks"):
        _blocks.from_gguf("Q8_0", np.zeros((1, 34), np.uint8), 40)


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
    k, n_gate, n_up = 96, 40, 24
    gate = _blocks.from_gguf(gguf_type, random_gguf_rows(gguf_type, n_gate, k, 1), k).centred()
    up = _blocks.from_gguf(gguf_type, random_gguf_rows(gguf_type, n_up, k, 2), k).centred()
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
        want = x.astype(np.float64) @ blocks.dequantize().T.astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gguf_type", ["Q8_0", "Q4_1", "Q4_0"])
def test_gather_block_quantized_returns_the_gguf_rows(gguf_type: str) -> None:
    k, vocab = 64, 50
    blocks = _blocks.from_gguf(gguf_type, random_gguf_rows(gguf_type, vocab, k, 4), k).centred()
    graph = _carry._Graph(helper.make_model(helper.make_graph([], "empty", [], [])))
    node = helper.make_node("Gather", ["table", "input_ids"], ["embedded"], name="/embed")
    nodes: list = []
    _carry._embedding(graph, node, blocks, None, "embed", nodes)
    ids_info = helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, [1, 4])
    session = _session(nodes, graph, [ids_info], ["embedded"])
    ids = np.array([[0, 7, 49, 7]], np.int64)
    (got,) = session.run(None, {"input_ids": ids})
    np.testing.assert_allclose(got[0], blocks.dequantize()[ids[0]], rtol=0, atol=1e-7)


# ---- the real SmolLM2 GGUF -------------------------------------------------------------------


def _onnx_weight(inits: dict[str, np.ndarray], stem: str, k: int) -> np.ndarray:
    """Decode a MatMulNBits weight from the model's initializers, independently of the kit."""
    packed = inits[f"{stem}.qweight"]
    n, nb, blob = packed.shape
    bits = 8 * blob // 32
    if bits == 4:
        q = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, nb, 32)
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


def test_real_smollm2_blocks_reconstruct_exactly(real_home: Path) -> None:
    """Dequantizing the ONNX model's weights gives the GGUF's dequantized weights, per type."""
    reader = gguf.GGUFReader(samples.path("smollm2-135m-instruct", "gguf"))
    tensors = {t.name: t for t in reader.tensors}
    seen = set()
    for name in ("token_embd.weight", "blk.0.ffn_down.weight", "blk.29.attn_v.weight"):
        t = tensors[name]
        seen.add(t.tensor_type.name)
        blocks = _blocks.from_gguf(t.tensor_type.name, np.asarray(t.data), int(t.shape[0]))
        np.testing.assert_array_equal(blocks.dequantize(), quants.dequantize(t.data, t.tensor_type))
    assert seen == {"Q8_0", "Q4_1"}

    folder = samples.path("smollm2-135m-instruct", "onnx-gguf")
    report = json.loads((folder / "carried.json").read_text())
    assert report["carried"] == {"Q4_1": 210, "Q8_0": 1} and report["kept_float"] == {}
    assert report["tied_embedding"] and report["max_abs_error"] < 1e-6
    model = onnx.load(str(folder / "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    ops = {n.op_type for n in model.graph.node}
    assert {"MatMulNBits", "GatherBlockQuantized"} <= ops and "Gather" in ops
    assert not any(i.endswith("MatMul.weight") for i in inits)  # no float copy left behind
    reference = onnx.load(str(samples.path("smollm2-135m-instruct", "onnx-fp32") / "model.onnx"))
    ref = {i.name: i for i in reference.graph.initializer}
    for stem, weight, k in [
        ("lm_head.MatMul", "lm_head.MatMul.weight", 576),
        ("model.layers.0.attn.qkv_proj.MatMul", "model.layers.0.attn.qkv_proj.MatMul.weight", 576),
        ("model.layers.7.mlp.down_proj.MatMul", "model.layers.7.mlp.down_proj.MatMul.weight", 1536),
    ]:
        want = numpy_helper.to_array(ref[weight]).T  # transformers' dequantized GGUF weights
        np.testing.assert_allclose(_onnx_weight(inits, stem, k), want, rtol=0, atol=1e-7)
    gate_up = _onnx_weight(inits, "model.layers.3.mlp.gate_proj+model.layers.3.mlp.up_proj", 576)
    want_gate = numpy_helper.to_array(ref["model.layers.3.mlp.gate_proj.MatMul.weight"]).T
    np.testing.assert_allclose(gate_up[:1536], want_gate, rtol=0, atol=1e-7)


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


def test_gguf_precision_needs_a_gguf_source(real_home: Path) -> None:
    assert slm.default_precision("x/model.Q4_1.gguf") == "gguf"
    assert slm.default_precision(samples.path("smollm2-135m-instruct", "hf-fp32")) == "int4"
    with pytest.raises(errors.ModelFormatError, match=r"give the \.gguf file"):
        slm.build(samples.path("smollm2-135m-instruct", "hf-fp32"), "gguf")
