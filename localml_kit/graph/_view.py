"""The graph a browser draws: a model's nodes, edges, tensors and layer groups, as plain data.

``view_data`` reads an ONNX file's skeleton (no weights in memory) or a GGUF
header and returns a JSON-ready dict that the graph widget draws. Every
string in it is the model's own text, unescaped: the page sets it as text,
never as HTML.

ONNX: one entry in ``nodes`` per node of the main graph and of every
subgraph (If / Loop / Scan bodies, which name their container in
``graphs``); one entry in ``edges`` per (producer, consumer, tensor) inside
one graph; ``tensors`` holds every value's dtype, shape and stored bytes.
GGUF has no graph: each tensor is a node (its quantization type as the
operator), in file order, layer after layer.

Repeated layers (name scopes such as ``encoder/layer.3`` or ``blk.7``) are
listed in ``groups``; above ``COLLAPSE_ABOVE`` nodes the page starts with
them collapsed, one box per layer.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import onnx

from localml_kit.graph import _gguf, _onnx, _wire
from localml_kit.graph._types import shape_text

# Above this many nodes the page starts with repeated layers collapsed (dagre lays out
# ~700 nodes in 0.5-1.5 s on a 2-core machine; collapsed, MiniLM is about 80 boxes).
COLLAPSE_ABOVE = 300
_LAYER = re.compile(r"^(.*?)[._-]?(\d+)$")
_GGUF_LAYER = re.compile(r"^([^./]+\.\d+)\.")
_ATTR_TEXT = 200  # characters of an attribute's value shown in the node panel


def _attr_text(attr: onnx.AttributeProto) -> str:
    kind = attr.type
    A = onnx.AttributeProto
    if kind == A.GRAPH:
        return f"graph {attr.g.name or ''} ({len(attr.g.node)} nodes)".replace("  ", " ")
    if kind == A.GRAPHS:
        return f"{len(attr.graphs)} graphs"
    if kind == A.TENSOR:
        t = attr.t
        return f"tensor {_onnx.dtype_name(t.data_type)} {list(t.dims)}"
    if kind == A.STRING:
        return attr.s.decode("utf-8", errors="replace")[:_ATTR_TEXT]
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, list | tuple):
        value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    text = str(value)
    return text if len(text) <= _ATTR_TEXT else text[: _ATTR_TEXT - 3] + "..."


def scope_of(name: str) -> str:
    """A node's name scope: its name without the last ``/`` part (``""`` for a flat name).

    Example:
        >>> scope_of("/bert/encoder/layer.0/attention/self/MatMul")
        'bert/encoder/layer.0/attention/self'
        >>> scope_of("p2o.Conv.3")
        ''
    """
    parts = [p for p in name.split("/") if p]
    return "/".join(parts[:-1]) if len(parts) > 1 else ""


def layer_groups(scopes: list[str]) -> dict[str, str]:
    """The repeated-layer prefix of each scope: ``{scope: "bert/encoder/layer.0"}``.

    A prefix counts as a layer when its last part ends in a number (``layer.3``,
    ``layers.12``, ``blk.7``) and at least one sibling has the same stem; the
    outermost such prefix wins.

    Example:
        >>> layer_groups(["m/layers.0/attn", "m/layers.1/mlp", "m/norm"])
        {'m/layers.0/attn': 'm/layers.0', 'm/layers.1/mlp': 'm/layers.1'}
    """
    stems: dict[tuple[str, str], set[str]] = defaultdict(set)
    for scope in set(scopes):
        parts = scope.split("/") if scope else []
        for depth in range(1, len(parts) + 1):
            match = _LAYER.match(parts[depth - 1])
            if match and match.group(1):
                stems[("/".join(parts[: depth - 1]), match.group(1))].add(match.group(2))
    out: dict[str, str] = {}
    for scope in scopes:
        parts = scope.split("/") if scope else []
        for depth in range(1, len(parts) + 1):
            match = _LAYER.match(parts[depth - 1])
            key = ("/".join(parts[: depth - 1]), match.group(1)) if match else None
            if key and match and match.group(1) and len(stems[key]) >= 2:
                out[scope] = "/".join(parts[:depth])
                break
    return out


def _groups(names: list[str], ops: list[str]) -> tuple[list[dict[str, Any]], list[int]]:
    """Layer groups and each node's group index (-1: none)."""
    scopes = [scope_of(n) for n in names]
    layer_of = layer_groups(scopes)
    index: dict[str, int] = {}
    groups: list[dict[str, Any]] = []
    member: list[int] = []
    for scope, op in zip(scopes, ops, strict=True):
        prefix = layer_of.get(scope)
        if prefix is None:
            member.append(-1)
            continue
        if prefix not in index:
            index[prefix] = len(groups)
            groups.append({"id": prefix, "label": prefix.rsplit("/", 1)[-1], "nodes": 0, "ops": {}})
        group = groups[index[prefix]]
        group["nodes"] += 1
        group["ops"][op] = group["ops"].get(op, 0) + 1
        member.append(index[prefix])
    for group in groups:
        shown = {k: v for k, v in group["ops"].items() if k != "Constant"} or group["ops"]
        group["ops"] = dict(Counter(shown).most_common(6))
    return groups, member


