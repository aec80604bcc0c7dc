"""graph: ONNX and GGUF summaries (without loading weights), netron served offline, GraphViewer
(the graph widget's own data and overlays: tests/test_graph_view.py)."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import errors, graph, models
from localml_kit.cli import main

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def tiny_model(weight_rows: int = 4, *, xss: bool = False) -> onnx.ModelProto:
    """x[batch, 4] -> MatMul(W) -> If(cond){Relu}else{Neg} -> y[batch, rows], plus a custom op."""
    w = numpy_helper.from_array(np.ones((4, weight_rows), np.float32), "W")
    h = numpy_helper.from_array(np.zeros((weight_rows,), np.float16), "H")
    q = numpy_helper.from_array(np.zeros((8,), np.int8), "Q")
    then_graph = helper.make_graph(
        [helper.make_node("Relu", ["m"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["m"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node(
            "Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])
        ),
        helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Gelu", ["y"], ["z"], domain="com.example"),
    ]
    g = helper.make_graph(
        nodes,
        XSS if xss else "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", weight_rows]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
        ],
        initializer=[w, h, q],
    )
    model = helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
        producer_name=XSS if xss else "localml-tests",
        producer_version="1.0",
    )
    helper.set_model_props(model, {"author": XSS if xss else "tests", "task": "demo"})
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


# ---- ONNX summaries -----------------------------------------------------------------------------


def test_onnx_summary_reads_every_field(tmp_path: Path) -> None:
    s = graph.summarize(save(tiny_model(), tmp_path / "tiny.onnx"))
    assert s.format == "onnx"
    assert s.ir_version == onnx.IR_VERSION
    assert s.opsets == {"ai.onnx": 17, "com.example": 1}
    assert s.producer == "localml-tests 1.0"
    assert s.graph_name == "tiny"
    assert s.metadata == {"author": "tests", "task": "demo"}
    assert [(i.name, i.dtype, i.shape) for i in s.inputs] == [("x", "float32", ("batch", 4))]
    assert [(o.name, o.shape) for o in s.outputs] == [("y", ("batch", 4)), ("z", None)]
    assert s.inputs[0].shape_text == "[batch, 4]"
    assert s.dynamic_dims == ["batch"]
    # 4 top-level nodes plus one in each If branch.
    assert s.node_count == 6
    assert s.operators["ai.onnx::Relu"] == 1 and s.operators["ai.onnx::Neg"] == 1
    assert s.operators["com.example::Gelu"] == 1
    assert s.custom_domains == ["com.example"]
    dtypes = s.dtypes().set_index("dtype")
    assert dtypes.loc["float32", "parameters"] == 16 and dtypes.loc["float32", "bytes"] == 64
    assert dtypes.loc["float16", "bytes"] == 8
    assert dtypes.loc["int8", "bytes"] == 8
    assert dtypes.loc["bool", "parameters"] == 1  # the Constant node's tensor
    assert s.parameter_count == 16 + 4 + 8 + 1
    assert s.largest(1)["name"].tolist() == ["W"]
    assert s.external_data == []
    assert s.load_memory_bytes > s.parameter_bytes


def test_summary_of_a_proto_matches_the_file(tmp_path: Path) -> None:
    model = tiny_model()
    from_file = graph.summarize(save(model, tmp_path / "tiny.onnx"))
    from_proto = graph.summarize(model)
    assert from_proto.path is None
    assert from_proto.operators == from_file.operators
    assert from_proto.parameter_bytes == from_file.parameter_bytes
    assert from_proto.inputs == from_file.inputs


def test_summary_never_holds_the_weights_in_memory(tmp_path: Path) -> None:
    big = 16 * 1024 * 1024  # 64 MB of float32, stored inline in the protobuf
    w = numpy_helper.from_array(np.arange(big, dtype=np.float32).reshape(1024, -1), "W")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", big // 1024])],
        initializer=[w],
    )
    path = save(helper.make_model(g), tmp_path / "big.onnx")
    del w, g
    tracemalloc.start()
    try:
        s = graph.summarize(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s.parameter_bytes == big * 4
    assert s.skeleton_skipped_bytes >= big * 4
    assert peak < 8 * 1024 * 1024, f"summarize allocated {peak / 1e6:.1f} MB for a 64 MB model"


def test_external_data_is_listed_and_checked(tmp_path: Path) -> None:
    model = tiny_model(weight_rows=1024)
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    s = graph.summarize(path)
    [ext] = s.external_data
    assert ext.name == "ext.onnx.data" and ext.present
    assert ext.size_bytes == (tmp_path / "ext.onnx.data").stat().st_size >= ext.expected_bytes
    assert s.total_bytes == path.stat().st_size + ext.size_bytes
    assert {t.location for t in s.tensors if t.name == "W"} == {"ext.onnx.data"}

    data = tmp_path / "ext.onnx.data"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(errors.ModelFormatError, match="shorter than the model expects"):
        graph.summarize(path)
    data.unlink()
    with pytest.raises(
        errors.ModelFormatError, match=r"external data that is missing: ext\.onnx\.data"
    ):
        graph.summarize(path)


# ---- bad input ----------------------------------------------------------------------------------


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, type[errors.LocalMLError], str]]:
    real = tiny_model().SerializeToString()
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "truncated.onnx").write_bytes(real[: len(real) // 2])
    (tmp_path / "folder").mkdir()
    two = tmp_path / "two-models"
    two.mkdir()
    save(tiny_model(), two / "a.onnx")
    save(tiny_model(), two / "b.onnx")
    (tmp_path / "bad-magic.gguf").write_bytes(b"GGML" + b"\0" * 64)
    (tmp_path / "short.gguf").write_bytes(b"GGUF\x03\x00\x00\x00\x10")
    onnx.save(tiny_model(), tmp_path / "ext.onnx", save_as_external_data=True, size_threshold=0)
    for extra in tmp_path.glob("*.data"):
        extra.unlink()
    for extra in tmp_path.iterdir():
        if extra.is_file() and not extra.suffix:  # onnx names the data file after the tensor
            extra.unlink()
    return {
        "empty": (tmp_path / "empty.onnx", errors.ModelFormatError, "empty"),
        "random": (tmp_path / "random.onnx", errors.ModelFormatError, "not"),
        "truncated": (tmp_path / "truncated.onnx", errors.ModelFormatError, "not a complete ONNX"),
        "empty folder": (tmp_path / "folder", errors.ModelFormatError, "no .onnx or .gguf"),
        "two models": (two, errors.ModelFormatError, "2 model files"),
        "missing": (tmp_path / "nope.onnx", errors.ModelNotFoundError, "no model at"),
        "bad magic": (tmp_path / "bad-magic.gguf", errors.ModelFormatError, "GGUF magic"),
        "short gguf": (tmp_path / "short.gguf", errors.ModelFormatError, "truncated"),
        "missing external": (tmp_path / "ext.onnx", errors.ModelFormatError, "missing"),
    }


BAD = [
    "empty",
    "random",
    "truncated",
    "empty folder",
    "two models",
    "missing",
    "bad magic",
    "short gguf",
    "missing external",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_one_clear_line(case: str, tmp_path: Path) -> None:
    path, kind, words = bad_inputs(tmp_path)[case]
    with pytest.raises(kind) as caught:
        graph.summarize(path)
    message = str(caught.value)
    assert words in message
    assert "\n" not in message
    assert isinstance(caught.value, errors.LocalMLError)


@pytest.mark.parametrize("case", BAD)
def test_cli_inspect_bad_input_exits_2_without_traceback(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, words = bad_inputs(tmp_path)[case]
    assert main(["inspect", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_truncated_protobuf_at_every_cut_is_refused_or_complete(tmp_path: Path) -> None:
    real = tiny_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    for cut in range(1, len(real), 7):
        path.write_bytes(real[:cut])
        try:
            s = graph.summarize(path)
        except errors.ModelFormatError:
            continue
        # A cut exactly between top-level fields can parse; it must still be a whole graph.
        assert s.opsets and s.node_count == 6


# ---- GGUF ---------------------------------------------------------------------------------------


def write_gguf(path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(XSS)
    writer.add_context_length(256)
    writer.add_embedding_length(32)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(100)])
    writer.add_tensor("token_embd.weight", np.ones((100, 32), np.float32))
    q8 = gguf.quants.quantize(np.ones((64, 32), np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.ffn_up.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("output_norm.weight", np.ones((32,), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_summary(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    write_gguf(path)
    s = graph.summarize(path)
    assert s.format == "gguf" and s.gguf_version == 3
    assert (s.architecture, s.context_length, s.embedding_length) == ("llama", 256, 32)
    assert (s.block_count, s.head_count, s.head_count_kv) == (2, 4, 2)
    assert (s.tokenizer_model, s.vocab_size) == ("gpt2", 100)
    assert s.name == XSS
    assert s.tensor_count == 3
    assert s.parameter_count == 100 * 32 + 64 * 32 + 32
    dtypes = s.dtypes().set_index("dtype")
    assert dtypes.loc["Q8_0", "bytes"] == 64 * 32 // 32 * 34  # 34 bytes per block of 32
    assert dtypes.loc["F32", "bytes"] == (100 * 32 + 32) * 4
    assert s.file_bytes == path.stat().st_size
    assert s.metadata["tokenizer.ggml.tokens"] == "<array of 100>"
    assert XSS not in s._repr_html_()


@pytest.mark.samples
def test_real_smollm2_gguf(real_home: Path) -> None:
    s = graph.summarize("smollm2-135m-instruct:gguf")
    assert (s.architecture, s.block_count, s.context_length) == ("llama", 30, 8192)
    assert (s.embedding_length, s.head_count, s.head_count_kv) == (576, 9, 3)
    assert (s.tokenizer_model, s.vocab_size) == ("gpt2", 49152)
    dtypes = s.dtypes().set_index("dtype")
    assert dtypes["tensors"].to_dict() == {"Q4_1": 210, "Q8_0": 1, "F32": 61}
    assert dtypes.loc["Q8_0", "bytes"] == 30081024
    assert s.largest(1)["name"].tolist() == ["token_embd.weight"]
    assert 134e6 < s.parameter_count < 136e6


@pytest.mark.samples
def test_real_samples(real_home: Path) -> None:
    minilm = graph.summarize("all-minilm-l6-v2")
    assert [i.name for i in minilm.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert minilm.inputs[0].shape == ("batch", "sequence")
    assert minilm.largest(1)["name"].tolist() == ["bert.embeddings.word_embeddings.weight"]
    assert 22e6 < minilm.parameter_count < 23e6

    det = graph.summarize("ppocr-v4-det")  # weights live in Constant nodes
    assert det.operators["ai.onnx::Conv"] > 50
    assert det.parameter_bytes > 4e6
    assert {t.location for t in det.tensors} == {"constant"}

    slm = graph.summarize("smollm2-135m-instruct")
    assert "com.microsoft::MatMulNBits" in slm.operators
    assert slm.custom_domains == ["com.microsoft"]
    assert slm.external_data[0].present
    assert "int4 block" in set(slm.dtypes()["dtype"])

    forest = graph.summarize("digits-forest")  # tree parameters live in attributes
    assert forest.parameter_count > 10_000
    assert {t.location for t in forest.tensors} == {"attribute"}

    table = graph.overview(["all-minilm-l6-v2", "ppocr-v4-det", "smollm2-135m-instruct:gguf"])
    assert table["format"].tolist() == ["onnx", "onnx", "gguf"]
    assert table.loc[2, "main_type"] == "Q4_1"


def test_model_references_resolve(tmp_path: Path) -> None:
    path = save(tiny_model(), tmp_path / "only.onnx")
    ref = models.resolve(tmp_path)  # a folder with one model
    assert ref.path == path and ref.kind == "onnx" and ref.sample is None
    assert models.resolve(str(path)).path == path
    assert models.resolve(f"{path}@cpu").provider == "CPUExecutionProvider"
    with pytest.raises(errors.UnknownProviderError):
        models.resolve(f"{path}@gpu9")
    with pytest.raises(errors.SampleNotReadyError):
        models.resolve("digits-mlp")  # hermetic home: not built
    with pytest.raises(errors.UnknownSampleError):
        models.resolve("digits-mlp:no-such-variant")


# ---- HTML ---------------------------------------------------------------------------------------


def test_html_escapes_everything_from_the_file(tmp_path: Path) -> None:
    s = graph.summarize(save(tiny_model(xss=True), tmp_path / "x.onnx"))
    page = s._repr_html_()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    data = s.to_dict()
    assert json.loads(json.dumps(data))["producer"].startswith(XSS)
    assert data["inputs"][0]["shape"] == ["batch", 4]


# ---- netron -------------------------------------------------------------------------------------


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with OPENER.open(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_netron_serves_the_page_with_the_kits_settings(tmp_path: Path) -> None:
    path = save(tiny_model(), tmp_path / "my model.onnx")
    view = graph.show(path)
    try:
        status, headers, body = get(view.url)
        page = body.decode()
        assert status == 200
        assert headers["Content-Security-Policy"] == "connect-src 'self'"
        assert headers["Set-Cookie"].startswith("consent=")
        assert '<meta name="file" content="/data/my%20model.onnx">' in page
        assert 'name="date"' not in page  # no build date: no "please update" nag
        assert get(view.url + "data/my%20model.onnx")[2] == path.read_bytes()
        assert get(view.url + "index.js")[0] == 200
        assert get(view.url + "data/..%2F..%2Fetc%2Fpasswd")[0] == 404
        assert get(view.url + "../../etc/passwd")[0] == 404
        assert "iframe" in view._repr_html_() and view.url in view._repr_html_()
    finally:
        view.close()
    assert port_closed(view.port)
    assert "closed" in view._repr_html_()


def raw(port: int, path: str, host: str | None = "", method: str = "GET") -> tuple[int, bytes]:
    """One request with this exact path and Host header ("" = the server's own, None = none)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host or f"127.0.0.1:{port}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def model_with_external_data(folder: Path) -> tuple[Path, Path]:
    """folder/model.onnx keeping its weights in folder/weights.bin, with a secret beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save(
        tiny_model(),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    (folder / "secret.txt").write_text("the user's secret")
    return path, folder / "weights.bin"


def test_netron_serves_the_model_and_its_external_data_and_nothing_else(tmp_path: Path) -> None:
    path, weights = model_with_external_data(tmp_path / "models")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the model's folder")
    (tmp_path / "models" / "link.bin").symlink_to(outside / "secret.txt")
    with graph.show(path) as view:
        port = view.port
        assert raw(port, "/data/model.onnx") == (200, path.read_bytes())
        assert raw(port, "/data/weights.bin") == (200, weights.read_bytes())
        assert raw(port, "/data/weights.bin?cb=1700000000", method="HEAD")[0] == 200
        assert raw(port, "/")[0] == 200 and raw(port, "/index.js")[0] == 200
        for probe in [
            "/data/secret.txt",
            "/data/link.bin",  # a symlink out of the folder
            "/data/./secret.txt",
            "/data/../models/secret.txt",
            "/data/%2e%2e/models/secret.txt",
            "/data/%2E%2E%2Fmodels%2Fsecret.txt",
            "/data/weights.bin/../secret.txt",
            "/data/" + str(path.parent / "secret.txt"),  # an absolute path
            "/data/" + urllib.request.pathname2url(str(outside / "secret.txt")),
            "/data//etc/passwd",
            "//etc/passwd",
            "/../../../../etc/passwd",
            "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/..%2f..%2f..%2f..%2fetc%2fpasswd",
            "/data/secret.txt%00.onnx",
            "/index.js%00",
            "/data/",
            "/data",
            "/__init__.py",  # netron's own Python files are not web files
        ]:
            status, body = raw(port, probe)
            assert status == 404, probe
            assert b"secret" not in body and b"root:" not in body, probe


def test_netron_refuses_external_data_names_that_leave_the_folder(tmp_path: Path) -> None:
    """A model whose tensors name files outside its folder (.., absolute, a symlink out) gets none."""
    path, weights = model_with_external_data(tmp_path / "models")
    (tmp_path / "secret.txt").write_text("next to the folder")
    (tmp_path / "models" / "link.bin").symlink_to(tmp_path / "secret.txt")
    model = onnx.load(path, load_external_data=False)
    names = ["../secret.txt", str(tmp_path / "secret.txt"), "link.bin"]
    for tensor, name in zip(model.graph.initializer, names, strict=True):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = name
    # Only the Constant node's tensor names weights.bin: attribute tensors count too.
    constant = next(n for n in model.graph.node if n.op_type == "Constant").attribute[0].t
    constant.data_location = onnx.TensorProto.EXTERNAL
    constant.external_data.add(key="location", value="weights.bin")
    evil = tmp_path / "models" / "evil.onnx"
    evil.write_bytes(model.SerializeToString())
    with graph.show(evil) as view:
        assert raw(view.port, "/data/weights.bin") == (200, weights.read_bytes())
        for name in names:
            assert raw(view.port, "/data/" + urllib.parse.quote(name))[0] == 404, name


def test_netron_serves_external_data_from_a_hugging_face_cache_layout(tmp_path: Path) -> None:
    """snapshots/REV/ holds links into blobs/: the model's data is served, the other blobs are not."""
    path, weights = model_with_external_data(tmp_path / "export")
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "rev"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for name, source in [("m0", path), ("w0", weights), ("other", tmp_path / "export/secret.txt")]:
        (blobs / name).write_bytes(source.read_bytes())
    (snapshot / "model.onnx").symlink_to("../../blobs/m0")
    (snapshot / "weights.bin").symlink_to("../../blobs/w0")
    with graph.show(snapshot / "model.onnx") as view:
        assert raw(view.port, "/data/model.onnx") == (200, path.read_bytes())
        assert raw(view.port, "/data/weights.bin") == (200, weights.read_bytes())
        for probe in ("/data/other", "/data/m0", "/data/../blobs/other", "/data/w0"):
            assert raw(view.port, probe)[0] == 404, probe


def test_netron_answers_only_its_own_host_names(tmp_path: Path) -> None:
    """DNS rebinding: a request for any other name (or none) gets 403, whatever the path."""
    path, _ = model_with_external_data(tmp_path / "models")
    with graph.show(path) as view:
        port = view.port
        assert raw(port, "/", host=f"127.0.0.1:{port}")[0] == 200
        assert raw(port, "/data/model.onnx", host=f"LOCALHOST:{port}")[0] == 200
        for host in [
            f"evil.example:{port}",
            "evil.example",
            f"127.0.0.1:{port + 1}",
            "127.0.0.1",
            f"[::1]:{port}",  # it binds 127.0.0.1 only
            f"127.0.0.1.evil.example:{port}",
            None,
        ]:
            for target in ("/", "/data/model.onnx", "/index.js", "/data/secret.txt"):
                for method in ("GET", "HEAD"):
                    status, body = raw(port, target, host=host, method=method)
                    assert status == 403, (host, target, method)
                    assert b"netron" not in body.lower() or b"forbidden" in body


def test_several_views_at_once_and_stop_all(tmp_path: Path) -> None:
    a = graph.show(save(tiny_model(), tmp_path / "a.onnx"))
    b = graph.show(save(tiny_model(8), tmp_path / "b.onnx"))
    assert a.port != b.port
    assert b"a.onnx" in get(a.url)[2] and b"b.onnx" in get(b.url)[2]
    assert set(graph.open_views()) >= {a, b}
    assert graph.stop_all() >= 2
    assert graph.open_views() == []
    assert port_closed(a.port) and port_closed(b.port)


def test_show_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(errors.ModelNotFoundError):
        graph.show(tmp_path / "missing.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(errors.ModelFormatError):
        graph.show(tmp_path / "empty.onnx")
    assert graph.open_views() == []


# ---- widget and CLI -----------------------------------------------------------------------------


def test_graph_viewer_state(tmp_path: Path) -> None:
    from localml_kit.widgets import GraphViewer

    good = save(tiny_model(), tmp_path / "good.onnx")
    viewer = GraphViewer(good)
    try:
        assert viewer.result is not None and viewer.result.node_count == 6
        assert viewer.tabs.titles == ("Graph", "Summary", "Operators", "netron")
        # The Graph tab is the graph widget, drawn in the page; netron waits for its button.
        assert viewer.graph_pane.children == (viewer.graph_view,)
        assert len(viewer.graph_view.result["nodes"]) == 6 and viewer.view is None
        assert not viewer.netron_button.disabled
        viewer.netron_button.click()
        assert viewer.view is not None and viewer.view.alive
        assert viewer.view.url in viewer.netron_pane.value
        assert viewer.tabs.selected_index == 3
        assert "localml-model-summary" in viewer.summary_pane.value
        assert "good.onnx" in viewer.status.value
        first = viewer.view

        evil = tmp_path / f"{XSS.replace('/', '_')}.onnx"
        drawn = viewer.graph_view
        viewer.picker.value = str(evil)
        viewer.open_button.click()
        assert viewer.result is None and viewer.view is None and viewer.graph_view is None
        assert drawn.comm is None  # the dropped graph widget is closed, not left in the kernel
        assert not first.alive and viewer.netron_button.disabled
        assert "<script>" not in viewer.status.value and "&lt;script&gt;" in viewer.status.value

        viewer.picker.value = str(save(tiny_model(xss=True), tmp_path / "x.onnx"))
        viewer.open_button.click()
        assert viewer.result is not None and viewer.result.graph_name == XSS
        assert "<script>" not in viewer.summary_pane.value
        assert viewer.view is None  # a new model: netron waits for its button again
        viewer.tabs.selected_index = 0
        assert viewer.open_netron(select=False) is viewer.view and viewer.view.alive
        assert viewer.tabs.selected_index == 0
    finally:
        viewer.close()
    assert viewer.view is None
    assert graph.open_views() == []


def test_graph_viewer_without_netron_still_opens_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """netron asked for at open but not installed: its tab says how to get it, the rest holds."""
    from localml_kit.widgets import GraphViewer

    monkeypatch.setitem(sys.modules, "netron", None)  # `import netron` fails, as when absent
    viewer = GraphViewer(save(tiny_model(), tmp_path / "good.onnx"), netron=True)
    try:
        assert viewer.result is not None and viewer.result.node_count == 6
        assert "good.onnx" in viewer.status.value and viewer.view is None
        assert "pip install netron" in viewer.netron_pane.value
        assert viewer.graph_pane.children == (viewer.graph_view,)
    finally:
        viewer.close()


@pytest.mark.samples
def test_graph_viewer_lists_and_opens_samples(real_home: Path) -> None:
    from localml_kit.widgets import GraphViewer

    viewer = GraphViewer(netron=False)
    try:
        assert "smollm2-135m-instruct:gguf" in viewer.picker.options
        assert "all-minilm-l6-v2" in viewer.picker.options
        viewer.picker.value = "smollm2-135m-instruct:gguf"  # choosing a listed sample opens it
        assert viewer.result is not None and viewer.result.architecture == "llama"
    finally:
        viewer.close()


def test_cli_inspect_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save(tiny_model(), tmp_path / "tiny.onnx")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ai.onnx 17, com.example 1" in out
    assert "[batch, 4]" in out and "com.example::Gelu" in out
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["node_count"] == 6 and data["dynamic_dims"] == ["batch"]
    assert data["tensors"][0]["name"] == "W"
