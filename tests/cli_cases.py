"""Bad input for the command line: files that make it, and the calls that must each end in one
``error:`` line with exit status 2 (used by tests/test_cli_bad_input.py and
benchmarks/bad_input.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_files(folder: Path) -> dict[str, Path]:
    """A small valid model and a set of broken or wrong files, written into ``folder``."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((64, 8)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 8])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    files = {"model": folder / "mymlp.onnx"}
    onnx.save(model, files["model"])
    raw = files["model"].read_bytes()
    files["empty"] = folder / "empty.onnx"
    files["empty"].write_bytes(b"")
    files["random"] = folder / "random.onnx"
    files["random"].write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["truncated"] = folder / "truncated.onnx"
    files["truncated"].write_bytes(raw[: len(raw) // 2])
    custom = helper.make_graph(
        [helper.make_node("MyOp", ["x"], ["y"], domain="com.example")],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    files["custom"] = folder / "custom.onnx"
    onnx.save(
        helper.make_model(
            custom,
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
            ir_version=8,
        ),
        files["custom"],
    )
    files["gguf"] = folder / "model.gguf"
    files["gguf"].write_bytes(b"GGUF" + b"\0" * 60)
    files["wrong_npz"] = folder / "wrong.npz"
    np.savez(files["wrong_npz"], x=np.zeros((2, 3), np.float32))
    files["not_npz"] = folder / "not.npz"
    files["not_npz"].write_text("hello")
    files["missing_dir"] = folder / "no" / "such" / "folder"
    return files


# (case id, argv with {name} for a file from make_files, a word the error line must contain)
CASES: list[tuple[str, list[str], str]] = [
    ("no-model", ["inspect", "{missing_dir}/x.onnx"], "no model at"),
    ("inspect-empty", ["inspect", "{empty}"], "empty"),
    ("inspect-random", ["inspect", "{random}"], "onnx"),
    ("optimize-empty", ["optimize", "{empty}", "--int8"], "empty"),
    ("optimize-empty-int4", ["optimize", "{empty}", "--int4", "--no-compare"], "empty"),
    ("optimize-random", ["optimize", "{random}", "--int8"], "not a readable ONNX model"),
    ("optimize-truncated", ["optimize", "{truncated}", "--fp16"], "not a readable ONNX model"),
    (
        "optimize-graph-custom-op",
        ["optimize", "{custom}", "--graph", "basic"],
        "Nothing was written",
    ),
    (
        "optimize-missing-output",
        ["optimize", "{model}", "--int8", "-o", "{missing_dir}/q.onnx"],
        "does not exist",
    ),
    ("optimize-gguf", ["optimize", "{gguf}", "--int8"], "GGUF"),
    ("optimize-block-size", ["optimize", "{model}", "--int4", "--block-size", "12"], "block_size"),
    ("optimize-graph-level", ["optimize", "{model}", "--graph", "fastest"], "--graph"),
    ("profile-gguf", ["profile", "{gguf}"], "GGUF"),
    (
        "profile-json-missing-folder",
        ["profile", "{model}", "--json", "{missing_dir}/p.json"],
        "does not exist",
    ),
    ("profile-threads-negative", ["profile", "{model}", "--threads", "-2"], "--threads"),
    ("profile-threads-huge", ["profile", "{model}", "--threads", "100000"], "--threads"),
    ("profile-batch-zero", ["profile", "{model}", "--batch", "0"], "--batch"),
    ("profile-batch-huge", ["profile", "{model}", "--batch", "99999999999"], "--batch"),
    (
        "profile-dims-huge",
        ["profile", "{model}", "--dims", "seq=900000", "--batch", "1000"],
        "smaller --batch or --dims",
    ),
    ("profile-dims-text", ["profile", "{model}", "--dims", "seq=eight"], "not an integer"),
    ("profile-dims-form", ["profile", "{model}", "--dims", "seq"], "NAME=VALUE"),
    (
        "profile-provider",
        ["profile", "{model}", "--providers", "gpu9"],
        "unknown execution provider",
    ),
    ("profile-opt", ["profile", "{model}", "--opt", "turbo"], "optimization levels"),
    ("profile-timeout", ["profile", "{model}", "--timeout", "-1"], "--timeout"),
    ("profile-max-memory", ["profile", "{model}", "--max-memory", "0"], "--max-memory"),
    (
        "profile-cluster-unreachable",
        ["profile", "{model}", "--cluster", "tcp://127.0.0.1:9", "--connect-timeout", "1"],
        "cannot reach the Dask scheduler",
    ),
    ("profile-cluster-address", ["profile", "{model}", "--cluster", "tcp://nowhere"], "--cluster"),
    ("profile-machines-alone", ["profile", "{model}", "--machines", "a"], "need --cluster"),
    ("compare-gguf", ["compare", "{gguf}", "{model}"], "GGUF"),
    (
        "compare-batch-huge",
        ["compare", "{model}", "{model}", "--batch", "1000000"],
        "smaller --batch",
    ),
    ("compare-wrong-npz", ["compare", "{model}", "{model}", "--inputs", "{wrong_npz}"], "input"),
    (
        "compare-not-npz",
        ["compare", "{model}", "{model}", "--inputs", "{not_npz}"],
        "cannot read inputs",
    ),
    ("compare-only-unknown", ["compare", "{model}", "{model}", "--only", "nope"], "--only"),
    ("compare-provider", ["compare", "{model}", "{model}@gpu9"], "unknown execution provider"),
    ("compare-timeout", ["compare", "{model}", "{model}", "--timeout", "0"], "--timeout"),
    ("slm-top-p", ["slm", "chat", "--prompt", "hi", "--top-p", "5"], "--top-p"),
    ("slm-top-k", ["slm", "chat", "--prompt", "hi", "--top-k", "-3"], "--top-k"),
    ("slm-temperature", ["slm", "chat", "--prompt", "hi", "--temperature", "-1"], "--temperature"),
    ("slm-threads", ["slm", "chat", "--prompt", "hi", "--threads", "-2"], "--threads"),
    ("slm-max-tokens", ["slm", "chat", "--prompt", "hi", "--max-tokens", "0"], "--max-tokens"),
    ("slm-bench-repeats", ["slm", "bench", "--repeats", "0"], "--repeats"),
    ("slm-bench-json", ["slm", "bench", "--json", "{missing_dir}/b.json"], "does not exist"),
    ("samples-unknown", ["samples", "path", "no-such-sample"], "no-such-sample"),
    ("samples-none", ["samples", "fetch"], "--all"),
    ("zoo-limit", ["zoo", "search", "--limit", "0"], "--limit"),
    ("zoo-sort", ["zoo", "search", "--sort", "stars"], "stars"),
    ("envs-unknown", ["envs", "create", "nope"], "nope"),
    ("unknown-command", ["frobnicate"], "invalid choice"),
    ("unknown-flag", ["inspect", "{model}", "--frob"], "--frob"),
    ("inspect-top", ["inspect", "{model}", "--top", "0"], "--top"),
]


def argv_for(case: list[str], files: dict[str, Path]) -> list[str]:
    """The case's argv with its file placeholders filled in."""
    names = {k: str(v) for k, v in files.items()}
    return [part.format(**names) for part in case]
