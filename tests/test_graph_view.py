"""The graph widget's data: payloads of the samples, overlays from real records, hostile names.

The payload (``graph.view_data``) is checked against the ONNX protobuf read
independently here; overlays come from a real ``profile.run`` and a real
``compare.per_node`` of MiniLM against its int8 build; a model whose names and
doc strings are HTML is drawn in real headless Chromium from the built bundle,
and its text must stay text.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper

from localml_kit import _http, compare, envs, errors, graph, models, optimize, profile
from localml_kit.engines import _driver
from tests.conftest import IN_CI, REPO

HOSTILE = '<img src=x onerror="window.__pwned=1">'
JS_SOURCE = REPO / "js" / "graph-view" / "src" / "graph_view.js"


def _edges(g: onnx.GraphProto) -> set[tuple[str, str, str]]:
    """(producer position, consumer position, tensor) within one graph, as the proto says."""
    producer = {out: i for i, n in enumerate(g.node) for out in n.output if out}
    return {
        (str(producer[name]), str(i), name)
        for i, n in enumerate(g.node)
        for name in n.input
        if name in producer
    }


@pytest.mark.samples
@pytest.mark.parametrize(
    "name",
    [
        "all-minilm-l6-v2",
        "ppocr-v4-rec",
        "smollm2-135m-instruct:onnx-fp32",
        "smollm2-135m-instruct",
    ],
)
def test_onnx_payload_counts_equal_the_model(real_home: Path, name: str) -> None:
    proto = onnx.load(str(models.resolve(name).path), load_external_data=False)
    data = graph.view_data(name)
    assert len(data["nodes"]) == len(proto.graph.node) == graph.summarize(name).node_count
    assert len(data["edges"]) == len(_edges(proto.graph))
    assert [n["name"] for n in data["nodes"]] == [n.name for n in proto.graph.node]
    assert [n["op"] for n in data["nodes"]] == [n.op_type for n in proto.graph.node]
    # Every edge joins a producer of the tensor to a consumer of it.
    for src, dst, t in data["edges"]:
        assert t in data["nodes"][src]["outputs"] and t in data["nodes"][dst]["inputs"]
    tensors = {t["name"]: t for t in data["tensors"]}
    for spec in proto.graph.input:
        assert tensors[spec.name]["kind"] == "input"
    weights = {t.name for t in proto.graph.initializer}
    assert {t["name"] for t in data["tensors"] if t["kind"] == "weight"} == weights
    stored = sum(n["weight_bytes"] for n in data["nodes"])
    assert stored >= graph.summarize(name).parameter_bytes * 0.99  # shared weights count twice
    json.dumps(data)  # JSON-ready, as the widget's state must be


@pytest.mark.samples
def test_payload_shapes_dtypes_and_layers_of_minilm(real_home: Path) -> None:
    data = graph.view_data("all-minilm-l6-v2")
    query = next(
        n for n in data["nodes"] if n["name"].endswith("layer.0/attention/self/query/MatMul")
    )
    ins = [data["tensors"][t] for t in query["inputs"]]
    assert [t["kind"] for t in ins] == ["value", "weight"]
    assert ins[1]["dtype"] == "float32" and ins[1]["shape"] == "[384, 384]"
    assert ins[1]["bytes"] == 384 * 384 * 4 and query["weight_bytes"] == 384 * 384 * 4
    out = data["tensors"][query["outputs"][0]]
    assert out["dtype"] == "float32" and out["shape"].endswith(", 384]")
    assert [g["id"] for g in data["groups"]] == [f"bert/encoder/layer.{i}" for i in range(6)]
    assert data["collapse"] and len(data["nodes"]) > 400
    assert data["nodes"][query["id"]]["group"] == 0


@pytest.mark.samples
def test_gguf_payload_is_the_tensor_table_by_layer(real_home: Path) -> None:
    summary = graph.summarize("smollm2-135m-instruct:gguf")
    data = graph.view_data("smollm2-135m-instruct:gguf")
    assert len(data["nodes"]) == len(summary.tensors) == 272
    assert len(data["edges"]) == len(summary.tensors) - 1
    types = {t.name: t.dtype for t in summary.tensors}
    assert {n["name"]: n["op"] for n in data["nodes"]} == types
    assert len(data["groups"]) == summary.block_count == 30
    # Layer by layer in number order (the file lists blk.10 before blk.2), in a chain.
    assert [g["id"] for g in data["groups"]] == [f"blk.{i}" for i in range(30)]
    assert data["groups"][3]["ops"]["Q4_1"] == 7 and data["groups"][3]["nodes"] == 9
    assert data["nodes"][0]["name"] == "token_embd.weight"
    assert [(s, d) for s, d, _ in data["edges"]] == [(i, i + 1) for i in range(271)]
    assert sum(n["weight_bytes"] for n in data["nodes"]) == summary.parameter_bytes
    assert data["facts"]["metadata"]["architecture"] == "llama"


def _if_loop_model() -> onnx.ModelProto:
    """A model with an If (two one-node branches) and a Loop (a two-node body)."""
    then = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["t"], name="then_neg")],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])],
    )
    other = helper.make_graph(
        [helper.make_node("Abs", ["x"], ["e"], name="else_abs")],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])],
    )
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
            helper.make_node("Add", ["acc", "acc"], ["acc_out"], name="body_add"),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc", TensorProto.FLOAT, [2]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [2]),
        ],
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"], name="positive"),
        helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then, else_branch=other),
        helper.make_node("Loop", ["n", "c", "y"], ["z"], name="repeat", body=body),
    ]
    g = helper.make_graph(
        nodes,
        "main",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])],
        [
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("n", TensorProto.INT64, [], [3]),
        ],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_subgraphs_are_nodes_of_their_own_graph_under_their_container() -> None:
    model = _if_loop_model()
    onnx.checker.check_model(model)
    data = graph.view_data(model)
    assert len(data["nodes"]) == 8 == graph.summarize(model).node_count
    by_name = {n["name"]: n for n in data["nodes"]}
    branch, repeat = by_name["branch"], by_name["repeat"]
    assert len(branch["subgraphs"]) == 2 and len(repeat["subgraphs"]) == 1
    bodies = {data["graphs"][gid]["attr"]: data["graphs"][gid] for gid in branch["subgraphs"]}
    assert set(bodies) == {"then_branch", "else_branch"}
    assert all(b["parent"] == branch["id"] for b in bodies.values())
    assert by_name["then_neg"]["graph"] == bodies["then_branch"]["id"]
    assert by_name["else_abs"]["graph"] == bodies["else_branch"]["id"]
    assert by_name["body_add"]["graph"] == repeat["subgraphs"][0]
    # Edges stay inside one graph: sum -> positive -> branch -> repeat, and none in the bodies
    # (their nodes read the body's own inputs, not another node).
    names = [(data["nodes"][s]["name"], data["nodes"][d]["name"]) for s, d, _ in data["edges"]]
    assert sorted(names) == sorted(
        [("sum", "positive"), ("positive", "branch"), ("positive", "repeat"), ("branch", "repeat")]
    )
    assert "graph then (1 nodes)" in dict(branch["attrs"])["then_branch"]


def _hostile_model() -> onnx.ModelProto:
    node = helper.make_node("Relu", [HOSTILE], ["<b>out</b>"], name=HOSTILE, doc_string=HOSTILE)
    g = helper.make_graph(
        [node],
        "<script>alert(1)</script>",
        [helper.make_tensor_value_info(HOSTILE, TensorProto.FLOAT, [1, "<i>n</i>"])],
        [helper.make_tensor_value_info("<b>out</b>", TensorProto.FLOAT, [1, "<i>n</i>"])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.doc_string = HOSTILE
    helper.set_model_props(model, {"<meta>": HOSTILE})
    return model


def test_hostile_names_stay_data_and_the_page_sets_only_text() -> None:
    from localml_kit.widgets import GraphView

    data = graph.view_data(_hostile_model())
    assert data["nodes"][0]["name"] == HOSTILE and data["nodes"][0]["doc"] == HOSTILE
    assert data["tensors"][0]["shape"] == "[1, <i>n</i>]"
    view = GraphView(_hostile_model())
    view.label = HOSTILE
    bundle = view._repr_mimebundle_()
    html = (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]
    assert "<img" not in html and "&lt;img" in html
    # The widget's source never builds HTML from strings.
    source = JS_SOURCE.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink
    exports = graph.Overlay("t", {HOSTILE: 1.0})
    assert exports.to_netron()["metrics"][0]["target"] == HOSTILE  # JSON, not markup


@pytest.mark.samples
def test_overlays_from_a_real_profile(real_home: Path, tmp_path: Path) -> None:
    plan = profile.Plan(
        "all-minilm-l6-v2",
        threads=[1],
        optimizations=["disable", "all"],
        warmup=2,
        min_iterations=5,
        min_seconds=0,
    )
    result = profile.run(plan, progress=False)
    result = profile.ProfileResult.from_json(result.to_json())  # what a saved profile gives back
    data = graph.view_data("all-minilm-l6-v2")
    names = {n["name"] for n in data["nodes"]}
    ran = {n["name"] for n in data["nodes"] if n["op"] != "Constant"}

    times = graph.time_overlay(result, 0, nodes=names)
    # Without graph optimization every node that computes ran as itself, with its own time.
    assert set(times.values) == ran and not times.note
    assert all(isinstance(v, float) and v > 0 for v in times.values.values())
    frame = times.frame()
    assert frame["value"].is_monotonic_decreasing
    table = result.node_times()
    top = table[table["label"] == result.table.loc[0, "label"]].iloc[0]
    assert frame.loc[0, "node"] == top["node"]
    legend = times.legend()
    assert legend["kind"] == "scale" and 0 < legend["low"] < legend["high"]
    assert set(times.colors()) == ran

    ops = graph.operator_overlay(result, 0, nodes=names)
    matmuls = {n["name"] for n in data["nodes"] if n["op"] == "MatMul"}
    assert len({ops.values[m] for m in matmuls}) == 1  # one value per operator type
    op_total = sum(times.values[m] for m in matmuls)
    assert ops.values[next(iter(matmuls))] == pytest.approx(op_total, rel=1e-6)

    placed = graph.placement_overlay(result, 0, nodes=names)
    assert set(placed.values.values()) == {"CPU"} and not placed.marked
    assert placed.legend()["items"][0][0] == "CPU"

    # With graph optimization some kernels are fused nodes the file does not have: said so.
    fused = graph.time_overlay(result, 1, nodes=names)
    assert "fused by graph optimization" in fused.note and len(fused.values) < len(ran)

    explorer = json.loads(times.save_model_explorer(tmp_path / "me.json").read_text())
    results = explorer["main_graph"]["results"]
    assert set(results) == ran
    assert all(re.fullmatch(r"#[0-9a-f]{6}", r["bgColor"]) for r in results.values())
    assert explorer["main_graph"]["gradient"][0]["stop"] == 0
    attachment = json.loads(times.save_netron(tmp_path / "netron.json").read_text())
    assert attachment["signature"] == "netron:attachment"
    assert {m["target"] for m in attachment["metrics"]} == ran
    with pytest.raises(errors.ConfigError, match=r"\*\.json"):
        times.save_netron(tmp_path / "netron.txt")
    with pytest.raises(errors.ConfigError, match="no measured configuration"):
        graph.time_overlay(result, "no such label")


@pytest.fixture
def openvino_env(real_home: Path) -> envs.Environment:
    """The OpenVINO environment that `make samples` creates in the real kit home."""
    try:
        return envs.get("openvino")
    except errors.EnvironmentNotReadyError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.mark.samples
def test_a_fallback_node_is_marked(openvino_env: envs.Environment) -> None:
    """OpenVINO cannot run the forest's TreeEnsembleClassifier: the CPU provider runs it, marked."""
    plan = profile.Plan(
        "digits-forest",
        providers=["openvino"],
        threads=[1],
        warmup=1,
        min_iterations=3,
        min_seconds=0,
    )
    result = profile.run(plan, progress=False)
    assert result.table.loc[0, "status"] == "ok", result.table.loc[0, "error"]
    assert result.table.loc[0, "node_providers"] == {
        "TreeEnsembleClassifier": "CPUExecutionProvider"
    }
    names = {n["name"] for n in graph.view_data("digits-forest")["nodes"]}
    overlay = graph.placement_overlay(result, nodes=names)
    assert overlay.values == {"TreeEnsembleClassifier": "CPU"}
    assert overlay.marked == ["TreeEnsembleClassifier"]
    assert overlay.mark_label == "fallback (not on OpenVINO)"
    assert overlay.to_netron()["metrics"][-1] == {
        "kind": "node",
        "target": "TreeEnsembleClassifier",
        "name": "fallback (not on OpenVINO)",
        "value": True,
        "type": "boolean",
    }