def _adopt_sources(
    nodes: list[dict[str, Any]], edges: list[list[Any]], groups: list[dict[str, Any]]
) -> None:
    """A node with no inputs (a Constant, say) outside every layer, feeding only one layer,
    joins that layer: collapsed, the layer box holds it instead of a stray box beside it."""
    if not groups:
        return
    consumers: dict[int, set[int]] = defaultdict(set)
    for src, dst, _ in edges:
        consumers[src].add(nodes[dst]["group"] if dst < len(nodes) else -1)
    for node in nodes:
        if node["group"] >= 0 or any(i >= 0 for i in node["inputs"]):
            continue
        targets = consumers.get(node["id"], set())
        if len(targets) == 1 and (g := next(iter(targets))) >= 0:
            node["group"] = g
            groups[g]["nodes"] += 1


class _Tensors:
    """Tensor name -> index into the payload's ``tensors`` list."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}

    def add(self, name: str, **info: Any) -> int:
        if name in self.index:
            row = self.rows[self.index[name]]
            for key, value in info.items():
                if value not in (None, "", "?") and row.get(key) in (None, "", "?", "value"):
                    row[key] = value
            return self.index[name]
        self.index[name] = len(self.rows)
        self.rows.append({"name": name, "dtype": "", "shape": "?", "bytes": None, "kind": "value"})
        return self.add(name, **info)


def _value_infos(model: onnx.ModelProto) -> dict[str, tuple[str, str]]:
    """dtype and shape text of every value shape inference can tell (none if it fails)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # a custom op or a damaged graph: shapes stay unknown, the graph still draws
        inferred = model
    found: dict[str, tuple[str, str]] = {}

    def visit(graph: onnx.GraphProto) -> None:
        for value in [*graph.value_info, *graph.input, *graph.output]:
            spec = _onnx._spec(value)
            found.setdefault(value.name, (spec.dtype, shape_text(spec.shape, unknown="?")))
        for node in graph.node:
            for sub in _onnx._subgraphs(node):
                visit(sub)

    visit(inferred.graph)
    return found


def onnx_view(model: onnx.ModelProto, *, label: str = "") -> dict[str, Any]:
    """The drawable graph of an ONNX model (a skeleton from ``_wire.load_skeleton`` will do)."""
    infos = _value_infos(model)
    tensors = _Tensors()
    weights: dict[str, Any] = {}  # every graph's initializers, filled as each graph is visited
    nodes: list[dict[str, Any]] = []
    edges: list[list[Any]] = []
    graphs: list[dict[str, Any]] = []

    def tensor(name: str) -> int:
        dtype, shape = infos.get(name, ("", "?"))
        if name in weights:
            w = weights[name]
            return tensors.add(
                name,
                dtype=w.dtype,
                shape=shape_text(w.shape, unknown="?"),
                bytes=w.nbytes,
                kind="weight",
            )
        return tensors.add(name, dtype=dtype, shape=shape)

    def visit(graph: onnx.GraphProto, parent: int | None, attr: str) -> int:
        gid = len(graphs)
        graphs.append(
            {
                "id": gid,
                "name": graph.name,
                "parent": parent,
                "attr": attr,
                "inputs": [],
                "outputs": [],
            }
        )
        local_weights = {
            t.name: _onnx._tensor_info(t, label or "the model") for t in graph.initializer
        }
        weights.update(local_weights)
        for v in graph.input:
            index = tensor(v.name)
            if v.name not in local_weights:
                tensors.rows[index]["kind"] = "input"
                graphs[gid]["inputs"].append(index)
        producer: dict[str, int] = {}
        first = len(nodes)
        for node in graph.node:
            index = len(nodes)
            attrs = [[a.name, _attr_text(a)] for a in node.attribute]
            ins = [tensor(n) if n else -1 for n in node.input]
            outs = [tensor(n) if n else -1 for n in node.output]
            stored = sum(weights[n].nbytes for n in dict.fromkeys(node.input) if n in weights)
            if node.op_type == "Constant" and _onnx._is_tensor_constant(node):
                stored += _onnx._constant_info(node, label or "the model").nbytes
            nodes.append(
                {
                    "id": index,
                    "name": node.name,
                    "op": node.op_type,
                    "domain": node.domain or "ai.onnx",
                    "graph": gid,
                    "inputs": ins,
                    "outputs": outs,
                    "attrs": attrs,
                    "doc": node.doc_string[:500],
                    "weight_bytes": stored,
                    "subgraphs": [],
                    "group": -1,
                }
            )
            for out in node.output:
                if out:
                    producer[out] = index
        for index in range(first, first + len(graph.node)):
            node_proto = graph.node[index - first]
            seen = set()
            for name in node_proto.input:
                src = producer.get(name)
                if src is not None and (src, name) not in seen:
                    seen.add((src, name))
                    edges.append([src, index, tensors.index[name]])
        graphs[gid]["outputs"] = [tensors.add(v.name, kind="output") for v in graph.output]
        for index in range(first, first + len(graph.node)):
            node_proto = graph.node[index - first]
            for a in node_proto.attribute:
                subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
                for sub in subs:
                    nodes[index]["subgraphs"].append(visit(sub, index, a.name))
        return gid

    visit(model.graph, None, "")
    main = [n for n in nodes if n["graph"] == 0]
    groups, member = _groups([n["name"] for n in main], [n["op"] for n in main])
    for node, group in zip(main, member, strict=True):
        node["group"] = group
    _adopt_sources(main, edges, groups)
    return {
        "version": 1,
        "format": "onnx",
        "label": label,
        "nodes": nodes,
        "edges": edges,
        "tensors": tensors.rows,
        "graphs": graphs,
        "groups": groups,
        "collapse": len(nodes) > COLLAPSE_ABOVE and bool(groups),
        "facts": {
            "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p),
            "opsets": {(i.domain or "ai.onnx"): int(i.version) for i in model.opset_import},
            "doc": (model.doc_string or model.graph.doc_string)[:1000],
            "metadata": {p.key: p.value[:300] for p in model.metadata_props},
        },
    }


