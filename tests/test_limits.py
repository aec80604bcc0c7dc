"""Limits that keep the user's machine usable: a hanging model ends in an error, metadata cannot
drive the terminal, Python calls refuse bad values before any work."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import compare, errors, slm
from localml_kit.cli import main


def hanging_model(path: Path) -> Path:
    """A Loop of 10^15 cheap iterations: it runs (practically) forever."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1]),
        ],
        [numpy_helper.from_array(np.ones(1, np.float32), "one")],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)],
        "hang",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [
            numpy_helper.from_array(np.array(10**15, np.int64), "trips"),
            numpy_helper.from_array(np.array(True), "cond"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return path


def test_a_hanging_model_in_compare_is_a_clear_error_not_a_frozen_kernel(tmp_path: Path) -> None:
    model = hanging_model(tmp_path / "hang.onnx")
    started = time.monotonic()
    with pytest.raises(errors.ChildTimeoutError, match="did not finish within 2 s"):
        compare.outputs(model, [model], {"x": np.zeros(1, np.float32)}, timeout_s=2)
    assert time.monotonic() - started < 20


def test_the_cli_compare_always_has_a_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = hanging_model(tmp_path / "hang.onnx")
    assert main(["compare", str(model), str(model), "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--timeout" in err and err.count("\n") == 1


def test_metadata_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
        producer_name="evil\x1b[2J\x1b]0;owned\x07",
        doc_string="clear\x1b[H\x1b[2J",
    )
    onnx.helper.set_model_props(model, {"title": "\x1b[31mred\x1b[0m"})
    path = tmp_path / "evil.onnx"
    onnx.save(model, path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"greedy": False, "top_p": 5.0}, "top_p"),
        ({"greedy": False, "top_k": -3}, "top_k"),
        ({"greedy": False, "temperature": -1.0}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
@pytest.mark.samples
def test_chat_refuses_bad_sampling_values(real_home: Path, options: dict, needle: str) -> None:
    chat = slm.Chat("smollm2-135m-instruct", threads=1)
    with pytest.raises(errors.ConfigError, match=needle):
        next(iter(chat.stream("hello", **options)))


def test_python_calls_refuse_bad_values_before_work() -> None:
    with pytest.raises(errors.ConfigError, match="threads"):
        slm.Chat("no-such-model-anywhere", threads=-2)
    with pytest.raises(errors.ConfigError, match="repeats"):
        slm.bench("no-such-model-anywhere", ("int4",), repeats=0)