@pytest.mark.samples
def test_per_node_int8_minilm_quantized_matmuls_lead_the_error(
    real_home: Path, tmp_path: Path
) -> None:
    int8 = optimize.quantize_int8(
        "all-minilm-l6-v2", tmp_path / "minilm.int8.onnx", op_types=["MatMul"]
    )
    frame = compare.per_node("all-minilm-l6-v2", int8.path)
    proto = onnx.load(str(models.resolve("all-minilm-l6-v2").path), load_external_data=False)
    assert len(frame) == sum(len([o for o in n.output if o]) for n in proto.graph.node)
    assert list(frame["order"]) == sorted(frame["order"])
    quantized = (frame["op"] == "MatMul") & (frame["candidate_op"] != "MatMul")
    assert quantized.sum() == 36  # 6 layers x (query, key, value, attention out, two FFN)
    compared = frame.dropna(subset=["max_abs"])
    diverged = compared[compared["cosine"] < 1 - 1e-6]
    # Everything before the first quantized MatMul is exact; that MatMul is where it starts.
    first = diverged.index[0]
    assert quantized[first], frame.loc[first]
    assert (compared.loc[: first - 1, "max_abs"] == 0).all()
    # The first quantized MatMuls add error of their own; nodes that only move data add none.
    qkv = quantized & frame["node"].str.contains(r"/layer\.0/attention/self/(?:query|key|value)/")
    assert qkv.sum() == 3 and (frame.loc[qkv, "added"] > 1e-5).all()  # they read exact inputs
    passing = frame["op"].isin(["Reshape", "Transpose", "Unsqueeze", "Shape", "Gather"])
    assert (frame.loc[passing & frame["added"].notna(), "added"] < 1e-9).all()
    # In graph order, the error starts at the quantized MatMuls of each layer's attention.
    starts = diverged[diverged["added"] > 1e-5].drop_duplicates("node").head(3)
    assert quantized[starts.index].all(), starts[["node", "op", "candidate_op", "added"]]

    overlay = graph.error_overlay(frame, "added")
    assert set(quantized[quantized].index.map(frame["node"])) <= set(overlay.values)
    worst = graph.error_overlay(frame, "cosine")
    assert max(worst.values.values()) == pytest.approx(1 - compared["cosine"].min())
    same = compare.per_node("all-minilm-l6-v2", "all-minilm-l6-v2")
    assert float(same["max_abs"].max()) == 0.0 and same["max_abs"].notna().all()
    assert not same["note"].str.contains("differ|no tensor").any(), set(same["note"])


