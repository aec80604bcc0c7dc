"""optimize: int8 dynamic/static, int4, fp16, graph optimization; nothing to quantize; CLI; widget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import compare, errors, optimize
from localml_kit.cli import main


def mlp_model(hidden: int = 64) -> onnx.ModelProto:
    """x[batch, 64] -> MatMul -> Relu -> MatMul -> Softmax -> probabilities[batch, 10]."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.2, (64, hidden)).astype(np.float32), "W1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.2, (hidden, 10)).astype(np.float32), "W2")
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "W2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializer=[w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def add_model() -> onnx.ModelProto:
    """y = x + x: no weights at all, nothing to quantize."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


@pytest.fixture
def mlp(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), path)
    return path


def rows(n: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).normal(size=(n, 64)).astype(np.float32)}


def ops(path: str) -> set[str]:
    return {n.op_type for n in onnx.load(path).graph.node}


def test_int8_dynamic_per_channel_by_default(mlp: Path) -> None:
    v = optimize.quantize_int8(mlp, inputs=rows())
    assert v.method == "int8" and v.precision == "int8" and v.changed
    assert v.options["per_channel"] is True
    assert Path(v.path).parent == optimize.variants_dir() and Path(v.path).name == "mlp.int8.onnx"
    assert "MatMulInteger" in ops(v.path) or "DynamicQuantizeMatMul" in ops(v.path)
    assert v.size_bytes < v.source_bytes
    assert v.comparison is not None
    row = v.comparison.table.iloc[0]
    assert row["kind"] == "scores" and row["precision"] == "int8" and row["cosine"] > 0.99
    assert json.loads(json.dumps(v.to_dict(), default=str))["comparison"]["candidates"] == [v.label]


def test_int8_static_is_qdq_and_names_missing_calibration_inputs(mlp: Path, tmp_path: Path) -> None:
    calib = [rows(16, seed) for seed in range(4)]
    v = optimize.quantize_int8_static(mlp, calib, tmp_path / "out", inputs=rows())
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops(v.path)
    assert v.options["format"] == "QDQ" and v.options["calibration_sets"] == 4
    assert v.comparison is not None and v.comparison.table.iloc[0]["top1"] >= 0.9
    with pytest.raises(errors.InputError, match="needs input 'x'"):
        optimize.quantize_int8_static(mlp, [{"y": np.zeros((1, 64), np.float32)}])
    with pytest.raises(errors.ConfigError, match="minmax"):
        optimize.quantize_int8_static(mlp, calib, method="magic")


def test_int4_blocks_and_fp16(mlp: Path, tmp_path: Path) -> None:
    v4 = optimize.quantize_int4(mlp, tmp_path / "m4.onnx", block_size=32, inputs=rows())
    assert "MatMulNBits" in ops(v4.path) and v4.precision == "int4"
    assert v4.options["block_size"] == 32 and v4.size_bytes < v4.source_bytes
    assert compare.onnx_precision(v4.path) == "int4"
    with pytest.raises(errors.ConfigError, match="power of two"):
        optimize.quantize_int4(mlp, block_size=24)
    v16 = optimize.to_fp16(mlp, tmp_path / "m16.onnx", inputs=rows())
    proto = onnx.load(v16.path)
    assert proto.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # IO kept fp32
    assert compare.onnx_precision(v16.path) == "fp16"
    assert v16.comparison is not None and v16.comparison.passed


def test_graph_optimization_keeps_outputs(mlp: Path, tmp_path: Path) -> None:
    v = optimize.optimize_graph(mlp, "basic", tmp_path, inputs=rows())
    assert Path(v.path).name == "mlp.opt-basic.onnx" and v.comparison is not None
    assert v.comparison.passed and v.comparison.table.iloc[0]["max_abs"] < 1e-5
    with pytest.raises(errors.ConfigError, match="basic, extended"):
        optimize.optimize_graph(mlp, "turbo")


def test_nothing_to_quantize_warns_and_copies(tmp_path: Path) -> None:
    path = tmp_path / "add.onnx"
    onnx.save(add_model(), path)
    feeds = {"x": np.ones((2, 4), np.float32)}
    for make in (optimize.quantize_int8, optimize.quantize_int4, optimize.to_fp16):
        with pytest.warns(errors.NothingToQuantizeWarning, match="unchanged copy"):
            v = make(path, tmp_path / f"{make.__name__}.onnx", inputs=feeds)
        assert not v.changed and v.notes and v.comparison is not None and v.comparison.passed
        assert Path(v.path).read_bytes() == path.read_bytes()


def test_not_an_onnx_model(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(errors.ModelFormatError, match="optimize works on ONNX"):
        optimize.quantize_int8(gguf)


def test_cli_optimize(mlp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-int8.onnx"
    assert main(["optimize", str(mlp), "--int8", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert str(out) in text and "PASS" in text and out.is_file()
    assert (
        main(["optimize", str(mlp), "--int4", "-o", str(tmp_path), "--no-compare", "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "int4" and data["comparison"] is None
    assert main(["optimize", str(tmp_path / "missing.onnx"), "--fp16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model at") and "Traceback" not in err


# ---- the real sample: MiniLM int8 per-channel, made once for the module ------------------------------


@pytest.fixture(scope="module")
def minilm_int8(tmp_path_factory: pytest.TempPathFactory) -> optimize.Variant:
    from tests.conftest import REAL_HOME, missing_samples

    if "all-minilm-l6-v2" in missing_samples(REAL_HOME):
        pytest.skip("all-minilm-l6-v2 is not built; run `make samples`")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCALML_HOME", str(REAL_HOME))
        return optimize.quantize_int8(
            "all-minilm-l6-v2", tmp_path_factory.mktemp("minilm") / "int8.onnx"
        )


@pytest.mark.samples
def test_minilm_int8_per_channel_keeps_cosine(
    real_home: Path, minilm_int8: optimize.Variant
) -> None:
    feeds = compare.sentence_inputs(compare.corpus()[:64])
    result = compare.outputs(
        "all-minilm-l6-v2", {"int8": minilm_int8}, feeds, only=["sentence_embedding"]
    )
    row = result.table.iloc[0]
    assert row["precision"] == "int8" and row["cosine"] >= 0.99
    assert row["neighbours"] >= 0.9 and bool(row["passed"])
    assert minilm_int8.size_ratio < 0.3


@pytest.mark.samples
def test_output_comparator_widget(real_home: Path, minilm_int8: optimize.Variant) -> None:
    from localml_kit.widgets import OutputComparator
    from localml_kit.widgets._util import dims_text

    w = OutputComparator("all-minilm-l6-v2", {"int8": minilm_int8}, only=["sentence_embedding"])
    assert w.result is None and "int8" in w.candidates.options
    assert w.candidates.value == ("int8",)
    w.run_button.click()
    assert w.result is not None and w.result.verdicts() == {"int8": True}
    assert "PASS" in w.badges.value and "sentence_embedding" in w.table.value
    assert w.result.dims and f"dims: {dims_text(w.result.dims)}" in w.status.value
    assert w.figure is not None and len(w.figure.axes) == 1  # the histogram
    w.candidates.value = ()
    w.extra.value = "no-such-model.onnx"
    w.run_button.click()
    assert w.result is None and "no model at" in w.status.value
    w.extra.value = ""
    w.run_button.click()
    assert w.result is None and "at least one candidate" in w.status.value
