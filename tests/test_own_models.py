"""A user's own models, made here, through every command with no extra flags, then with flags.

Real ONNX Runtime sessions, real worker processes, real quantizers: each model is
inspected, profiled, compared and optimized (int8, int4, fp16) by the command line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import compare, inputs, models, samples
from localml_kit.cli import main

FAST = ["--threads", "1", "--warmup", "1", "--min-iterations", "3", "--min-seconds", "0"]
RNG = np.random.default_rng(0)


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * 0.1).astype(np.float32), name)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def dynamic_mlp(path: Path, seq: str | None = "seq") -> Path:
    """``[batch, seq, 64] -> [batch, seq, 8]``: two MatMuls with a ReLU (seq None: unnamed)."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", seq, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", seq, 8])],
        [_weight("w1", 64, 64), _weight("w2", 64, 8)],
    )
    return _save(graph, path)


def image_model(path: Path, shape: list) -> Path:
    """A small CNN: Conv -> Relu -> global pool -> Flatten -> Gemm (10 scores)."""
    nodes = [
        helper.make_node("Conv", ["image", "k", "kb"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [shape[0], 10])],
        [_weight("k", 8, 3, 3, 3), _weight("kb", 8), _weight("fc", 10, 8), _weight("fcb", 10)],
    )
    return _save(graph, path)


@pytest.fixture
def own(tmp_path: Path) -> dict[str, Path]:
    return {
        "dynamic-mlp": dynamic_mlp(tmp_path / "mymlp.onnx"),
        "unnamed-dim": dynamic_mlp(tmp_path / "anon.onnx", seq=None),
        "fixed-batch-cnn": image_model(tmp_path / "cnn.onnx", [1, 3, 32, 32]),
        "dynamic-hw-cnn": image_model(tmp_path / "cnn_hw.onnx", ["N", 3, "H", "W"]),
    }


CASES = ["dynamic-mlp", "unnamed-dim", "fixed-batch-cnn", "dynamic-hw-cnn"]
EXPECTED_DIMS = {
    "dynamic-mlp": {"batch": 1, "seq": inputs.SEQUENCE_DEFAULT},
    "unnamed-dim": {"batch": 1, "x[1]": inputs.SEQUENCE_DEFAULT},
    "fixed-batch-cnn": {},
    "dynamic-hw-cnn": {"batch": 1, "H": inputs.IMAGE_SIDE_DEFAULT, "W": inputs.IMAGE_SIDE_DEFAULT},
}


