"""Measure the graph widget: payload size and build time, time to drawn in Chromium, per_node.

Usage:
    python benchmarks/graph_view.py              # every table below
    python benchmarks/graph_view.py --repeat 5

Tables (Markdown on stdout, JSON in benchmarks/results/graph_view.json):

1. payload: ``graph.view_data`` per model: nodes, edges, JSON size, build time (median).
2. drawn in Chromium: headless Chromium opens a page that holds the widget's saved state and
   imports the built bundle through a blob: URL (what an exported notebook does), from
   127.0.0.1. Per model: the widget's own time from render to drawn (layout + SVG, from the
   page's clock), as it opens (repeated layers collapsed on large graphs) and with every node
   drawn; and the wall-clock time from navigation to the first node visible, beside netron's
   (``graph.show``, the same model) measured the same way.
3. per_node: ``compare.per_node`` of MiniLM fp32 against itself and against its int8 build
   (``optimize.quantize_int8``, per-channel), median of ``--repeat``.

Needs the samples built (``make samples``), the bundle built (``make setup``) and Chromium.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"

from localml_kit import _http  # noqa: E402
from localml_kit.engines import _driver  # noqa: E402

PAYLOAD_MODELS = [
    "all-minilm-l6-v2",
    "smollm2-135m-instruct:onnx-fp32",
    "ppocr-v4-rec",
    "smollm2-135m-instruct",
    "smollm2-135m-instruct:gguf",
]
DRAW_MODELS = ["all-minilm-l6-v2", "smollm2-135m-instruct:onnx-fp32", "ppocr-v4-rec"]
ARGS = [*_driver.CHROMIUM_ARGS, *_driver.NO_GPU_ARGS]  # the kit's own: offline, no GPU

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>graph</title></head><body>
<div id="w"></div>
<script type="application/json" id="state">STATE</script>
<script type="module">
const state = JSON.parse(document.getElementById("state").textContent);
const handlers = {};
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
  save_changes() {},
  on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); },
  off() {},
};
const source = await (await fetch("bundle.js")).text();
const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
const widget = await import(url);
window.__render = performance.now();
widget.default.render({ model, el: document.getElementById("w") });
</script></body></html>"""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def payload_table(repeat: int) -> list[dict]:
    from localml_kit import graph

    rows = []
    for model in PAYLOAD_MODELS:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            data = graph.view_data(model)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "model": model,
                "nodes": len(data["nodes"]),
                "edges": len(data["edges"]),
                "groups": len(data["groups"]),
                "collapsed_at_first": data["collapse"],
                "payload_kb": round(len(json.dumps(data)) / 1e3, 1),
                "build_ms": round(_median(times) * 1e3, 1),
            }
        )
    return rows


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def draw_table(repeat: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from localml_kit import config, graph
    from localml_kit.widgets.graph_view import bundle_path

    chromium, why = config.chromium()
    if chromium is None:
        raise SystemExit(f"no Chromium: {why}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bundle.js").write_bytes(bundle_path().read_bytes())
        for i, model in enumerate(DRAW_MODELS):
            state = {"graph": graph.view_data(model), "overlays": [], "overlay": "", "height": 700}
            text = json.dumps(state).replace("</", "<\\/")
            (root / f"m{i}.html").write_text(PAGE.replace("STATE", text))
        handler = functools.partial(_Quiet, directory=str(root))
        server = _http.LocalServer(0, handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
                for i, model in enumerate(DRAW_MODELS):
                    first, full, wall = [], [], []
                    for _ in range(repeat):
                        page = browser.new_page(viewport={"width": 1400, "height": 900})
                        start = time.perf_counter()
                        page.goto(f"{base}/m{i}.html")
                        widget = page.locator(".lmk-graph[data-drawn]")
                        widget.wait_for(timeout=60_000)
                        page.locator(".lmk-node").first.wait_for(state="visible")
                        wall.append(time.perf_counter() - start)
                        first.append(float(widget.get_attribute("data-draw-ms") or "nan"))
                        nodes = int(widget.get_attribute("data-drawn-nodes") or 0)
                        total = len(graph.view_data(model)["nodes"])
                        if widget.locator("button.lmk-layers").text_content() == "Expand layers":
                            widget.locator("button.lmk-layers").click()
                        if not widget.locator(".lmk-constants input").is_checked():
                            widget.locator(".lmk-constants input").check()
                        page.wait_for_function(
                            f"() => document.querySelector('.lmk-graph').dataset.drawnNodes == '{total}'",
                            timeout=60_000,
                        )
                        full.append(float(widget.get_attribute("data-draw-ms") or "nan"))
                        page.close()
                    netron = []
                    for _ in range(repeat):
                        view = graph.show(model)
                        try:
                            page = browser.new_page(viewport={"width": 1400, "height": 900})
                            start = time.perf_counter()
                            page.goto(view.url)
                            page.locator("g.node").first.wait_for(state="visible", timeout=60_000)
                            netron.append(time.perf_counter() - start)
                            page.close()
                        finally:
                            view.close()
                    rows.append(
                        {
                            "model": model,
                            "nodes": total,
                            "drawn_at_first": nodes,
                            "widget_first_ms": round(_median(first), 1),
                            "widget_all_nodes_ms": round(_median(full), 1),
                            "widget_wall_s": round(_median(wall), 3),
                            "netron_wall_s": round(_median(netron), 3),
                        }
                    )
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
    return rows


def per_node_table(repeat: int) -> list[dict]:
    from localml_kit import compare, optimize

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        int8 = optimize.quantize_int8("all-minilm-l6-v2", Path(tmp) / "minilm.int8.onnx")
        for label, candidate in (("fp32", "all-minilm-l6-v2"), ("int8", int8.path)):
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                frame = compare.per_node("all-minilm-l6-v2", candidate)
                times.append(time.perf_counter() - start)
            compared = frame.dropna(subset=["max_abs"])
            rows.append(
                {
                    "candidate": f"all-minilm-l6-v2 {label}",
                    "tensors": len(frame),
                    "compared": len(compared),
                    "worst_cosine": round(float(compared["cosine"].min()), 5),
                    "seconds": round(_median(times), 2),
                }
            )
    return rows


def _markdown(rows: list[dict]) -> str:
    heads = list(rows[0])
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(r[h]) for h in heads) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    tables = {
        "payload": payload_table(max(args.repeat, 5)),
        "drawn": draw_table(args.repeat),
        "per_node": per_node_table(args.repeat),
    }
    for name, rows in tables.items():
        print(f"\n### {name}\n\n{_markdown(rows)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "graph_view.json").write_text(json.dumps(tables, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