def test_the_bundle_is_built_and_a_missing_one_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from localml_kit.widgets import graph_view

    bundle = graph_view.bundle_path()
    text = bundle.read_text()
    assert "dagre" in text.lower() and "export" in text and "textContent" in text
    monkeypatch.setattr(graph_view, "BUNDLE", tmp_path / "missing.js")
    with pytest.raises(errors.OptionalDependencyError, match="make setup"):
        graph_view.GraphView()


PAGE = """<!doctype html><html><body><div id="w"></div>
<script type="application/json" id="state">STATE</script>
<script type="module">
const state = JSON.parse(document.getElementById("state").textContent);
const handlers = {};
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
  save_changes() {}, on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); }, off() {},
};
const source = await (await fetch("bundle.js")).text();
const widget = await import(URL.createObjectURL(new Blob([source], {type: "text/javascript"})));
widget.default.render({ model, el: document.getElementById("w") });
</script></body></html>"""


@contextlib.contextmanager
def widget_page(view: Any, tmp_path: Path) -> Iterator[Any]:
    """A Chromium page that draws ``view``'s state with the built bundle, served from 127.0.0.1."""
    import functools
    import http.server
    import threading

    from playwright.sync_api import sync_playwright

    from localml_kit import config
    from localml_kit.widgets.graph_view import bundle_path

    chromium, why = config.chromium()
    if chromium is None:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    state = {"graph": view.graph, "overlays": view.overlays, "overlay": view.overlay, "height": 500}
    (tmp_path / "bundle.js").write_bytes(bundle_path().read_bytes())
    page_text = PAGE.replace("STATE", json.dumps(state).replace("</", "<\\/"))
    (tmp_path / "index.html").write_text(page_text)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = _http.LocalServer(0, functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=[*_driver.CHROMIUM_ARGS, *_driver.NO_GPU_ARGS],
            )
            try:
                page = browser.new_page()
                page.errors_seen = []  # type: ignore[attr-defined]
                page.on("pageerror", lambda e: page.errors_seen.append(str(e)))  # type: ignore[attr-defined]
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                yield page
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_hostile_names_are_drawn_as_text_in_chromium(tmp_path: Path) -> None:
    """The built bundle draws a model whose every name is HTML: it shows as text, runs nothing."""
    from playwright.sync_api import expect

    from localml_kit.widgets import GraphView

    view = GraphView(_hostile_model())
    view.add_overlay(graph.Overlay(HOSTILE, {HOSTILE: 1.0}, unit="<u>ms</u>", note=HOSTILE))
    with widget_page(view, tmp_path) as page:
        node = page.locator(".lmk-node[data-kind=op]")
        expect(node).to_have_count(1, timeout=30_000)
        assert node.get_attribute("data-name") == HOSTILE
        node.click()
        panel = page.locator(".lmk-panel.lmk-open")
        expect(panel).to_contain_text(HOSTILE)
        expect(panel).to_contain_text("<b>out</b>")
        expect(page.locator(".lmk-legend")).to_contain_text(HOSTILE)
        page.locator("button.lmk-model").click()  # the model's doc string and metadata
        expect(panel.locator(".lmk-doc")).to_have_text(HOSTILE)
        expect(panel).to_contain_text("<meta>")
        assert page.locator("#w img, #w meta, #w script").count() == 0
        # Nothing the model said became an element or ran.
        assert page.locator("#w img, #w b:text-is('out'), #w i, #w u, #w script").count() == 0
        assert page.evaluate("() => window.__pwned") is None
        assert not page.errors_seen


