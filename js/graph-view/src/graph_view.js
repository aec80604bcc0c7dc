// The graph widget of localml-kit: draws a model's graph from the widget's state (anywidget).
//
// Everything it draws comes from two synced traits: `graph` (nodes, edges, tensors, layer
// groups, from localml_kit.graph.view_data) and `overlays` (values and colours per node), with
// `overlay` naming the one shown. No server, no network: the layout is dagre's, in the page.
// Every string from the model is set with textContent or as a plain attribute, never as HTML.
import dagre from "@dagrejs/dagre";

const SVG = "http://www.w3.org/2000/svg";
const NODE_H = 34;
const CHAR_W = 6.6;
const HEX = /^#[0-9a-fA-F]{6}$/;
const FANOUT = 8; // more readers than this: a "from" box beside each reader, not long edges

const CSS = `
.lmk-graph { font: 12px/1.3 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
  border: 1px solid #ccc; border-radius: 4px; background: #fff; position: relative; }
.lmk-graph .lmk-bar { display: flex; gap: 6px; align-items: center; padding: 4px 6px;
  border-bottom: 1px solid #ddd; flex-wrap: wrap; }
.lmk-graph .lmk-bar input[type=search] { width: 220px; padding: 2px 4px; }
.lmk-graph .lmk-bar button, .lmk-graph .lmk-bar select { padding: 2px 6px; }
.lmk-graph .lmk-count { color: #555; margin-left: auto; }
.lmk-graph .lmk-body { display: flex; position: relative; }
.lmk-graph .lmk-canvas { flex: 1; overflow: hidden; cursor: grab; position: relative; background: #fcfcfc; }
.lmk-graph .lmk-canvas.lmk-dragging { cursor: grabbing; }
.lmk-graph svg { display: block; width: 100%; height: 100%; user-select: none; }
.lmk-graph .lmk-node rect { stroke: #666; stroke-width: 1; }
.lmk-graph .lmk-node text { pointer-events: none; font-size: 11px; }
.lmk-graph .lmk-node .lmk-op { font-weight: 600; }
.lmk-graph .lmk-node { cursor: pointer; }
.lmk-graph .lmk-node.lmk-hit rect { stroke: #ff7f0e; stroke-width: 4; }
.lmk-graph .lmk-node.lmk-marked rect { stroke: #d62728; stroke-width: 3; stroke-dasharray: 5 3; }
.lmk-graph .lmk-node.lmk-selected rect { stroke: #000; stroke-width: 3; }
.lmk-graph .lmk-edge { fill: none; stroke: #999; stroke-width: 1.2; }
.lmk-graph .lmk-edge.lmk-sub { stroke-dasharray: 4 3; }
.lmk-graph .lmk-cluster { fill: #f3f0ff; stroke: #9467bd; stroke-dasharray: 6 3; }
.lmk-graph .lmk-panel { width: 340px; max-height: 100%; overflow: auto; border-left: 1px solid #ddd;
  padding: 6px 8px; background: #fff; display: none; }
.lmk-graph .lmk-panel.lmk-open { display: block; }
.lmk-graph .lmk-panel h4 { margin: 2px 0 4px; font-size: 13px; }
.lmk-graph .lmk-panel table { border-collapse: collapse; width: 100%; margin-bottom: 6px; }
.lmk-graph .lmk-panel td, .lmk-graph .lmk-panel th { border-bottom: 1px solid #eee; padding: 1px 3px;
  text-align: left; vertical-align: top; word-break: break-all; font-size: 11px; }
.lmk-graph .lmk-legend { position: absolute; left: 8px; bottom: 8px; background: rgba(255,255,255,.92);
  border: 1px solid #ccc; padding: 4px 6px; max-width: 360px; font-size: 11px; }
.lmk-graph .lmk-legend:empty { display: none; }
.lmk-graph .lmk-ramp { height: 10px; width: 200px; border: 1px solid #888; margin: 2px 0; }
.lmk-graph .lmk-swatch { display: inline-block; width: 10px; height: 10px; border: 1px solid #666;
  margin-right: 4px; vertical-align: middle; }
.lmk-graph .lmk-tip { position: absolute; pointer-events: none; background: #333; color: #fff;
  padding: 3px 6px; border-radius: 3px; font-size: 11px; max-width: 420px; display: none;
  white-space: pre-wrap; overflow-wrap: anywhere; z-index: 5; }
.lmk-graph .lmk-note { color: #a33; }
`;

