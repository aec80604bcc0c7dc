"""Look inside a model: a summary of an ONNX or GGUF file, its drawable graph, overlays, netron.

``summarize`` reads the structure of a model without loading its weights:
inputs and outputs with their dynamic dims, opsets, the operator mix, where the
parameters are and what type they are stored in. ``view_data`` returns the
graph as plain data (nodes, edges, tensors with shapes, layer groups) for the
kit's graph widget (``localml_kit.widgets.GraphView``), and the overlay
builders (``time_overlay``, ``operator_overlay``, ``placement_overlay``,
``error_overlay``) turn a profile or a per-node comparison into values and
colours on those nodes, exportable to Model Explorer and netron. ``show``
serves the graph with netron on 127.0.0.1 and returns a view for the notebook.

Example:
    >>> from localml_kit import graph
    >>> s = graph.summarize("all-minilm-l6-v2")
    >>> s.dynamic_dims
    ['batch', 'sequence']
    >>> view = graph.show("all-minilm-l6-v2")
    >>> view.alive
    True
    >>> view.close()
"""

from __future__ import annotations

import atexit
import html
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import onnx
import pandas as pd

from localml_kit import _plot, errors, models
from localml_kit.graph import _gguf, _netron, _onnx, _view, _wire
from localml_kit.graph._overlay import (
    Overlay,
    error_overlay,
    operator_overlay,
    placement_overlay,
    time_overlay,
)
from localml_kit.graph._types import ExternalFile, ModelSummary, TensorInfo, TensorSpec

__all__ = [
    "ExternalFile",
    "ModelSummary",
    "NetronView",
    "Overlay",
    "TensorInfo",
    "TensorSpec",
    "error_overlay",
    "open_views",
    "operator_overlay",
    "overview",
    "placement_overlay",
    "plot",
    "show",
    "stop_all",
    "summarize",
    "time_overlay",
    "view_data",
]