@pytest.mark.browser
def test_subgraphs_open_from_their_node_in_chromium(tmp_path: Path) -> None:
    """If / Loop bodies start collapsed under their node; its panel draws them in a frame."""
    from playwright.sync_api import expect

    from localml_kit.widgets import GraphView

    with widget_page(GraphView(_if_loop_model()), tmp_path) as page:
        widget = page.locator(".lmk-graph[data-drawn]")
        expect(widget).to_have_attribute("data-drawn-nodes", "4", timeout=30_000)
        branch = page.locator('.lmk-node[data-name="branch"]')
        expect(branch).to_contain_text("2 subgraphs")
        branch.click()
        page.locator(".lmk-panel button.lmk-expand").click()
        expect(widget).to_have_attribute("data-drawn-nodes", "6")
        expect(page.locator('.lmk-node[data-name="then_neg"]')).to_be_visible()
        assert page.locator("rect.lmk-cluster").count() == 2
        page.locator('.lmk-node[data-name="repeat"]').click()
        page.locator(".lmk-panel button.lmk-expand").click()
        expect(widget).to_have_attribute("data-drawn-nodes", "8")
        page.locator('.lmk-node[data-name="body_add"]').click()
        expect(page.locator(".lmk-panel.lmk-open")).to_contain_text("in subgraph")
        expect(page.locator(".lmk-panel.lmk-open")).to_contain_text("body of repeat")
        assert not page.errors_seen