// Default fills by operator family (no overlay).
const FAMILY = [
  [/^(Conv|ConvTranspose|MatMul|Gemm|MatMulNBits|MatMulInteger|QLinear|Attention|GroupQueryAttention|MultiHeadAttention)/, "#cfe2f3"],
  [/(Norm|Normalization)/, "#d9ead3"],
  [/^(Relu|Gelu|Erf|Sigmoid|Tanh|Softmax|HardSwish|HardSigmoid|LeakyRelu|Silu|FastGelu|QuickGelu|Clip)/, "#fff2cc"],
  [/^(Reshape|Transpose|Squeeze|Unsqueeze|Flatten|Concat|Split|Slice|Gather|Shape|Expand|Cast|Constant|ConstantOfShape|Range|Identity)/, "#eeeeee"],
  [/^(If|Loop|Scan)$/, "#e6d9f2"],
  [/^(Q\d|F\d|BF16|IQ|I\d)/, "#fde9d9"],
];
const IO_FILL = "#ffffff";
const GROUP_FILL = "#e6d9f2";

function familyFill(op) {
  for (const [re, fill] of FAMILY) if (re.test(op)) return fill;
  return "#f4f4f4";
}

function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function html(tag, cls, text, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (parent) parent.appendChild(e);
  return e;
}

