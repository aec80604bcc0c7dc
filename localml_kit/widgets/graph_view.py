"""GraphView: a model's graph drawn in the page (anywidget), with overlays from the kit's records.

The JavaScript bundle (dagre's layout, bundled with esbuild) ships inside the
package as ``static/graph_view.js``; ``make setup`` builds it from ``js/graph-view``.
All data travels in synced traits, so a saved notebook draws again from its
widget state, with no kernel and no network.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import anywidget
import onnx
import traitlets

from localml_kit import errors, models
from localml_kit import graph as _graph

__all__ = ["BUNDLE", "GraphView", "bundle_path"]

BUNDLE = Path(__file__).parent / "static" / "graph_view.js"


def bundle_path() -> Path:
    """The built JavaScript of the graph widget; a clear error when it was not built.

    Example:
        >>> bundle_path().name
        'graph_view.js'
    """
    if not BUNDLE.is_file() or BUNDLE.stat().st_size == 0:
        raise errors.OptionalDependencyError(
            f"the graph widget's JavaScript is not built ({BUNDLE} is missing): run `make setup` "
            "in the kit's source folder (it runs `python -m localml_kit.labsetup --widget`, which "
            "needs Node.js and npm), or install a localml-kit wheel, which carries it. "
            "graph.show(model) draws the graph with netron meanwhile."
        )
    return BUNDLE


class GraphView(anywidget.AnyWidget):
    """A model's graph, drawn in the notebook: pan, zoom, fit, search, click a node for its details.

    ``graph`` holds :func:`localml_kit.graph.view_data`; ``overlays`` a list of
    :class:`~localml_kit.graph.Overlay` dicts and ``overlay`` the name of the one
    shown (``""``: none). ``.result`` is the graph data. Repeated layers start
    collapsed on large graphs ("Expand layers" draws every node); If / Loop /
    Scan bodies open from the node's panel.

    Example:
        >>> from localml_kit import graph
        >>> view = GraphView("all-minilm-l6-v2")
        >>> len(view.result["nodes"])
        685
        >>> view.add_overlay(graph.Overlay("demo", {"/bert/embeddings/Add": 1.0}))
        'demo'
        >>> view.overlay
        'demo'
    """

    # anywidget reads the file when the class is made (its ESM is sent as text); a missing
    # bundle leaves the Path here, and __init__ says how to build it.
    _esm = BUNDLE
    graph = traitlets.Dict().tag(sync=True)
    overlays: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    overlay = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(600).tag(sync=True)

    def __init__(
        self,
        model: str | os.PathLike[str] | models.ModelRef | onnx.ModelProto | None = None,
        *,
        height: int = 600,
        **kwargs: Any,
    ) -> None:
        bundle_path()
        if isinstance(GraphView.__dict__["_esm"], Path):  # anywidget found no file at import
            raise errors.OptionalDependencyError(
                f"the graph widget's JavaScript ({BUNDLE}) was built after this kernel imported "
                "localml_kit.widgets.graph_view: restart the kernel to load it."
            )
        super().__init__(height=height, **kwargs)
        self.label = ""
        if model is not None:
            self.load(model)

    @property
    def result(self) -> dict[str, Any]:
        """The graph data drawn now (``graph.view_data``'s dict; empty before a model)."""
        return dict(self.graph)

    def load(
        self, model: str | os.PathLike[str] | models.ModelRef | onnx.ModelProto
    ) -> dict[str, Any]:
        """Draw ``model`` (overlays of the previous model are dropped); returns the graph data."""
        data = _graph.view_data(model)
        self.label = data.get("label") or "model"
        self.overlays = []
        self.overlay = ""
        self.graph = data
        return data

    def node_names(self) -> set[str]:
        """The names of the drawn model's nodes (to count what an overlay could not place)."""
        return {n["name"] for n in self.graph.get("nodes", []) if n.get("name")}

    def add_overlay(self, overlay: _graph.Overlay, *, show: bool = True) -> str:
        """Add (or replace, by name) an overlay; shown at once unless ``show=False``. Returns its name."""
        entry = overlay.to_dict()
        kept = [o for o in self.overlays if o.get("name") != overlay.name]
        self.overlays = [*kept, entry]
        if show:
            self.overlay = overlay.name
        return overlay.name

    def add_profile(self, result: Any, config: int | str | None = None) -> list[str]:
        """The three overlays of a ProfileResult: time per node, per operator type, and provider."""
        names = self.node_names()
        made = [
            _graph.time_overlay(result, config, nodes=names),
            _graph.operator_overlay(result, config, nodes=names),
            _graph.placement_overlay(result, config, nodes=names),
        ]
        out = [self.add_overlay(o, show=False) for o in made]
        self.overlay = out[0]
        return out

    def add_comparison(self, frame: Any, metric: str = "added") -> str:
        """The error overlay of a ``compare.per_node`` table (by default the error each node adds)."""
        return self.add_overlay(_graph.error_overlay(frame, metric))

    def _facts(self) -> str:
        data = self.graph
        if not data:
            return "no model"
        return (
            f"{self.label}: {data.get('format', '').upper()} graph, {len(data['nodes'])} nodes, "
            f"{len(data['edges'])} edges, {len(data.get('groups', []))} repeated layers"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        if data is None:
            return bundle
        data = dict(data)
        text = self._facts()
        shown = f"; overlay: {self.overlay}" if self.overlay else ""
        data["text/plain"] = f"GraphView: {text}{shown}"
        data["text/html"] = (
            f"<div class='localml-fallback'><p><b>GraphView</b>: {html.escape(text)}"
            f"{html.escape(shown)}</p></div>"
        )
        return (data, meta) if isinstance(bundle, tuple) else data
