"""GraphViewer: a model's graph (drawn in the page), its summary, its operator charts, and netron."""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from localml_kit import errors, graph, models
from localml_kit.widgets._util import Fallback, show_error

__all__ = ["GraphViewer"]

TAB_TITLES = ("Graph", "Summary", "Operators", "netron")


class GraphViewer(Fallback, widgets.VBox):
    """Pick a model (a sample name or a path) and look inside it.

    Tabs: Graph (the kit's graph widget, :class:`GraphView`, drawn in the page
    with no server: search, pan, zoom, click a node; overlays), Summary (tables),
    Operators (bar charts) and netron (its full UI, served on 127.0.0.1, one
    click away: "Open in netron", or ``netron=True`` to open it at once).
    ``.result`` holds the last ModelSummary (None after an error); ``.graph_view``
    the graph widget (None when its JavaScript is not built: netron stands in);
    ``.view`` the netron view once opened. ``close()`` stops the server.

    Example:
        >>> import contextlib, io
        >>> from localml_kit.widgets import GraphViewer
        >>> with contextlib.redirect_stdout(io.StringIO()):  # outside Jupyter, the chart prints
        ...     viewer = GraphViewer("ppocr-v4-det")
        >>> viewer.result.node_count, len(viewer.graph_view.result["nodes"]), viewer.view
        (672, 672, None)
        >>> viewer.open_netron().alive
        True
        >>> viewer.close()
    """

    _fallback_panes = ("status", "summary_pane")

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        height: int = 600,
        netron: bool = False,
    ) -> None:
        self.result: graph.ModelSummary | None = None
        self.view: graph.NetronView | None = None
        self.graph_view: Any = None
        self._label = ""
        self._path: str | None = None
        self._height = height
        self._netron = netron
        self.picker = widgets.Combobox(
            options=models.sample_choices(),
            placeholder="a sample name or a path to an .onnx or .gguf file",
            description="Model",
            ensure_option=False,
            layout=widgets.Layout(width="480px"),
        )
        self.open_button = widgets.Button(description="Open", button_style="primary", icon="eye")
        self.netron_button = widgets.Button(
            description="Open in netron", icon="external-link", disabled=True
        )
        self.status = widgets.HTML()
        self.graph_pane = widgets.Box([widgets.HTML("<p>Open a model to see its graph.</p>")])
        self.summary_pane = widgets.HTML()
        self.operators_pane = widgets.Output()
        self.netron_pane = widgets.HTML("<p>netron opens here with the button above.</p>")
        self.tabs = widgets.Tab(
            children=[self.graph_pane, self.summary_pane, self.operators_pane, self.netron_pane],
            titles=TAB_TITLES,
        )
        self.open_button.on_click(lambda _: self.load(self.picker.value))
        self.netron_button.on_click(lambda _: self._netron_clicked())
        super().__init__(
            [
                widgets.HBox([self.picker, self.open_button, self.netron_button]),
                self.status,
                self.tabs,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("localml-graph-viewer")
        if model is not None:
            self.picker.value = os.fspath(model)
        self.picker.observe(self._on_submit, names="value")
        if model is not None:
            self.load(model)

    def _on_submit(self, change: dict) -> None:
        # Choosing a listed sample opens it at once; typed paths wait for the button.
        if change["new"] in self.picker.options:
            self.load(change["new"])

    def load(self, model: str | os.PathLike[str]) -> graph.ModelSummary | None:
        """Summarise ``model`` and show it in every tab; returns the summary (None on error)."""
        text = os.fspath(model).strip()
        if not text:
            self._error("name a model: a sample from the list or a path to an .onnx or .gguf file.")
            return None
        self.status.value = f"<i>Reading {html.escape(text)} ...</i>"
        note = ""
        try:
            ref = models.resolve(text)
            summary = graph.summarize(ref.path)
            drawn = self._graph_view(ref)
        except errors.OptionalDependencyError as exc:  # the widget's bundle is not built
            drawn, note = None, str(exc)
        except errors.LocalMLError as exc:
            self._error(str(exc))
            return None
        self._close_view()
        self.result = summary
        self._label = ref.label
        self._path = str(ref.path)
        self.netron_button.disabled = False
        self.status.value = f"<b>{html.escape(ref.label)}</b>: {html.escape(self._facts(summary))}"
        self.graph_view = drawn
        if drawn is not None:
            self.graph_pane.children = [drawn]
        else:
            self.graph_pane.children = [widgets.HTML(f"<p>{html.escape(note)}</p>")]
        self.summary_pane.value = summary._repr_html_()
        self.operators_pane.clear_output()
        with self.operators_pane:
            fig = graph.plot(summary)
            display(fig)
            plt.close(fig)
        if self._netron or drawn is None:
            try:
                self.open_netron(select=drawn is None)
            except errors.LocalMLError as exc:  # netron missing: the other tabs still hold
                show_error(self.netron_pane, exc)
        return summary

    def _graph_view(self, ref: models.ModelRef) -> Any:
        from localml_kit.widgets.graph_view import GraphView

        if self.graph_view is not None:
            self.graph_view.load(ref)
            return self.graph_view
        view = GraphView(ref, height=self._height)
        return view

    def _netron_clicked(self) -> None:
        try:
            self.open_netron(select=True)
        except errors.LocalMLError as exc:
            show_error(self.status, exc)

    def open_netron(self, *, select: bool = True) -> graph.NetronView | None:
        """Serve the open model with netron (127.0.0.1) in the netron tab; returns its view."""
        if self._path is None:
            return None
        if self.view is None or not self.view.alive:
            self.view = graph.show(self._path, height=self._height)
            self.netron_pane.value = self.view.iframe_html()
        if select:
            self.tabs.selected_index = TAB_TITLES.index("netron")
        return self.view

    def add_profile(self, result: Any, config: int | str | None = None) -> list[str]:
        """Draw a ProfileResult's per-node overlays (time, time per operator type, provider)."""
        return self._require_view().add_profile(result, config)

    def add_comparison(self, frame: Any, metric: str = "added") -> str:
        """Draw a ``compare.per_node`` table as the error overlay."""
        return self._require_view().add_comparison(frame, metric)

    def _require_view(self) -> Any:
        if self.graph_view is None:
            raise errors.OptionalDependencyError(
                "no graph widget here (open a model first, and build its JavaScript with "
                "`make setup`): overlays are drawn by the graph widget."
            )
        self.tabs.selected_index = 0
        return self.graph_view

    @staticmethod
    def _facts(summary: graph.ModelSummary) -> str:
        return (
            f"{summary.format.upper()}, {summary.parameter_count:,} parameters, "
            f"{summary.parameter_bytes / 1e6:,.1f} MB of weights"
        )

    def _fallback_text(self) -> str:
        if self.result is None:
            return "no model open"
        return f"{self._label}: {self._facts(self.result)}"

    def _error(self, message: str) -> None:
        self.result = None
        self._path = None
        self.netron_button.disabled = True
        self._close_view()
        if self.graph_view is not None:
            self.graph_view.close()  # its synced graph leaves the kernel's widget registry
            self.graph_view = None
        self.graph_pane.children = [widgets.HTML("<p>No model open.</p>")]
        self.summary_pane.value = ""
        self.operators_pane.clear_output()
        show_error(self.status, message)

    def _close_view(self) -> None:
        if self.view is not None:
            self.view.close()
            self.view = None
        self.netron_pane.value = "<p>netron opens here with the button above.</p>"

    def close(self) -> None:
        """Stop this viewer's netron server and close the widget."""
        self._close_view()
        super().close()