@pytest.mark.samples
def test_per_node_cpu_against_openvino(openvino_env: envs.Environment) -> None:
    """The candidate runs in the OpenVINO environment's Python; compute nodes compare closely."""
    frame = compare.per_node("all-minilm-l6-v2", "all-minilm-l6-v2@openvino")
    compared = frame.dropna(subset=["max_abs"])
    assert len(compared) > 150
    assert float(compared["cosine"].min()) > 0.9999 and float(compared["max_abs"].max()) < 1e-3
    folded = frame["note"].str.startswith("not exposed on openvino")
    assert folded.any() and frame.loc[folded, "op"].isin(compare._nodes.MOVES).all()
    assert set(compared["op"]) >= {"MatMul", "Add", "Softmax", "LayerNormalization", "Erf"}
    overlay = graph.error_overlay(frame, "max_abs")
    assert "not exposed on openvino" in overlay.note


@pytest.mark.browser
@pytest.mark.samples
def test_gguf_layers_and_tensors_in_chromium(real_home: Path, tmp_path: Path) -> None:
    """The GGUF opens as its 30 layers; expanded, each tensor shows its type, shape and bytes."""
    from playwright.sync_api import expect

    from localml_kit.widgets import GraphView

    with widget_page(GraphView("smollm2-135m-instruct:gguf"), tmp_path) as page:
        widget = page.locator(".lmk-graph[data-drawn]")
        expect(widget).to_have_attribute("data-drawn-nodes", "2", timeout=30_000)
        layers = page.locator(".lmk-node[data-kind=group]")
        expect(layers).to_have_count(30)
        expect(layers.first).to_contain_text("blk.0 · 9 tensors")
        expect(page.locator(".lmk-constants")).to_be_hidden()
        page.locator("button.lmk-layers").click()
        expect(widget).to_have_attribute("data-drawn-nodes", "272")
        page.locator("input.lmk-search").fill("blk.7.attn_q.weight")
        tensor = page.locator('.lmk-node[data-name="blk.7.attn_q.weight"]')
        expect(tensor).to_contain_text("Q4_1")
        tensor.click()
        panel = page.locator(".lmk-panel.lmk-open")
        expect(panel.locator("h4")).to_have_text("Q4_1")
        expect(panel).to_contain_text("[576, 576]")
        expect(panel).to_contain_text("207.4 kB")  # 576 x 576 weights in Q4_1 blocks of 20 bytes
        assert not page.errors_seen