def _one_error_line(err: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("case", CASES)
def test_inspect_and_profile_with_no_flags(
    case: str, own: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = own[case]
    assert main(["inspect", str(path)]) == 0
    capsys.readouterr()
    out = tmp_path / "profile.json"
    assert main(["profile", str(path), *FAST, "--quiet", "--json", str(out)]) == 0, (
        capsys.readouterr()
    )
    printed = capsys.readouterr().out
    assert " ok " in printed
    row = json.loads(out.read_text())["rows"][0]
    assert row["status"] == "ok" and row["inputs"] == "synthetic"
    expected = ", ".join(f"{k}={v}" for k, v in EXPECTED_DIMS[case].items())
    assert row["dims"] == expected
    if expected:
        assert f"dims {path.name}: {expected}" in printed


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["--int8", "--int4", "--fp16"])
def test_optimize_with_no_flags_writes_the_variant_and_exits_by_the_verdict(
    case: str,
    method: str,
    own: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = own[case]
    target = tmp_path / f"out{method}.onnx"
    code = main(["optimize", str(path), method, "-o", str(target)])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    assert target.is_file() and target.stat().st_size > 0
    assert f"wrote {path.stem} {method[2:]}: {target}" in captured.out
    assert ("PASS" in captured.out) == (code == 0) and ("FAIL" in captured.out) == (code == 1)
    if EXPECTED_DIMS[case]:
        assert "dims: batch=" in captured.out


@pytest.mark.parametrize("case", CASES)
def test_compare_with_no_flags_and_with_dims(
    case: str, own: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = own[case]
    assert main(["compare", str(path), str(path), "--json"]) == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    lead = 1 if case == "fixed-batch-cnn" else 8  # a fixed batch wins over the default 8
    assert data["passed"] and data.get("dims", {}).get("batch", 1) == lead
    if case == "fixed-batch-cnn":
        assert any("fixed batch of 1" in n for n in data["input_notes"])
    extra = {
        "dynamic-mlp": ["--dims", "seq=5", "--batch", "3"],
        "unnamed-dim": ["--dims", "x[1]=5", "--batch", "3"],
        "fixed-batch-cnn": ["--batch", "4"],
        "dynamic-hw-cnn": ["--dims", "H=40,W=48", "--batch", "3"],
    }[case]
    assert main(["compare", str(path), str(path), "--json", *extra]) == 0
    data = json.loads(capsys.readouterr().out)
    want = {
        "dynamic-mlp": {"batch": 3, "seq": 5},
        "unnamed-dim": {"batch": 3, "x[1]": 5},
        "fixed-batch-cnn": {},
        "dynamic-hw-cnn": {"batch": 3, "H": 40, "W": 48},
    }[case]
    assert data["dims"] == want


def test_profile_and_optimize_take_dims_and_batch(
    own: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = own["dynamic-mlp"]
    out = tmp_path / "p.json"
    argv = ["profile", str(path), *FAST, "--quiet", "--batch", "2,4", "--dims", "seq=16"]
    assert main([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["dims"] for r in rows] == ["batch=2, seq=16", "batch=4, seq=16"]
    assert [r["input_shapes"] for r in rows] == ["x 2x16x64", "x 4x16x64"]
    capsys.readouterr()
    code = main(["optimize", str(path), "--int8", "-o", str(tmp_path), "--dims", "seq=16"])
    printed = capsys.readouterr().out
    assert code in (0, 1) and "dims: batch=32, seq=16" in printed
    assert (tmp_path / "mymlp.int8.onnx").is_file()
    # The fixed-batch CNN: a larger --batch is cut to what the model allows, with a note.
    assert main(["profile", str(own["fixed-batch-cnn"]), *FAST, "--quiet", "--batch", "8"]) == 0
    printed = capsys.readouterr().out
    assert "has a fixed batch of 1" in printed and "using 1, not 8" in printed


def test_a_dim_without_a_default_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "feat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "features"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "features"])],
    )
    path = _save(graph, tmp_path / "feat.onnx")
    for argv in (["profile", str(path), *FAST], ["compare", str(path), str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        _one_error_line(err)
        assert "--dims features=N" in err and "dims={" not in err
    assert main(["compare", str(path), str(path), "--dims", "features=4"]) == 0
    # Python speaks keyword arguments.
    with pytest.raises(ValueError, match=r"dims=\{'features': N\}"):
        inputs.inputs_for(path)


def test_one_compare_reads_each_model_file_once(
    own: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "copy.onnx"
    shutil.copyfile(own["dynamic-mlp"], other)
    reads: list[str] = []
    real = models.read_io

    def counting(path):  # the one place the kit reads an ONNX file's specs
        reads.append(str(path))
        return real(path)

    monkeypatch.setattr(models, "read_io", counting)
    result = compare.outputs(str(own["dynamic-mlp"]), [str(other)])
    assert result.passed
    assert sorted(reads) == sorted([str(own["dynamic-mlp"]), str(other)])


@pytest.mark.samples
def test_minilm_as_a_plain_file_and_as_a_sample(
    real_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "minilm.onnx"
    shutil.copyfile(samples.path("all-minilm-l6-v2"), plain)
    assert main(["compare", str(plain), str(plain), "--batch", "2"]) == 0
    assert f"dims: batch=2, sequence={inputs.SEQUENCE_DEFAULT}" in capsys.readouterr().out
    # The sample: its own sentences; its primary output (sentence_embedding) is judged.
    code = main(["optimize", "all-minilm-l6-v2", "--int8", "-o", str(tmp_path / "q.onnx")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "PASS all-minilm-l6-v2 int8" in printed and (tmp_path / "q.onnx").is_file()


@pytest.mark.samples
def test_a_classic_ml_model_that_cannot_be_quantized_says_why(
    real_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["optimize", "digits-mlp", "--int8", "-o", str(tmp_path / "d.onnx")]) in (0, 1, 2)
    captured = capsys.readouterr()
    if captured.err:
        _one_error_line(captured.err)
        assert "Nothing was written" in captured.err
        assert not (tmp_path / "d.onnx").exists()


def test_a_gguf_where_onnx_is_needed_names_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    for argv in (
        ["profile", str(gguf), *FAST],
        ["compare", str(gguf), str(gguf)],
        ["optimize", str(gguf), "--int8"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        _one_error_line(err)
        assert "GGUF" in err and "localml-kit slm" in err and "Protobuf" not in err
