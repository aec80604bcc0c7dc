"""SearchBox: a query box over a SemanticIndex, with the ranked results and the time per query."""

from __future__ import annotations

import html

import ipywidgets as widgets
import pandas as pd

from localml_kit import apps, errors
from localml_kit.widgets._util import Fallback, show_error

__all__ = ["SearchBox"]


class SearchBox(Fallback, widgets.VBox):
    """Type a query, press Enter (or Search): the ``k`` nearest texts of the index, ranked.

    ``index`` is a :class:`~localml_kit.apps.SemanticIndex`. ``.result`` holds the
    last results (a DataFrame: rank, score, text, source; None after an error)
    and ``.ms`` the time the query took; ``search("...")`` runs a query from code.

    Example:
        >>> from localml_kit.widgets import SearchBox
        >>> docs = apps.python_docs()
        >>> docs = docs[docs["topic"].isin(["dict", "typesmapping", "lambda"])]
        >>> index = apps.SemanticIndex.build(docs["text"], sources=docs["topic"])  # the MiniLM sample
        >>> box = SearchBox(index, k=5)
        >>> box.search("remove a key from a dictionary")["source"].iloc[0]
        'typesmapping'
        >>> len(box.result), box.ms > 0, "results for" in box.status.value
        (5, True, True)
    """

    _fallback_panes = ("status", "results")

    def __init__(self, index: apps.SemanticIndex, *, k: int = 5, query: str = "") -> None:
        self.index = index
        self.result: pd.DataFrame | None = None
        self.ms: float | None = None
        self.query = widgets.Text(
            value="",
            placeholder="a question, in your own words; Enter searches",
            description="Query",
            continuous_update=False,
            layout=widgets.Layout(width="520px"),
        )
        self.k = widgets.BoundedIntText(
            value=k, min=1, max=50, description="Results", layout=widgets.Layout(width="160px")
        )
        self.search_button = widgets.Button(
            description="Search", button_style="primary", icon="search"
        )
        self.status = widgets.HTML(
            f"<i>{len(index)} texts, embedded with {html.escape(index.model.label)}.</i>"
        )
        self.results = widgets.HTML()
        self.search_button.on_click(lambda _: self.search())
        self.query.observe(lambda _: self.search(), names="value")
        super().__init__(
            [widgets.HBox([self.query, self.k, self.search_button]), self.status, self.results],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("localml-search-box")
        if query:
            self.query.value = query  # the observer runs the search

    def search(self, query: str | None = None) -> pd.DataFrame | None:
        """Run ``query`` (else the one in the box); returns the results (None on error)."""
        if query is not None and query != self.query.value:
            self.query.value = query  # the observer runs the search
            return self.result
        try:
            frame = self.index.search(self.query.value, int(self.k.value))
        except errors.LocalMLError as exc:
            self.result = None
            self.ms = None
            self.results.value = ""
            show_error(self.status, exc)
            return None
        self.result = frame
        self.ms = float(frame.attrs["ms"])
        self.status.value = (
            f"{len(frame)} results for <b>{html.escape(self.query.value)}</b> in "
            f"{self.ms:.1f} ms ({len(self.index)} texts, {html.escape(self.index.model.label)})"
        )
        columns = ["rank", "score", "source", "text"]
        if not frame["source"].astype(bool).any():
            columns.remove("source")
        self.results.value = "<style>.localml-search-box th {text-align: left}</style>" + frame[
            columns
        ].to_html(index=False, escape=True, border=0)
        return frame

    def _fallback_text(self) -> str:
        if self.result is None or not len(self.result):
            return f"{len(self.index)} texts; no search yet"
        top = self.result.iloc[0]
        return f"{self.query.value!r}: {len(self.result)} results in {self.ms:.1f} ms; first: {top['text'][:80]}"