function bytesText(n) {
  if (n === null || n === undefined) return "";
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(2)} MB`;
}

function valueText(v, unit) {
  if (typeof v === "number") {
    const a = Math.abs(v);
    const t = a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toPrecision(4);
    return unit ? `${t} ${unit}` : t;
  }
  return String(v);
}

function mix(a, b, t) {
  const p = (c, i) => parseInt(c.slice(1 + 2 * i, 3 + 2 * i), 16);
  const out = [0, 1, 2].map((i) => Math.round(p(a, i) + (p(b, i) - p(a, i)) * t));
  return "#" + out.map((x) => x.toString(16).padStart(2, "0")).join("");
}

function scaleColor(legend, value) {
  const stops = (legend.stops || []).filter((s) => HEX.test(s));
  if (stops.length < 2 || typeof value !== "number") return null;
  let { low, high } = legend;
  let t;
  if (high <= low) t = 1;
  else if (legend.log) {
    const v = Math.max(value, low);
    t = (Math.log10(v) - Math.log10(low)) / (Math.log10(high) - Math.log10(low));
  } else t = (value - low) / (high - low);
  t = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(t), stops.length - 2);
  return mix(stops[i], stops[i + 1], t - i);
}

function shortName(name, max) {
  if (!name) return "";
  const last = name.split("/").filter(Boolean).pop() || name;
  return last.length > max ? last.slice(0, max - 1) + "…" : last;
}

let instances = 0;

function render({ model, el }) {
  const uid = `lmk${++instances}${Math.random().toString(36).slice(2, 7)}`;
  el.classList.add("lmk-graph");
  const style = document.createElement("style");
  style.textContent = CSS;
  el.appendChild(style);

  const bar = html("div", "lmk-bar", null, el);
  const search = html("input", "lmk-search", null, bar);
  search.type = "search";
  search.placeholder = "search a node name or operator";
  const fitButton = html("button", "lmk-fit", "Fit", bar);
  const layersButton = html("button", "lmk-layers", "Expand layers", bar);
  const modelButton = html("button", "lmk-model", "Model", bar);
  const constLabel = html("label", "lmk-constants", null, bar);
  const constBox = html("input", null, null, constLabel);
  constBox.type = "checkbox";
  constLabel.appendChild(document.createTextNode(" constants"));
  const overlayLabel = html("label", null, "Overlay ", bar);
  const overlaySelect = html("select", "lmk-overlay", null, overlayLabel);
  const count = html("span", "lmk-count", "", bar);

  const body = html("div", "lmk-body", null, el);
  const canvas = html("div", "lmk-canvas", null, body);
  const panel = html("div", "lmk-panel", null, body);
  const legend = html("div", "lmk-legend", null, canvas);
  const tip = html("div", "lmk-tip", null, canvas);
  const root = svg("svg", {}, canvas);
  const defs = svg("defs", {}, root);
  const marker = svg(
    "marker",
    { id: `${uid}-arrow`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    defs,
  );
  svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#999" }, marker);
  const world = svg("g", { class: "lmk-world" }, root);

  let data = null;
  let collapsed = new Set(); // group indexes drawn as one box
  let expandedSubs = new Set(); // container node ids whose subgraphs are drawn
  let showConstants = true; // Constant nodes as boxes of their own
  let hasConstants = false;
  let boxes = new Map(); // box id -> {kind, node?, group?, label, elem, members}
  let view = { x: 0, y: 0, k: 1 };
  let size = { width: 1, height: 1 };
  let selected = null;
  let hits = [];
  let hitIndex = -1;

  function setHeight() {
    body.style.height = `${Math.max(200, Number(model.get("height")) || 600)}px`;
  }

  function applyView() {
    world.setAttribute("transform", `translate(${view.x},${view.y}) scale(${view.k})`);
  }

  function fit() {
    const w = canvas.clientWidth || 800;
    const h = canvas.clientHeight || 600;
    const k = Math.min(w / (size.width + 40), h / (size.height + 40), 1.5);
    view = { k, x: (w - size.width * k) / 2, y: Math.max(10, (h - size.height * k) / 2) };
    applyView();
  }

  function focus(box) {
    const w = canvas.clientWidth || 800;
    const h = canvas.clientHeight || 600;
    const k = Math.max(view.k, 0.8);
    view = { k, x: w / 2 - box.x * k, y: h / 2 - box.y * k };
    applyView();
  }

  function overlayNow() {
    const name = model.get("overlay") || "";
    return (model.get("overlays") || []).find((o) => o.name === name) || null;
  }

  // ---- which boxes are drawn --------------------------------------------------------------
  function boxOf(node) {
    if (node.graph !== 0) {
      const g = data.graphs[node.graph];
      const container = data.nodes[g.parent];
      if (!expandedSubs.has(container.id) || boxOf(container) === null) return null;
      return `n${node.id}`;
    }
    if (node.group >= 0 && collapsed.has(node.group)) return `g${node.group}`;
    if (!showConstants && node.op === "Constant" && !node.inputs.length) return null;
    return `n${node.id}`;
  }

  function buildLayout() {
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 28, marginx: 10, marginy: 10 });
    g.setDefaultEdgeLabel(() => ({}));
    boxes = new Map();
    const nodes = data.nodes;
    const producer = new Map();
    for (const n of nodes) if (n.graph === 0) for (const t of n.outputs) if (t >= 0) producer.set(t, n.id);
    const isGguf = data.format === "gguf";
    for (const n of nodes) {
      const id = boxOf(n);
      if (id === null) continue;
      if (id.startsWith("g")) {
        if (!boxes.has(id)) {
          const group = data.groups[n.group];
          const label = `${group.label} · ${group.nodes} ${isGguf ? "tensors" : "nodes"}`;
          const sub = Object.entries(group.ops || {}).slice(0, 3).map(([op, c]) => `${op}×${c}`).join(" ");
          boxes.set(id, { id, kind: "group", group: n.group, label, sub, members: [] });
        }
        boxes.get(id).members.push(n);
        continue;
      }
      const sub = n.subgraphs.length
        ? `${expandedSubs.has(n.id) ? "▾" : "▸"} ${n.subgraphs.length} subgraph${n.subgraphs.length > 1 ? "s" : ""}`
        : shortName(n.name || (isGguf ? "" : `#${n.id}`), 28);
      boxes.set(id, { id, kind: "op", node: n, label: n.op, sub, members: [n] });
    }
    if (!isGguf) {
      // A graph input read only inside one collapsed layer (a layer's KV cache, say), or an
      // output made there, folds into that layer's box.
      const readers = new Map();
      for (const n of nodes) {
        if (n.graph !== 0) continue;
        for (const t of n.inputs) if (t >= 0) (readers.get(t) || readers.set(t, new Set()).get(t)).add(boxOf(n));
      }
      const folded = (ids) => ids.size === 1 && [...ids][0] !== null && [...ids][0].startsWith("g");
      for (const t of data.graphs[0].inputs) {
        const read = [...(readers.get(t) || new Set())].filter((b) => b !== null);
        if (folded(new Set(read))) continue;
        // An input read all over the graph (a mask, positions) is drawn beside each reader:
        // one box with edges to every layer would stretch across the whole layout.
        const copies = read.length > 3 ? read : [null];
        for (const reader of copies) {
          const id = reader === null ? `i${t}` : `i${t}@${reader}`;
          boxes.set(id, { id, kind: "input", tensor: t, label: "input", sub: shortName(data.tensors[t].name, 28), members: [], to: reader === null ? read : [reader] });
        }
      }
      for (const t of data.graphs[0].outputs) {
        const p = producer.get(t);
        if (p !== undefined && folded(new Set([boxOf(nodes[p])]))) continue;
        boxes.set(`o${t}`, { id: `o${t}`, kind: "output", tensor: t, label: "output", sub: shortName(data.tensors[t].name, 28), members: [] });
      }
    }
    for (const box of boxes.values()) {
      const chars = Math.max(box.label.length * 1.15, box.sub.length, 6);
      box.width = Math.round(chars * CHAR_W + 18);
      box.height = NODE_H;
      g.setNode(box.id, { width: box.width, height: box.height });
    }
    // Expanded subgraphs: a cluster around their nodes, a dashed edge from the container.
    for (const cid of expandedSubs) {
      const container = nodes[cid];
      if (!boxes.has(`n${cid}`)) continue;
      for (const gid of container.subgraphs) {
        const cluster = `c${gid}`;
        g.setNode(cluster, {});
        const inGraph = nodes.filter((n) => n.graph === gid);
        const fed = new Set();
        for (const e of data.edges) if (nodes[e[1]].graph === gid) fed.add(e[1]);
        for (const n of inGraph) {
          if (!boxes.has(`n${n.id}`)) continue;
          g.setParent(`n${n.id}`, cluster);
          if (!fed.has(n.id)) g.setEdge(`n${cid}`, `n${n.id}`, { sub: true });
        }
      }
    }
    const seen = new Set();
    const pairs = [];
    const fanout = new Map();
    for (const [s, d] of data.edges) {
      const a = boxOf(nodes[s]);
      const b = boxOf(nodes[d]);
      if (a === null || b === null || a === b) continue;
      const key = `${a}>${b}`;
      if (seen.has(key)) continue;
      seen.add(key);
      pairs.push([a, b]);
      fanout.set(a, (fanout.get(a) || 0) + 1);
    }
    // A value read by many boxes far apart (a mask's length, read by every layer) would draw
    // edges across the whole graph and cost dagre a dummy node per rank crossed: each reader
    // gets a small "from" box beside it instead.
    for (const [a, b] of pairs) {
      if (fanout.get(a) <= FANOUT) {
        g.setEdge(a, b, {});
        continue;
      }
      const id = `r${a}>${b}`;
      const from = boxes.get(a);
      const ref = { id, kind: "ref", source: a, label: "from", sub: from.kind === "op" ? shortName(from.node.name || from.node.op, 22) : from.label, members: [] };
      ref.width = Math.round(Math.max(ref.sub.length, 6) * CHAR_W + 14);
      ref.height = 26;
      boxes.set(id, ref);
      g.setNode(id, { width: ref.width, height: ref.height });
      g.setEdge(id, b, { ref: true });
    }
    if (!isGguf) {
      for (const box of boxes.values()) {
        if (box.kind === "input") for (const reader of box.to) g.setEdge(box.id, reader, {});
      }
      for (const t of data.graphs[0].outputs) {
        const p = producer.get(t);
        const from = p === undefined ? null : boxOf(nodes[p]);
        if (from !== null && boxes.has(`o${t}`)) g.setEdge(from, `o${t}`, {});
      }
    }
    const before = performance.now();
    dagre.layout(g);
    el.dataset.layoutMs = (performance.now() - before).toFixed(1);
    return g;
  }

  // ---- drawing ----------------------------------------------------------------------------
  function draw(keepView) {
    const started = performance.now();
    world.replaceChildren();
    if (!data || !Array.isArray(data.nodes)) {
      count.textContent = "no graph";
      return;
    }
    const g = buildLayout();
    const info = g.graph();
    size = { width: info.width || 1, height: info.height || 1 };
    const clusters = svg("g", {}, world);
    const edges = svg("g", {}, world);
    const layer = svg("g", {}, world);
    for (const id of g.nodes()) {
      if (!id.startsWith("c")) continue;
      const c = g.node(id);
      if (!c || c.width === undefined) continue;
      svg("rect", { class: "lmk-cluster", x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width, height: c.height, rx: 6 }, clusters);
    }
    for (const e of g.edges()) {
      const pts = g.edge(e).points || [];
      if (!pts.length) continue;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
      svg("path", { class: g.edge(e).sub ? "lmk-edge lmk-sub" : "lmk-edge", d, "marker-end": `url(#${uid}-arrow)` }, edges);
    }
    let drawnNodes = 0;
    for (const box of boxes.values()) {
      const p = g.node(box.id);
      box.x = p.x;
      box.y = p.y;
      const group = svg("g", { class: "lmk-node", "data-box": box.id, "data-kind": box.kind, transform: `translate(${p.x - box.width / 2},${p.y - box.height / 2})` }, layer);
      if (box.kind === "op") {
        group.setAttribute("data-name", box.node.name);
        group.setAttribute("data-op", box.node.op);
        drawnNodes += 1;
      }
      box.rect = svg("rect", { width: box.width, height: box.height, rx: box.kind === "op" || box.kind === "group" ? 4 : 13 }, group);
      if (box.kind === "ref") box.rect.setAttribute("stroke-dasharray", "3 2");
      const t1 = svg("text", { x: box.width / 2, y: box.kind === "ref" ? 11 : 14, "text-anchor": "middle", class: "lmk-op" }, group);
      t1.textContent = box.label;
      const t2 = svg("text", { x: box.width / 2, y: box.kind === "ref" ? 22 : 27, "text-anchor": "middle" }, group);
      t2.textContent = box.sub;
      box.elem = group;
    }
    el.dataset.drawnNodes = String(drawnNodes);
    el.dataset.drawnBoxes = String(boxes.size);
    const parts = [];
    if (collapsed.size) parts.push(`${collapsed.size} layers collapsed`);
    if (!showConstants && hasConstants) parts.push("constants hidden");
    count.textContent = `${drawnNodes} of ${data.nodes.length} nodes drawn` + (parts.length ? ` (${parts.join(", ")})` : "");
    constBox.checked = showConstants;
    layersButton.textContent = collapsed.size ? "Expand layers" : "Collapse layers";
    layersButton.disabled = !(data.groups || []).length;
    colour();
    markHits();
    if (!keepView) fit();
    el.dataset.drawMs = (performance.now() - started).toFixed(1);
    el.dataset.drawn = String(Number(el.dataset.drawn || 0) + 1);
  }

  // ---- overlays ---------------------------------------------------------------------------
  function groupValue(o, members) {
    const vals = members.map((n) => o.values[n.name]).filter((v) => v !== undefined);
    if (!vals.length) return undefined;
    if (o.kind === "category") {
      const c = new Map();
      for (const v of vals) c.set(v, (c.get(v) || 0) + 1);
      return [...c.entries()].sort((a, b) => b[1] - a[1])[0][0];
    }
    const nums = vals.filter((v) => typeof v === "number");
    if (!nums.length) return undefined;
    return o.aggregate === "sum" ? nums.reduce((a, b) => a + b, 0) : Math.max(...nums);
  }

  function boxValue(o, box) {
    if (!o || !box.members.length) return undefined;
    if (box.kind === "op") return o.values[box.node.name];
    return groupValue(o, box.members);
  }

  function colour() {
    const o = overlayNow();
    const marked = new Set(o ? o.marked || [] : []);
    const categories = new Map(o && o.legend && o.legend.kind === "category" ? o.legend.items : []);
    for (const box of boxes.values()) {
      let fill = box.kind === "group" ? GROUP_FILL : box.kind === "op" ? familyFill(box.node.op) : IO_FILL;
      if (box.kind === "ref") {
        box.rect.setAttribute("fill", IO_FILL);
        box.fill = IO_FILL;
        continue;
      }
      let textFill = "#222";
      if (o) {
        const v = boxValue(o, box);
        let c = null;
        if (box.kind === "op" && o.colors && HEX.test(o.colors[box.node.name] || "")) c = o.colors[box.node.name];
        else if (v !== undefined && o.kind === "category") c = categories.get(v) || null;
        else if (v !== undefined) c = scaleColor(o.legend, v);
        if (c && HEX.test(c)) {
          fill = c;
          const r = parseInt(c.slice(1, 3), 16), gr = parseInt(c.slice(3, 5), 16), b = parseInt(c.slice(5, 7), 16);
          textFill = 0.299 * r + 0.587 * gr + 0.114 * b > 140 ? "#000" : "#fff";
        } else if (box.kind === "op" || box.kind === "group") {
          fill = "#f0f0f0";
          textFill = "#999";
        }
      }
      box.rect.setAttribute("fill", fill);
      box.fill = fill;
      for (const t of box.elem.querySelectorAll("text")) t.setAttribute("fill", textFill);
      const isMarked = box.members.some((n) => marked.has(n.name));
      box.elem.classList.toggle("lmk-marked", isMarked);
    }
    drawLegend(o);
  }

  function drawLegend(o) {
    legend.replaceChildren();
    if (!o) return;
    html("b", null, o.name, legend);
    const lg = o.legend || {};
    if (lg.kind === "scale") {
      const ramp = html("div", "lmk-ramp", null, legend);
      const stops = (lg.stops || []).filter((s) => HEX.test(s));
      ramp.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
      html("div", null, `${valueText(lg.low, o.unit)} → ${valueText(lg.high, o.unit)}${lg.log ? " (log scale)" : ""}`, legend);
      if (o.aggregate === "sum") html("div", null, "a collapsed layer shows the sum of its nodes", legend);
      else html("div", null, "a collapsed layer shows its largest node", legend);
    } else if (lg.kind === "category") {
      for (const [name, color] of lg.items || []) {
        const row = html("div", null, null, legend);
        const sw = html("span", "lmk-swatch", null, row);
        if (HEX.test(color)) sw.style.background = color;
        row.appendChild(document.createTextNode(name));
      }
    }
    if ((o.marked || []).length) {
      const row = html("div", null, null, legend);
      const sw = html("span", "lmk-swatch", null, row);
      sw.style.border = "2px dashed #d62728";
      row.appendChild(document.createTextNode(`${o.mark_label || "marked"}: ${o.marked.length} nodes`));
    }
    if (o.note) html("div", "lmk-note", o.note, legend);
  }

  function fillOverlays() {
    const list = model.get("overlays") || [];
    const current = model.get("overlay") || "";
    overlaySelect.replaceChildren();
    const none = html("option", null, "none", overlaySelect);
    none.value = "";
    for (const o of list) {
      const opt = html("option", null, o.name, overlaySelect);
      opt.value = o.name;
    }
    overlaySelect.value = list.some((o) => o.name === current) ? current : "";
    overlayLabel.style.display = list.length ? "" : "none";
  }

  // ---- the node panel ---------------------------------------------------------------------
  function table(parent, heads, rows) {
    const t = html("table", null, null, parent);
    const tr = html("tr", null, null, t);
    for (const h of heads) html("th", null, h, tr);
    for (const r of rows) {
      const row = html("tr", null, null, t);
      for (const c of r) html("td", null, c, row);
    }
    return t;
  }

  function tensorRows(ids) {
    return ids.filter((t) => t >= 0).map((t) => {
      const x = data.tensors[t];
      return [x.name, x.dtype, x.shape, x.kind === "weight" ? bytesText(x.bytes) : ""];
    });
  }

  function openPanel(box) {
    panel.replaceChildren();
    panel.classList.add("lmk-open");
    const close = html("button", "lmk-close", "Close", panel);
    close.addEventListener("click", () => {
      panel.classList.remove("lmk-open");
      select(null);
    });
    const o = overlayNow();
    if (box.kind === "group") {
      const group = data.groups[box.group];
      html("h4", null, `layer ${group.label}`, panel);
      html("div", null, `${group.id} · ${group.nodes} nodes`, panel);
      table(panel, ["operator", "nodes"], Object.entries(group.ops || {}).map(([k, v]) => [k, String(v)]));
      const v = boxValue(o, box);
      if (v !== undefined) html("div", null, `${o.name}: ${valueText(v, o.unit)}`, panel);
      const expand = html("button", "lmk-expand", "Expand this layer", panel);
      expand.addEventListener("click", () => {
        collapsed.delete(box.group);
        draw(true);
      });
      return;
    }
    if (box.kind !== "op") {
      const t = data.tensors[box.tensor];
      html("h4", null, `graph ${box.kind}`, panel);
      table(panel, ["name", "dtype", "shape"], [[t.name, t.dtype, t.shape]]);
      return;
    }
    const n = box.node;
    html("h4", null, n.op, panel);
    table(panel, ["", ""], [
      ["name", n.name || "(unnamed)"],
      ["domain", n.domain],
      ...(n.graph ? [["in subgraph", `${data.graphs[n.graph].attr} of ${data.nodes[data.graphs[n.graph].parent].name || data.nodes[data.graphs[n.graph].parent].op}`]] : []),
      ...(n.group >= 0 ? [["layer", data.groups[n.group].id]] : []),
      ["weights", bytesText(n.weight_bytes) || "none"],
      ...(o && o.values[n.name] !== undefined ? [[o.name, valueText(o.values[n.name], o.unit) + (o.details && o.details[n.name] ? ` (${o.details[n.name]})` : "")]] : []),
    ]);
    if (n.attrs.length) {
      html("b", null, "Attributes", panel);
      table(panel, ["name", "value"], n.attrs);
    }
    html("b", null, "Inputs", panel);
    table(panel, ["tensor", "dtype", "shape", "stored"], tensorRows(n.inputs));
    if (n.outputs.length) {
      html("b", null, "Outputs", panel);
      table(panel, ["tensor", "dtype", "shape", ""], tensorRows(n.outputs));
    }
    if (n.doc) html("p", null, n.doc, panel);
    if (n.subgraphs.length) {
      const b = html("button", "lmk-expand", expandedSubs.has(n.id) ? "Collapse subgraphs" : "Expand subgraphs", panel);
      b.addEventListener("click", () => {
        if (expandedSubs.has(n.id)) expandedSubs.delete(n.id);
        else expandedSubs.add(n.id);
        draw(true);
        openPanel(boxes.get(`n${n.id}`));
      });
    }
  }

  function openModel() {
    panel.replaceChildren();
    panel.classList.add("lmk-open");
    const close = html("button", "lmk-close", "Close", panel);
    close.addEventListener("click", () => panel.classList.remove("lmk-open"));
    const facts = (data && data.facts) || {};
    html("h4", null, data.label || "model", panel);
    const rows = [["format", data.format], ["nodes", String(data.nodes.length)], ["edges", String(data.edges.length)]];
    if (facts.producer) rows.push(["producer", facts.producer]);
    if (facts.gguf_version) rows.push(["GGUF version", String(facts.gguf_version)]);
    for (const [k, v] of Object.entries(facts.opsets || {})) rows.push([`opset ${k}`, String(v)]);
    table(panel, ["", ""], rows);
    const meta = Object.entries(facts.metadata || {});
    if (meta.length) {
      html("b", null, "Metadata", panel);
      table(panel, ["key", "value"], meta.map(([k, v]) => [k, String(v)]));
    }
    if (facts.doc) html("p", "lmk-doc", facts.doc, panel);
  }

  function select(box) {
    if (selected && selected.elem) selected.elem.classList.remove("lmk-selected");
    selected = box;
    if (box && box.elem) box.elem.classList.add("lmk-selected");
  }

  // ---- search -----------------------------------------------------------------------------
  function markHits() {
    for (const box of boxes.values()) box.elem.classList.remove("lmk-hit");
    for (const id of hits) {
      const b = boxes.get(id);
      if (b) b.elem.classList.add("lmk-hit");
    }
  }

  function runSearch(step) {
    const q = search.value.trim().toLowerCase();
    if (!q || !data) {
      hits = [];
      markHits();
      return;
    }
    const found = data.nodes.filter((n) => (n.name || "").toLowerCase().includes(q) || n.op.toLowerCase().includes(q));
    let redraw = false;
    for (const n of found.slice(0, 50)) {
      if (n.graph === 0 && n.group >= 0 && collapsed.has(n.group)) {
        collapsed.delete(n.group);
        redraw = true;
      }
    }
    if (!showConstants && found.some((n) => n.op === "Constant")) {
      showConstants = true;
      redraw = true;
    }
    if (redraw) draw(true);
    hits = [...new Set(found.map(boxOf).filter((b) => b !== null))];
    markHits();
    count.textContent = `${found.length} match${found.length === 1 ? "" : "es"} for "${search.value.trim()}"`;
    if (hits.length) {
      hitIndex = step ? (hitIndex + 1) % hits.length : 0;
      focus(boxes.get(hits[hitIndex]));
    }
  }

  // ---- events -----------------------------------------------------------------------------
  function boxAt(target) {
    const g = target && target.closest ? target.closest("[data-box]") : null;
    return g ? boxes.get(g.getAttribute("data-box")) : null;
  }

  let drag = null;
  canvas.addEventListener("mousedown", (ev) => {
    if (boxAt(ev.target)) return;
    drag = { x: ev.clientX - view.x, y: ev.clientY - view.y, moved: false };
    canvas.classList.add("lmk-dragging");
  });
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  function onMove(ev) {
    if (!drag) return;
    view.x = ev.clientX - drag.x;
    view.y = ev.clientY - drag.y;
    applyView();
  }
  function onUp() {
    drag = null;
    canvas.classList.remove("lmk-dragging");
  }
  canvas.addEventListener(
    "wheel",
    (ev) => {
      ev.preventDefault();
      const r = canvas.getBoundingClientRect();
      const mx = ev.clientX - r.left;
      const my = ev.clientY - r.top;
      const k = Math.min(Math.max(view.k * Math.exp(-ev.deltaY * 0.0015), 0.02), 6);
      view.x = mx - ((mx - view.x) * k) / view.k;
      view.y = my - ((my - view.y) * k) / view.k;
      view.k = k;
      applyView();
    },
    { passive: false },
  );
  root.addEventListener("click", (ev) => {
    const box = boxAt(ev.target);
    if (!box) return;
    if (box.kind === "ref") {
      const source = boxes.get(box.source);
      focus(source);
      select(source);
      if (source.kind === "op") openPanel(source);
      return;
    }
    if (box.kind === "group") {
      // A collapsed layer opens in place; its nodes then answer clicks themselves.
      collapsed.delete(box.group);
      draw(true);
      return;
    }
    select(box);
    openPanel(box);
  });
  root.addEventListener("mousemove", (ev) => {
    const box = boxAt(ev.target);
    if (!box) {
      tip.style.display = "none";
      return;
    }
    const o = overlayNow();
    const lines = [];
    if (box.kind === "op") lines.push(`${box.node.op}  ${box.node.name || ""}`);
    else if (box.kind === "group") lines.push(`${data.groups[box.group].id} (${box.members.length} nodes, click to expand)`);
    else if (box.kind === "ref") lines.push(`from ${boxes.get(box.source).label} ${boxes.get(box.source).sub} (click to go there)`);
    else lines.push(`${box.kind}: ${data.tensors[box.tensor].name} ${data.tensors[box.tensor].dtype} ${data.tensors[box.tensor].shape}`);
    const v = boxValue(o, box);
    if (o) lines.push(v === undefined ? `${o.name}: no value` : `${o.name}: ${valueText(v, o.unit)}`);
    if (o && box.kind === "op" && o.details && o.details[box.node.name]) lines.push(o.details[box.node.name]);
    tip.textContent = lines.join("\n");
    const r = canvas.getBoundingClientRect();
    tip.style.display = "block";
    const x = ev.clientX - r.left;
    const left = x + 14 + tip.offsetWidth > r.width ? Math.max(0, x - 14 - tip.offsetWidth) : x + 14;
    tip.style.left = `${left}px`;
    tip.style.top = `${ev.clientY - r.top + 14}px`;
  });
  root.addEventListener("mouseleave", () => {
    tip.style.display = "none";
  });
  fitButton.addEventListener("click", fit);
  modelButton.addEventListener("click", () => data && openModel());
  layersButton.addEventListener("click", () => {
    if (collapsed.size) collapsed = new Set();
    else collapsed = new Set((data.groups || []).map((_, i) => i));
    draw(false);
  });
  constBox.addEventListener("change", () => {
    showConstants = constBox.checked;
    draw(true);
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") runSearch(true);
  });
  search.addEventListener("input", () => runSearch(false));
  overlaySelect.addEventListener("change", () => {
    model.set("overlay", overlaySelect.value);
    model.save_changes();
    colour();
  });

  function load() {
    data = model.get("graph") || null;
    collapsed = new Set();
    expandedSubs = new Set();
    hits = [];
    panel.classList.remove("lmk-open");
    if (data && data.collapse) collapsed = new Set((data.groups || []).map((_, i) => i));
    showConstants = !(data && data.collapse);
    hasConstants = !!(data && data.nodes && data.nodes.some((n) => n.op === "Constant" && !n.inputs.length));
    constLabel.style.display = hasConstants ? "" : "none";
    count.textContent = data && data.nodes ? `laying out ${data.nodes.length} nodes…` : "";
    // Let the message paint before the layout takes the main thread.
    requestAnimationFrame(() => setTimeout(() => draw(false), 0));
  }

  const onGraph = () => load();
  const onOverlays = () => {
    fillOverlays();
    if (data) colour();
  };
  const onOverlay = () => {
    overlaySelect.value = model.get("overlay") || "";
    if (data) colour();
  };
  const onHeight = () => {
    setHeight();
    fit();
  };
  model.on("change:graph", onGraph);
  model.on("change:overlays", onOverlays);
  model.on("change:overlay", onOverlay);
  model.on("change:height", onHeight);
  setHeight();
  fillOverlays();
  load();
  return () => {
    model.off("change:graph", onGraph);
    model.off("change:overlays", onOverlays);
    model.off("change:overlay", onOverlay);
    model.off("change:height", onHeight);
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
  };
}

export default { render };
