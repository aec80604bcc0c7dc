"""GraphViewer: a model's graph (netron), its summary tables and its operator charts, in tabs."""

from __future__ import annotations

import html
import os

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from localml_kit import errors, graph, models
from localml_kit.widgets._util import Fallback, show_error

__all__ = ["GraphViewer"]

TAB_TITLES = ("Graph", "Summary", "Operators")


class GraphViewer(Fallback, widgets.VBox):
    """Pick a model (a sample name or a path) and look inside it.

    Tabs: Graph (netron, served on 127.0.0.1), Summary (tables) and Operators
    (bar charts). ``.result`` holds the last ModelSummary (None after an
    error); ``.view`` the running netron view. ``close()`` stops the server.

    Example:
        >>> import contextlib, io
        >>> from localml_kit.widgets import GraphViewer
        >>> with contextlib.redirect_stdout(io.StringIO()):  # outside Jupyter, the chart prints
        ...     viewer = GraphViewer("ppocr-v4-det")
        >>> viewer.result.node_count, viewer.view.alive
        (672, True)
        >>> viewer.close()
    """

    _fallback_panes = ("status", "summary_pane")

    def __init__(
        self, model: str | os.PathLike[str] | None = None, *, height: int = 600, netron: bool = True
    ) -> None:
        self.result: graph.ModelSummary | None = None
        self.view: graph.NetronView | None = None
        self._label = ""
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
        self.status = widgets.HTML()
        self.graph_pane = widgets.HTML("<p>Open a model to see its graph.</p>")
        self.summary_pane = widgets.HTML()
        self.operators_pane = widgets.Output()
        self.tabs = widgets.Tab(
            children=[self.graph_pane, self.summary_pane, self.operators_pane], titles=TAB_TITLES
        )
        self.open_button.on_click(lambda _: self.load(self.picker.value))
        super().__init__(
            [widgets.HBox([self.picker, self.open_button]), self.status, self.tabs],
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
        try:
            ref = models.resolve(text)
            summary = graph.summarize(ref.path)
            view = graph.show(ref.path, height=self._height) if self._netron else None
        except errors.LocalMLError as exc:
            self._error(str(exc))
            return None
        self._close_view()
        self.view = view
        self.result = summary
        self._label = ref.label
        self.status.value = f"<b>{html.escape(ref.label)}</b>: {html.escape(self._facts(summary))}"
        self.graph_pane.value = (
            view.iframe_html() if view else "<p>netron is off for this viewer.</p>"
        )
        self.summary_pane.value = summary._repr_html_()
        self.operators_pane.clear_output()
        with self.operators_pane:
            fig = graph.plot(summary)
            display(fig)
            plt.close(fig)
        return summary

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
        self._close_view()
        self.graph_pane.value = "<p>No model open.</p>"
        self.summary_pane.value = ""
        self.operators_pane.clear_output()
        show_error(self.status, message)

    def _close_view(self) -> None:
        if self.view is not None:
            self.view.close()
            self.view = None

    def close(self) -> None:
        """Stop this viewer's netron server and close the widget."""
        self._close_view()
        super().close()