def _check_file(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise errors.ModelFormatError(
            f"{path} is empty (0 bytes): the download or export did not finish. Fetch it again."
        )


def _is_gguf(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4)
    return head == _gguf.MAGIC or path.suffix.lower() == ".gguf"


def summarize(model: str | os.PathLike[str] | models.ModelRef | onnx.ModelProto) -> ModelSummary:
    """Summarise an ONNX or GGUF model (a path, a folder with one model, a sample name, or a proto).

    Weights are never read: ONNX files are parsed without their tensor payloads
    and sizes come from the dims; GGUF files are memory-mapped. Raises
    ModelFormatError for a file that is not a complete model, and
    ModelNotFoundError for a path that does not exist.

    Example:
        >>> summarize("smollm2-135m-instruct:gguf").architecture
        'llama'
        >>> summarize("digits-mlp").format
        'onnx'
    """
    if isinstance(model, onnx.ModelProto):
        fields = _onnx.summary_fields(model, None, skipped_bytes=0)
        size = model.ByteSize()
        return ModelSummary(path=None, format="onnx", file_bytes=size, total_bytes=size, **fields)

    ref = models.resolve(model)
    summary = _summarize_file(ref.path)
    summary.label = ref.label
    return summary


def _summarize_file(path: Path) -> ModelSummary:
    _check_file(path)
    if _is_gguf(path):
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic != _gguf.MAGIC:
            raise errors.ModelFormatError(
                f"{path} is named .gguf but does not start with the GGUF magic bytes "
                f"(found {magic!r}); it is not a GGUF file or it is damaged. Download it again."
            )
        fields = _gguf.summary_fields(path)
        size = path.stat().st_size
        return ModelSummary(
            path=str(path), format="gguf", file_bytes=size, total_bytes=size, **fields
        )

    skeleton, skipped = _wire.load_skeleton(path)
    fields = _onnx.summary_fields(skeleton, path, skipped_bytes=skipped)
    missing = [e.name for e in fields["external_data"] if not e.present]
    if missing:
        raise errors.ModelFormatError(
            f"{path} keeps its weights in external data that is missing: "
            f"{', '.join(missing)} (expected next to the model). Copy the data file(s) "
            "into the model's folder."
        )
    short = [e.name for e in fields["external_data"] if e.size_bytes < e.expected_bytes]
    if short:
        raise errors.ModelFormatError(
            f"{path}: external data file(s) {', '.join(short)} are shorter than the model "
            "expects (truncated copy). Copy or download them again."
        )
    size = path.stat().st_size
    total = size + sum(e.size_bytes for e in fields["external_data"])
    return ModelSummary(path=str(path), format="onnx", file_bytes=size, total_bytes=total, **fields)


def view_data(
    model: str | os.PathLike[str] | models.ModelRef | onnx.ModelProto,
) -> dict[str, Any]:
    """The model's graph as plain, JSON-ready data: what the graph widget draws.

    ONNX: ``nodes`` (one per node, subgraph bodies included, each with its
    operator, attributes as text, input and output tensor indexes, stored
    weight bytes and layer group), ``edges`` (``[producer, consumer, tensor]``
    within one graph), ``tensors`` (name, dtype, shape, bytes, kind),
    ``graphs`` (the main graph, then each If / Loop / Scan body with its
    container node), ``groups`` (repeated layers by name scope) and
    ``collapse`` (whether the page starts with them collapsed). GGUF: each
    tensor is a node with its quantization type as the operator, layer after
    layer. Strings are the model's own text, unescaped.

    Example:
        >>> data = view_data("all-minilm-l6-v2")
        >>> len(data["nodes"]) == summarize("all-minilm-l6-v2").node_count
        True
        >>> data["groups"][0]["id"], data["collapse"]
        ('bert/encoder/layer.0', True)
        >>> view_data("smollm2-135m-instruct:gguf")["nodes"][0]["op"]  # token_embd.weight
        'Q8_0'
    """
    if isinstance(model, onnx.ModelProto):
        _onnx._check_complete(model, "the model")
        return _view.onnx_view(model)
    ref = models.resolve(model)
    _check_file(ref.path)
    data = _view.file_view(ref.path, label=ref.label, gguf=_is_gguf(ref.path))
    return data


def overview(models_: Iterable[str | os.PathLike[str] | ModelSummary]) -> pd.DataFrame:
    """One row per model, to compare several side by side.

    Columns: model, format, parameters, weights_mb, main_type (the type holding
    most bytes), nodes, operator_types, top_operator, dynamic_dims, load_mb.

    Example:
        >>> table = overview(["all-minilm-l6-v2", "ppocr-v4-det"])
        >>> table[["model", "format", "parameters", "main_type"]]
                      model format  parameters main_type
        0  all-minilm-l6-v2   onnx    22566114   float32
        1      ppocr-v4-det   onnx     1171841   float32
    """
    rows = []
    for item in models_:
        s = item if isinstance(item, ModelSummary) else summarize(item)
        label = str(item) if not isinstance(item, ModelSummary) else Path(s.path or "model").name
        dtypes = s.dtypes()
        top = next((op for op in s.operators if not op.endswith("::Constant")), "")
        rows.append(
            {
                "model": label,
                "format": s.format,
                "parameters": s.parameter_count,
                "weights_mb": round(s.parameter_bytes / 1e6, 1),
                "main_type": dtypes["dtype"].iloc[0] if len(dtypes) else "",
                "nodes": s.node_count,
                "operator_types": len(s.operators),
                "top_operator": top.removeprefix("ai.onnx::"),
                "dynamic_dims": ", ".join(s.dynamic_dims),
                "load_mb": round(s.load_memory_bytes / 1e6, 1),
            }
        )
    return pd.DataFrame(rows)


# ---- netron -------------------------------------------------------------------------------------


class NetronView:
    """A model's graph in netron, served on 127.0.0.1; displays as a frame in the notebook.

    ``close()`` stops its server. Every open view is also stopped by
    ``stop_all()`` and when the Python process exits.

    Example:
        >>> view = show("digits-mlp")
        >>> view.url
        'http://127.0.0.1:.../'
        >>> view.close()
        >>> view
        NetronView('model.onnx', http://127.0.0.1:.../, closed)
    """

    def __init__(self, model: Path, height: int = 600) -> None:
        self.model = model
        self.height = height
        self._server = _netron.NetronServer(model)
        self.url = self._server.url
        self.port = self._server.port

    @property
    def alive(self) -> bool:
        """Whether the server still answers."""
        return self._server.alive

    def close(self) -> None:
        """Stop serving this model (the frame goes blank)."""
        self._server.stop()
        _forget(self)

    def __enter__(self) -> NetronView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "serving" if self.alive else "closed"
        return f"NetronView({self.model.name!r}, {self.url}, {state})"

    def iframe_html(self) -> str:
        """The frame that shows the graph (escaped)."""
        title = html.escape(f"netron: {self.model.name}", quote=True)
        return (
            f'<iframe src="{html.escape(self.url, quote=True)}" title="{title}" '
            f'class="localml-netron" width="100%" height="{int(self.height)}" '
            'style="border:1px solid #ccc"></iframe>'
        )

    def _repr_html_(self) -> str:
        if not self.alive:
            return f"<p>netron view of {html.escape(self.model.name)} is closed.</p>"
        return self.iframe_html()


_LOCK = threading.Lock()
# The live viewers of this process, so stop_all() and interpreter exit can close them.
_VIEWS: list[NetronView] = []


def _forget(view: NetronView) -> None:
    with _LOCK:
        if view in _VIEWS:
            _VIEWS.remove(view)


def show(model: str | os.PathLike[str] | models.ModelRef, *, height: int = 600) -> NetronView:
    """Serve ``model``'s graph with netron on a free port of 127.0.0.1 and return its view.

    Works with no network: the page is served with the kit's settings (no
    consent dialog, no update nag, no outside requests). Several models can be
    open at once; each has its own server.

    Example:
        >>> view = show("ppocr-v4-det")
        >>> view  # in a notebook: the graph
        NetronView('model.onnx', http://127.0.0.1:.../, serving)
        >>> view.close()
    """
    path = models.resolve(model).path
    _check_file(path)
    view = NetronView(path, height=height)
    with _LOCK:
        _VIEWS.append(view)
    return view


def open_views() -> list[NetronView]:
    """The netron views of this process that are still serving."""
    with _LOCK:
        return [v for v in _VIEWS if v.alive]


def stop_all() -> int:
    """Stop every netron server this process started; returns how many were running."""
    with _LOCK:
        views = list(_VIEWS)
    for view in views:
        view.close()
    return len(views)


atexit.register(stop_all)


# ---- plots --------------------------------------------------------------------------------------


def plot(summary: ModelSummary, *, top: int = 15, title: str | None = None) -> Any:
    """Bar charts of the operator mix (top ``top`` types) and of weight bytes by type.

    Returns the matplotlib Figure (GGUF files have no graph: only the weight chart).
    ``title`` names the model in the chart titles (default: the summary's label, a
    sample's name or the file name).

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = plot(summarize("ppocr-v4-det"))
        >>> [ax.get_title() for ax in fig.axes]
        ['ppocr-v4-det: operator mix (top 14 of 14)', 'ppocr-v4-det: weights by type']
        >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    ops = summary.operators_frame().head(top)
    dtypes = summary.dtypes()
    panels = (1 if ops.empty else 0) + (1 if dtypes.empty else 0)
    count = 2 - panels
    if count == 0:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "no operators or weights to plot", ha="center", va="center")
        ax.set_axis_off()
        return fig
    fig, axes = plt.subplots(1, count, figsize=(6 * count, max(3.0, 0.28 * max(len(ops), 4))))
    axes = [axes] if count == 1 else list(axes)
    name = _plot.label(
        title or summary.label or (Path(summary.path).name if summary.path else "model")
    )
    if not ops.empty:
        ax = axes.pop(0)
        labels = [op.removeprefix("ai.onnx::") for op in ops["op"]][::-1]
        ax.barh(labels, ops["count"][::-1], color="#4c72b0")
        ax.set_xlabel("nodes")
        ax.set_title(f"{name}: operator mix (top {len(ops)} of {len(summary.operators)})")
    if not dtypes.empty:
        ax = axes.pop(0)
        ax.barh(dtypes["dtype"][::-1], dtypes["bytes"][::-1] / 1e6, color="#dd8452")
        ax.set_xlabel("MB")
        ax.set_title(f"{name}: weights by type")
    fig.tight_layout()
    return fig