def _layer_order(info: Any) -> tuple[int, int, str]:
    """Embeddings first, then the blocks by number (files list blk.10 before blk.2), then the head."""
    match = re.match(r"^[^.]+\.(\d+)\.", info.name)
    if match:
        return (1, int(match.group(1)), "")
    return (0 if "embd" in info.name or "embed" in info.name else 2, 0, "")


def gguf_view(path: Path, *, label: str = "") -> dict[str, Any]:
    """The drawable layers of a GGUF file: each tensor a node (its type as the operator), layer by
    layer (the file's order within a layer), in a chain."""
    fields = _gguf.summary_fields(path)
    tensors = _Tensors()
    nodes: list[dict[str, Any]] = []
    edges: list[list[Any]] = []
    for index, info in enumerate(sorted(fields["tensors"], key=_layer_order)):
        t = tensors.add(
            info.name,
            dtype=info.dtype,
            shape=shape_text(info.shape, unknown="?"),
            bytes=info.nbytes,
            kind="weight",
        )
        nodes.append(
            {
                "id": index,
                "name": info.name,
                "op": info.dtype,
                "domain": "gguf",
                "graph": 0,
                "inputs": [t],
                "outputs": [],
                "attrs": [["elements", f"{info.count:,}"]],
                "doc": "",
                "weight_bytes": info.nbytes,
                "subgraphs": [],
                "group": -1,
            }
        )
        if index:
            edges.append([index - 1, index, -1])
    # blk.N.attn_q.weight -> scope blk.N
    scopes = [_GGUF_LAYER.sub(r"\1/", n["name"]) for n in nodes]
    groups, member = _groups(scopes, [n["op"] for n in nodes])
    for node, group in zip(nodes, member, strict=True):
        node["group"] = group
    keep = (
        "architecture",
        "name",
        "context_length",
        "embedding_length",
        "block_count",
        "head_count",
        "head_count_kv",
        "vocab_size",
    )
    return {
        "version": 1,
        "format": "gguf",
        "label": label,
        "nodes": nodes,
        "edges": edges,
        "tensors": tensors.rows,
        "graphs": [{"id": 0, "name": "", "parent": None, "attr": "", "inputs": [], "outputs": []}],
        "groups": groups,
        "collapse": bool(groups),  # a chain of tensors reads best as its layers first
        "facts": {
            "gguf_version": fields["gguf_version"],
            "metadata": {k: str(fields[k]) for k in keep if fields.get(k) is not None},
        },
    }


def file_view(path: Path, *, label: str = "", gguf: bool = False) -> dict[str, Any]:
    """The drawable graph of an ONNX or GGUF file."""
    if gguf:
        return gguf_view(path, label=label)
    skeleton, _ = _wire.load_skeleton(path)
    _onnx._check_complete(skeleton, str(path))
    return onnx_view(skeleton, label=label)
