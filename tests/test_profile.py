"""Profiling: real ONNX Runtime sessions in real worker processes, on tiny and real models."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import envs, errors, profile, samples
from localml_kit.cli import main
from localml_kit.inputs import SEQUENCE_DEFAULT, inputs_for
from localml_kit.profile import Plan, ProfileResult
from tests.conftest import IN_CI, REAL_HOME

FAST = {"warmup": 1, "min_iterations": 3, "min_seconds": 0.0, "timeout_s": 120.0}


# --- tiny models built here ------------------------------------------------------------


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def dense_model(path: Path, width: int | str = 4) -> Path:
    """x [batch, width] float -> Relu(x @ W + b): a MatMul, an Add and a Relu."""
    n = width if isinstance(width, int) else 4
    w = numpy_helper.from_array(np.full((n, 3), 0.5, np.float32), "W")
    b = numpy_helper.from_array(np.ones(3, np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [w, b],
    )
    return save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path
    )


def token_model(path: Path, vocab: int = 10) -> Path:
    """input_ids, attention_mask, token_type_ids [batch, seq] int64 -> a pooled embedding."""
    words = numpy_helper.from_array(np.random.default_rng(0).random((vocab, 4), np.float32), "E")
    types = numpy_helper.from_array(np.zeros((2, 4), np.float32), "T")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["E", "input_ids"], ["we"]),
            helper.make_node("Gather", ["T", "token_type_ids"], ["te"]),
            helper.make_node("Add", ["we", "te"], ["e"]),
            helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["m", "two"], ["m3"]),
            helper.make_node("Mul", ["e", "m3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axes"], ["y"], keepdims=0),
        ],
        "tokens",
        [
            helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
            for n in ("input_ids", "attention_mask", "token_type_ids")
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [words, types, axes, numpy_helper.from_array(np.array([2], np.int64), "two")],
    )
    return save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path
    )


@pytest.fixture
def dense(tmp_path: Path) -> Path:
    return dense_model(tmp_path / "dense.onnx")


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    return token_model(tmp_path / "tokens.onnx")


def crashing_python(tmp_path: Path, crash_first: int = 1) -> Path:
    """A Python that answers provider queries but whose first worker(s) die of SIGSEGV."""
    counter = tmp_path / "worker-count"
    script = tmp_path / "crashy-python"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = "-c" ] && exec "{sys.executable}" "$@"\n'
        f'n=$(cat "{counter}" 2>/dev/null || echo 0); echo $((n + 1)) > "{counter}"\n'
        f'[ "$n" -lt {crash_first} ] && kill -SEGV $$\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


# --- providers and plans -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("cpu", "CPUExecutionProvider"),
        ("CUDA", "CUDAExecutionProvider"),
        ("trt", "TensorrtExecutionProvider"),
        ("openvino", "OpenVINOExecutionProvider"),
        ("OpenVINOExecutionProvider", "OpenVINOExecutionProvider"),
        ("dml", "DmlExecutionProvider"),
    ],
)
def test_provider_names_resolve(name: str, full: str) -> None:
    assert profile.resolve_provider(name) == full


def test_unknown_provider_lists_the_valid_ones(dense: Path) -> None:
    with pytest.raises(errors.UnknownProviderError) as info:
        Plan(dense, providers=["cpu", "cudaa"])
    message = str(info.value)
    assert "'cudaa'" in message and "cuda" in message and "OpenVINOExecutionProvider" in message
    assert isinstance(info.value, ValueError)


def test_plan_expands_to_serialisable_configurations(dense: Path, tokens: Path) -> None:
    plan = Plan(
        {"a": dense, "b": tokens},
        providers=["cpu"],
        threads=[1, 2],
        batches=[1, 8],
        optimizations=["basic", "all"],
        cpu_arena=[True, False],
    )
    configs = plan.configurations()
    assert len(configs) == 2 * 2 * 2 * 2 * 2
    assert [c.index for c in configs] == list(range(len(configs)))
    first = configs[0]
    assert first.label == "a · cpu · 1t · b1 · basic"
    assert configs[1].label.endswith("no-arena")
    assert first.python == sys.executable and first.environment == "main"
    assert not first.spinning  # spinning is off unless asked for
    again = profile.Configuration.from_dict(json.loads(json.dumps(first.to_dict())))
    assert again == first
    json.dumps(plan.to_dict())  # the plan itself is JSON-safe


def test_default_threads_is_one_per_free_core(dense: Path) -> None:
    (config,) = Plan(dense).configurations()
    assert 1 <= config.threads <= (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"threads": [0]}, "threads must be >= 1"),
        ({"batches": [0]}, "batch sizes must be >= 1"),
        ({"optimizations": ["max"]}, "optimization levels ['max'] unknown"),
        ({"min_iterations": 0}, "min_iterations >= 1"),
        ({"inputs": "real"}, "inputs='real'"),
    ],
)
def test_bad_plan_options(dense: Path, kwargs: dict, needle: str) -> None:
    with pytest.raises(errors.ConfigError, match=None) as info:
        Plan(dense, **kwargs)
    assert needle in str(info.value)


def test_missing_model_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ModelNotFoundError):
        Plan(tmp_path / "nope.onnx").configurations()


def test_genai_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "slm"
    folder.mkdir()
    dense_model(folder / "model.onnx")
    (folder / "genai_config.json").write_text("{}")
    with pytest.raises(errors.ModelFormatError, match="GenAI"):
        profile.run(Plan(folder, threads=[1], **FAST), progress=False)


# --- inputs --------------------------------------------------------------------------------


def test_specs_show_dims_and_the_embedding_bound(tokens: Path) -> None:
    specs = {s.name: s for s in profile.input_specs(tokens)}
    assert specs["input_ids"].shape == ("batch", "seq") and specs["input_ids"].dtype == "int64"
    assert specs["input_ids"].high == 10 and specs["token_type_ids"].high == 2
    assert specs["attention_mask"].high is None


def test_made_inputs_are_valid(tokens: Path) -> None:
    feeds = profile.make_inputs(tokens, batch=3, dims={"seq": 7})
    assert {k: v.shape for k, v in feeds.items()} == {
        "input_ids": (3, 7),
        "attention_mask": (3, 7),
        "token_type_ids": (3, 7),
    }
    assert feeds["input_ids"].dtype == np.int64
    assert feeds["input_ids"].min() >= 0 and feeds["input_ids"].max() < 10
    assert (feeds["attention_mask"] == 1).all() and (feeds["token_type_ids"] == 0).all()


def test_images_are_floats_in_unit_range(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["pixel_values"], ["y"])],
        "img",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])],
    )
    path = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        tmp_path / "i.onnx",
    )
    x = profile.make_inputs(path, batch=2, dims={"h": 5, "pixel_values[3]": 6})["pixel_values"]
    assert x.shape == (2, 3, 5, 6) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() < 1.0


def test_sequence_dims_default_and_are_reported(tokens: Path) -> None:
    feeds = inputs_for(tokens, batch=2, dims={"sequence": 8})
    assert feeds.arrays["input_ids"].shape == (2, SEQUENCE_DEFAULT)
    assert feeds.dims == {"batch": 2, "seq": SEQUENCE_DEFAULT}


def test_dim_without_a_default_is_named(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "feat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "features"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "features"])],
    )
    path = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        tmp_path / "f.onnx",
    )
    with pytest.raises(errors.InputError) as info:
        profile.make_inputs(path, batch=1, dims={"sequence": 8})
    message = str(info.value)
    assert "'features'" in message and "x[1]" in message and "dims={'features': N}" in message
    assert "sequence" in message  # the dim given that the model does not have
    assert "--dims features=N" in str(info.value.cli)


def test_unnamed_dim_is_named_by_position(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "anon",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
    )
    path = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        tmp_path / "a.onnx",
    )
    with pytest.raises(errors.InputError, match=r"'x\[1\]'"):
        profile.make_inputs(path)
    assert profile.make_inputs(path, dims={"x[1]": 3})["x"].shape == (1, 3)


def test_integer_input_without_a_range_asks_for_vocab_size(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["ids"], ["y"])],
        "ids",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", 5])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, ["b", 5])],
    )
    path = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        tmp_path / "x.onnx",
    )
    with pytest.raises(errors.InputError, match="vocab_size"):
        profile.make_inputs(path)
    ids = profile.make_inputs(path, vocab_size=7, batch=4)["ids"]
    assert ids.shape == (4, 5) and ids.max() < 7


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ({"x": np.zeros((1, 4), np.float64)}, "input 'x': expected dtype float32, given float64"),
        ({"x": np.zeros((1, 5), np.float32)}, "input 'x': expected shape [batch, 4], given [1, 5]"),
        ({"x": np.zeros((4,), np.float32)}, "expected shape [batch, 4], given [4]"),
        ({"y": np.zeros((1, 4), np.float32)}, "missing 'x'; not in the model: 'y'"),
    ],
)
def test_wrong_inputs_name_input_expected_and_given(dense: Path, inputs: dict, needle: str) -> None:
    with pytest.raises(errors.InputError) as info:
        profile.check_inputs(dense, inputs)
    assert needle in str(info.value)
    # The same check stops a plan before any worker starts.
    with pytest.raises(errors.InputError):
        profile.run(Plan(dense, inputs=inputs, threads=[1], **FAST), progress=False)


def test_shared_dim_names_must_agree(tokens: Path) -> None:
    feeds = profile.make_inputs(tokens, dims={"seq": 4})
    feeds["attention_mask"] = np.ones((1, 5), np.int64)
    with pytest.raises(errors.InputError, match="dim 'seq' is 4 in input 'input_ids' but 5"):
        profile.check_inputs(tokens, feeds)


# --- running ---------------------------------------------------------------------------


def test_run_measures_each_configuration(dense: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    plan = Plan(dense, threads=[1, 2], batches=[1, 16], optimizations=["disable"], **FAST)
    result = profile.run(
        plan, progress=False, on_result=lambda r, d, t: seen.append((r["status"], d, t))
    )
    table = result.table
    assert seen == [("ok", 1, 4), ("ok", 2, 4), ("ok", 3, 4), ("ok", 4, 4)]
    assert list(table["status"]) == ["ok"] * 4
    assert list(table["batch"]) == [1, 16, 1, 16] and list(table["threads"]) == [1, 1, 2, 2]
    assert (table["iterations"] >= 3).all() and (table["warmup"] == 1).all()
    assert (table["min_ms"] <= table["p50_ms"]).all()
    assert (table["p50_ms"] <= table["p90_ms"]).all() and (table["p90_ms"] <= table["p99_ms"]).all()
    assert (table["p99_ms"] <= table["max_ms"]).all() and (table["load_s"] > 0).all()
    assert (table["first_run_ms"] > 0).all() and (table["startup_s"] > 0).all()
    expected = table["batch"] * table["iterations"] / table["measure_s"]
    assert np.allclose(table["items_per_s"], expected.astype(float))
    assert (table["baseline_mb"] > 0).all() and table["run_peak_mb"].notna().all()
    assert table["session_mb"].notna().all() and table["load_peak_mb"].notna().all()
    assert table["inputs"].eq("synthetic").all()
    assert table.loc[1, "input_shapes"] == "x 16x4"
    assert (table["nodes"] == table["nodes_on_provider"]).all()
    assert not table["cpu_fallback"].any() and (table["fallback"] == "").all()
    row = table.iloc[0]
    assert len(row["latencies_ms"]) == row["iterations"]
    ops = result.operators()
    assert set(ops["op"]) == {"MatMul", "Add", "Relu"}  # no fusion at level "disable"
    shares = ops.groupby("label")["share"].sum()
    assert np.allclose(shares, 1.0, atol=0.01)


def test_batch_comes_from_dims_when_no_batch_sizes_are_given(tokens: Path) -> None:
    result = profile.run(
        Plan(tokens, dims={"batch": 3, "seq": 5}, threads=[1], **FAST), progress=False
    )
    row = result.table.iloc[0]
    assert row["batch"] == 3 and row["label"].endswith("· b3 · all")
    assert row["input_shapes"].startswith("input_ids 3x5")


def test_token_model_runs_with_synthetic_ids(tokens: Path) -> None:
    result = profile.run(Plan(tokens, dims={"seq": 6}, threads=[1], **FAST), progress=False)
    assert result.table.loc[0, "status"] == "ok", result.table.loc[0, "error"]


def test_failures_become_rows_and_the_plan_goes_on(tmp_path: Path, dense: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")
    future = onnx.load(str(dense))
    future.ir_version = 99  # newer than any ONNX Runtime: it refuses to load it
    onnx.save(future, str(tmp_path / "future.onnx"))
    plan = Plan(
        {"broken": broken, "future": tmp_path / "future.onnx", "good": dense}, threads=[1], **FAST
    )
    table = profile.run(plan, progress=False).table
    assert list(table["status"]) == ["load-failed", "load-failed", "ok"]
    error = table.loc[0, "error"]
    assert "[ONNXRuntimeError]" not in error and "protobuf" in error.lower()
    assert len(error) <= 400 and np.isnan(table.loc[0, "p50_ms"])
    assert "IR version: 99" in table.loc[1, "error"] and ".cc:" not in table.loc[1, "error"]


def test_a_crashed_worker_is_a_row(tmp_path: Path, dense: Path) -> None:
    python = crashing_python(tmp_path)
    plan = Plan(dense, threads=[1], batches=[1, 2], pythons={"cpu": str(python)}, **FAST)
    table = profile.run(plan, progress=False).table
    assert list(table["status"]) == ["crashed", "ok"]
    assert "SIGSEGV" in table.loc[0, "error"] and table.loc[0, "environment"] == "custom"


def test_a_hung_configuration_times_out(dense: Path) -> None:
    plan = Plan(dense, threads=[1], min_seconds=120, min_iterations=1, warmup=0, timeout_s=3)
    table = profile.run(plan, progress=False).table
    assert table.loc[0, "status"] == "timeout"
    assert "timed out after 3 s during measure" in table.loc[0, "error"]


def test_unavailable_provider_gives_a_row_never_the_cpu(dense: Path) -> None:
    if "CUDAExecutionProvider" in profile.providers_table().query("available")["provider"].tolist():
        pytest.skip("this machine has CUDA")
    table = profile.run(
        Plan(dense, providers=["cpu", "cuda", "openvino"], threads=[1], **FAST), progress=False
    ).table
    assert list(table["status"]) == ["ok", "unavailable", "unavailable"]
    cuda, openvino = table.iloc[1], table.iloc[2]
    assert cuda["package"] == "onnxruntime-gpu" and "localml-kit envs create gpu" in cuda["error"]
    assert openvino["package"] == "onnxruntime-openvino"
    assert "localml-kit envs create openvino" in openvino["error"]
    assert np.isnan(cuda["p50_ms"]) and not isinstance(cuda["latencies_ms"], list)


def test_stop_kills_the_running_worker_and_skips_the_rest(dense: Path) -> None:
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    plan = Plan(
        dense, threads=[1], batches=[1, 2, 3], min_seconds=60, min_iterations=1, timeout_s=120
    )
    try:
        table = profile.run(plan, progress=False, stop=stop).table
    finally:
        timer.cancel()
    assert list(table["status"]) == ["stopped"] * 3
    assert "stopped by the user" in table.loc[0, "error"]


def test_result_json_round_trip(tmp_path: Path, dense: Path) -> None:
    result = profile.run(
        Plan(dense, providers=["cpu", "cuda"], threads=[1], **FAST), progress=False
    )
    path = tmp_path / "result.json"
    text = result.to_json(path)
    assert json.loads(text)["kind"] == "localml-kit profile result"
    again = ProfileResult.from_json(path)
    pd.testing.assert_frame_equal(again.table, result.table)
    assert again.plan == json.loads(text)["plan"] and again.machine["physical_cores"] >= 1
    assert ProfileResult.from_json(text).table.shape == result.table.shape
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(errors.ModelFormatError):
        ProfileResult.from_json(tmp_path / "other.json")


def test_the_row_dataclass_defines_the_columns(dense: Path) -> None:
    from dataclasses import fields

    from localml_kit.profile import ProfileRow

    table = profile.run(Plan(dense, threads=[1], **FAST), progress=False).table
    assert list(table.columns) == [f.name for f in fields(ProfileRow)]
    index = list(table.columns).index("input_shapes")
    assert list(table.columns)[index : index + 3] == ["input_shapes", "dims", "input_notes"]
    assert str(table["threads"].dtype) == "Int64" and table["p50_ms"].dtype == float
    assert str(table["cpu_arena"].dtype) == "boolean" and table.loc[0, "package"] == ""
    # Rows read back from JSON: unknown keys left out, missing ones empty.
    old = profile.ProfileResult.from_json(
        json.dumps(
            {
                "kind": "localml-kit profile result",
                "rows": [{"label": "x", "status": "ok", "new": 1}],
            }
        )
    ).table
    assert "new" not in old and old.loc[0, "error"] == "" and old.loc[0, "dims"] is None


def test_the_worker_gets_the_provider_table_in_its_job(dense: Path) -> None:
    import onnxruntime as ort

    from localml_kit import providers
    from localml_kit.profile import _runner, _worker

    plan = Plan(dense, providers=["cpu", "cuda"], optimizations=list(providers.ORT_LEVELS))
    for cfg in plan.configurations():
        job = _runner._job(cfg)
        assert job["gpu_providers"] == list(providers.GPU_PROVIDERS)
        member = providers.ORT_LEVELS[cfg.optimization]
        assert job["graph_optimization_level"] == member
        if hasattr(ort.GraphOptimizationLevel, member):
            level = _worker.session_options(ort, job).graph_optimization_level
            assert level == getattr(ort.GraphOptimizationLevel, member)
    assert not hasattr(_worker, "GPU_PROVIDERS")


def test_plots_and_html(dense: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = profile.run(Plan(dense, threads=[1], batches=[1, 4], **FAST), progress=False)
    for draw in (result.plot_latency, result.plot_operators, result.plot_memory):
        ax = draw()
        assert ax.get_title()
        plt.close(ax.figure)
    page = result._repr_html_()
    assert "dense.onnx · cpu · 1t · b1 · all" in page
    assert result.summary().columns[0] == "label" and result.problems().empty
    assert len(result.latencies()) == int(result.table["iterations"].sum())


# --- the trace parser (pure functions) ----------------------------------------------------


def _trace() -> list[dict]:
    def node(name: str, op: str, dur: int, ts: int, provider: str = "CPUExecutionProvider") -> dict:
        return {
            "cat": "Node",
            "name": f"{name}_kernel_time",
            "dur": dur,
            "ts": ts,
            "args": {"op_name": op, "provider": provider},
        }

    return [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        node("mm", "MatMul", 90, 1),  # first run: left out
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
        node("mm", "MatMul", 60, 201),
        node("ov", "OpenVINO-EP-subgraph_3", 30, 230, "OpenVINOExecutionProvider"),
        {"cat": "Node", "name": "mm_fence_before", "dur": 1, "ts": 250},
        {"cat": "Session", "name": "model_run", "ts": 400, "dur": 100},
        node("mm", "MatMul", 60, 401),
        node("ov", "OpenVINO-EP-subgraph_12", 30, 430, "OpenVINOExecutionProvider"),
        node("add", "Add", 20, 470),
    ]


def test_operator_times_from_a_trace() -> None:
    table = profile.operator_times(_trace())
    assert table["op"].tolist() == ["MatMul", "OpenVINO-EP-subgraph", "Add"]
    assert table["calls"].tolist() == [2, 2, 1]
    assert table["ms_per_run"].tolist() == pytest.approx([0.06, 0.03, 0.01])
    assert table["share"].sum() == pytest.approx(1.0)
    top = profile.operator_times(_trace(), top=1)
    assert top["op"].tolist() == ["MatMul", "(other)"] and top["share"].sum() == pytest.approx(1.0)


def test_node_providers_and_kernel_events() -> None:
    assert profile.node_providers(_trace()) == {
        "mm": "CPUExecutionProvider",
        "ov": "OpenVINOExecutionProvider",
        "add": "CPUExecutionProvider",
    }
    events = profile.kernel_events(_trace())
    assert len(events) == 5 and events["run"].min() == 1
    assert len(profile.kernel_events(_trace(), skip_first_run=False)) == 6
    assert profile.operator_times([]).empty


def test_summarise_error() -> None:
    text = "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from x failed:\n  Protobuf parsing failed."
    assert (
        profile.summarise_error(text)
        == "INVALID_PROTOBUF: Load model from x failed: Protobuf parsing failed."
    )
    assert len(profile.summarise_error("x" * 1000)) == 400
    located = (
        "FAIL: Load model from m.onnx failed:/src/onnxruntime/core/graph/model.cc:256 "
        "onnxruntime::Model::Model(onnx::ModelProto&&, const Logger&) Unsupported model IR version: 14"
    )
    assert (
        profile.summarise_error(located)
        == "FAIL: Load model from m.onnx failed: Unsupported model IR version: 14"
    )


# --- the command line ------------------------------------------------------------------


def test_cli_profile_table_and_json(
    dense: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.json"
    argv = ["profile", str(dense), "--threads", "1", "--batch", "1,4", "--opt", "basic"]
    argv += [
        "--warmup",
        "1",
        "--min-iterations",
        "3",
        "--min-seconds",
        "0",
        "--json",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "dense.onnx · cpu · 1t · b4 · basic" in printed and "p50_ms" in printed
    assert "top operators" in printed
    assert ProfileResult.from_json(out).table["status"].tolist() == ["ok", "ok"]


def test_cli_profile_unavailable_provider_exits_1(
    dense: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["profile", str(dense), "--providers", "cpu,tensorrt", "--threads", "1"]
    argv += ["--min-iterations", "2", "--min-seconds", "0", "--no-operators", "--quiet"]
    assert main(argv) == 1
    printed = capsys.readouterr().out
    assert "UNAVAILABLE" in printed and "[package: onnxruntime-gpu (with TensorRT)]" in printed


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--providers", "cpu,gpu9"], "unknown execution provider 'gpu9'"),
        (["--dims", "seq=0", "--synthetic"], "argument --dims: dim 'seq': 0 is out of range"),
        (["--batch", "0"], "argument --batch: a batch size must be between 1"),
        (["--threads", "100000"], "argument --threads: threads must be between 1 and 1,024"),
        (["--dims", "seq=eight"], "dim 'seq': 'eight' is not an integer"),
    ],
)
def test_cli_profile_bad_input_exits_2(
    tokens: Path, extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", str(tokens), "--threads", "1", "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_cli_envs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"openvino", "gpu"} and not any(r["ready"] for r in rows)
    assert main(["envs", "create", "nope"]) == 2
    assert "no recipe for a provider environment named 'nope'" in capsys.readouterr().err


# --- real models -----------------------------------------------------------------------


@pytest.mark.samples
def test_real_minilm_with_its_own_sentences(real_home: Path) -> None:
    plan = Plan("all-minilm-l6-v2", threads=[1], batches=[1, 4], **FAST)
    table = profile.run(plan, progress=False).table
    assert table["status"].tolist() == ["ok", "ok"], table["error"].tolist()
    assert table["inputs"].eq("sample").all()
    assert table.loc[1, "input_shapes"].startswith("input_ids 4x")
    assert (table["session_mb"] > 40).all()  # 90 MB of fp32 weights
    top = table.loc[0, "top_operators"][0]
    assert top["op"] in {"MatMul", "FusedMatMul", "Attention"} and top["provider"] == "cpu"


@pytest.mark.samples
def test_real_minilm_as_a_plain_file_gets_the_sequence_default(real_home: Path) -> None:
    model = samples.path("all-minilm-l6-v2")
    assert profile.make_inputs(model, batch=2)["input_ids"].shape == (2, SEQUENCE_DEFAULT)
    feeds = profile.make_inputs(model, batch=2, dims={"sequence": 16})
    assert feeds["input_ids"].max() < 30522 and (feeds["token_type_ids"] < 2).all()
    table = profile.run(
        Plan(model, dims={"sequence": 16}, inputs="synthetic", threads=[1], **FAST), progress=False
    ).table
    assert table.loc[0, "status"] == "ok" and table.loc[0, "input_shapes"].startswith(
        "input_ids 1x16"
    )
    assert table.loc[0, "dims"] == "batch=1, sequence=16"


@pytest.mark.samples
def test_every_onnx_sample_has_valid_example_inputs(real_home: Path) -> None:
    for name in profile.model_choices():
        if samples.get(name.partition(":")[0]).inputs:
            feeds = samples.example_inputs(name.partition(":")[0], batch=2)
            profile.check_inputs(name, feeds)


def test_io_binding_is_a_plan_axis(dense: Path) -> None:
    plan = Plan(dense, threads=[1], batches=[2], io_binding=[False, True], **FAST)
    labels = [c.label for c in plan.configurations()]
    assert labels[1].endswith("· iobind") and not labels[0].endswith("iobind")
    table = profile.run(plan, progress=False).table
    assert table["status"].tolist() == ["ok", "ok"], table["error"].tolist()
    assert table["io_binding"].tolist() == [False, True]
    assert plan.to_dict()["io_binding"] == [False, True]


@pytest.fixture
def openvino_env(real_home: Path) -> envs.Environment:
    """The OpenVINO environment that `make samples` creates in the real kit home."""
    try:
        return envs.get("openvino")
    except errors.EnvironmentNotReadyError as exc:
        message = f"{exc} (REAL_HOME={REAL_HOME})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.samples
def test_cpu_against_openvino_on_minilm(openvino_env: envs.Environment) -> None:
    plan = Plan("all-minilm-l6-v2", providers=["cpu", "openvino"], threads=[1], **FAST)
    table = profile.run(plan, progress=False).table.set_index("provider")
    assert table["status"].tolist() == ["ok", "ok"], table["error"].tolist()
    ov = table.loc["OpenVINOExecutionProvider"]
    assert ov["environment"] == "openvino" and ov["onnxruntime"] == openvino_env.onnxruntime
    assert ov["session_providers"][0] == "OpenVINOExecutionProvider"
    assert ov["nodes_on_provider"] > ov["nodes_on_cpu"]
    if ov["nodes_on_cpu"]:
        assert ov["cpu_fallback"] and ov["fallback"].startswith("FALLBACK:")
        # The CPU nodes cut OpenVINO's part into pieces (MiniLM: one IsNaN per layer).
        assert ov["subgraphs"] > 1 and f"as {ov['subgraphs']} subgraphs" in ov["fallback"]
    assert pd.isna(table.loc["CPUExecutionProvider", "subgraphs"])
    assert any(op["provider"] == "openvino" for op in ov["top_operators"])
    assert table.loc["CPUExecutionProvider", "environment"] == "main"


@pytest.mark.samples
def test_strict_refuses_a_graph_that_needs_the_cpu(openvino_env: envs.Environment) -> None:
    plan = Plan("all-minilm-l6-v2", providers=["openvino"], strict=True, threads=[1], **FAST)
    row = profile.run(plan, progress=False).table.iloc[0]
    assert row["status"] == "load-failed"
    assert "fallback to CPU EP has been explicitly disabled" in row["error"]


@pytest.mark.samples
def test_a_provider_that_fails_to_start_is_not_run_on_the_cpu(
    openvino_env: envs.Environment,
) -> None:
    plan = Plan(
        "digits-mlp",
        providers=["openvino"],
        provider_options={"openvino": {"no_such_option": "1"}},
        threads=[1],
        **FAST,
    )
    row = profile.run(plan, progress=False).table.iloc[0]
    assert row["status"] == "fell-back"
    assert "no_such_option" in row["error"] and "nothing was measured" in row["error"]


def test_session_memory_steps(dense: Path) -> None:
    table = profile.session_memory(dense, count=2)
    assert table["sessions"].tolist() == [0, 1, 2, 1, 0]
    assert table["step"].iloc[1] == "session 1 made and run" and table["rss_mb"].iloc[0] == 0.0
    if (
        "CUDAExecutionProvider"
        not in profile.providers_table().query("available")["provider"].tolist()
    ):
        with pytest.raises(errors.ProviderUnavailableError, match=r"envs create gpu"):
            profile.session_memory(dense, provider="cuda")


# --- GPU paths without a GPU: NVML readings and provider lists ------------------------


class _FakeNvml:
    """Stands in for pynvml: a device whose memory use and process list the test sets."""

    class NVMLError(Exception):
        pass

    def __init__(self, pid: int | None) -> None:
        self.used = 1000 * 2**20
        self.pid = pid
        self.mine = 0

    def nvmlInit(self) -> None: ...

    def nvmlShutdown(self) -> None: ...

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"Fake GPU"

    def nvmlDeviceGetMemoryInfo(self, handle: str):
        return type("Mem", (), {"used": self.used})()

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str):
        if self.pid is None:
            return [type("P", (), {"pid": 1, "usedGpuMemory": 5 * 2**20})()]
        return [type("P", (), {"pid": self.pid, "usedGpuMemory": self.mine})()]


@pytest.mark.parametrize("visible", [True, False])
def test_gpu_memory_per_process_or_per_device(
    monkeypatch: pytest.MonkeyPatch, visible: bool
) -> None:
    from localml_kit.profile import _worker

    fake = _FakeNvml(os.getpid() if visible else None)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu = _worker.GpuMemory(0)
    try:
        assert gpu.name == "Fake GPU"
        fake.used += 300 * 2**20  # the session allocates 300 MB...
        fake.mine = 300 * 2**20
        gpu.sample()
        fake.used -= 100 * 2**20  # ...and frees some: the peak stays
        fake.mine = 200 * 2**20
        peak, method = gpu.peak_mb()
    finally:
        gpu.close()
    assert (peak, method) == (300.0, "process" if visible else "device")


def test_gpu_provider_lists_and_options(dense: Path) -> None:
    from localml_kit.profile import _worker

    plan = Plan(dense, providers=["tensorrt", "cuda", "openvino"], threads=[2])
    trt, cuda, ov = plan.configurations()
    assert trt.provider_options["trt_engine_cache_enable"] is True
    assert trt.provider_options["device_id"] == 0 and cuda.provider_options == {"device_id": 0}
    assert ov.provider_options == {"device_type": "CPU", "num_of_threads": 2}
    job = {**trt.to_dict(), "extra_providers": ["CUDAExecutionProvider"]}
    names = [name for name, _ in _worker.provider_list(job)]
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    custom = Plan(dense, providers=["cuda"], provider_options={"cuda": {"device_id": 1}})
    assert custom.configurations()[0].provider_options == {"device_id": 1}


def test_a_configuration_over_its_memory_cap_is_an_oom_row(tmp_path: Path) -> None:
    # A tiny input, a 1.2 GB output: ConstantOfShape fills 300M floats.
    shape = numpy_helper.from_array(np.array([300_000_000], np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("ConstantOfShape", ["shape"], ["big"]),
            helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
            helper.make_node("Add", ["s", "x"], ["y"]),
        ],
        "hungry",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [shape],
    )
    path = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        tmp_path / "hungry.onnx",
    )
    plan = Plan(path, threads=[1], max_memory_mb=500, operator_profile=False, **FAST)
    row = profile.run(plan, progress=False).table.iloc[0]
    assert row["status"] == "oom", row["error"]
    assert "over the cap of 500 MB" in row["error"]


def test_threads_above_the_cores_are_capped_with_a_warning(dense: Path) -> None:
    cores = os.cpu_count() or 1
    with pytest.warns(errors.ResourceCapWarning, match="capped"):
        plan = Plan(dense, threads=[1, cores * 50])
    assert plan.threads == tuple(dict.fromkeys((1, cores)))
