"""ZooBrowser: search the model sources, filter and sort the cards, read one, fetch it, open it."""

from __future__ import annotations

import dataclasses
import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import ipywidgets as widgets
import pandas as pd

from localml_kit import errors, hardware
from localml_kit.models import MODEL_SUFFIXES
from localml_kit.widgets._row_table import RowTable
from localml_kit.widgets._util import Fallback, show_error
from localml_kit.zoo._card import ModelCard, _human
from localml_kit.zoo._table import cards_frame, filter_cards

if TYPE_CHECKING:
    from localml_kit.zoo import SearchResult

__all__ = ["ZooBrowser", "fetch_patterns", "model_files"]

ANY = "any"
# Max-size steps for the slider, in bytes (the last one: no limit).
SIZE_STEPS: dict[str, int | None] = {
    "10 MB": 10**7,
    "30 MB": 3 * 10**7,
    "100 MB": 10**8,
    "300 MB": 3 * 10**8,
    "1 GB": 10**9,
    "3 GB": 3 * 10**9,
    "10 GB": 10**10,
    "30 GB": 3 * 10**10,
    ANY: None,
}
SORTS = {
    "downloads": "downloads",
    "likes": "likes",
    "size": "size_bytes",
    "memory": "memory_bytes",
    "parameters": "parameters",
    "fit": "fit",
    "GPU fit": "gpu_fit",
    "name": "id",
    "source": "source",
}
CONTEXT_LENGTHS = (512, 2048, 4096, 8192, 32768)
# Table columns: (header, frame column, formatter).
_COUNT = "{:,}".format
_TABLE = (
    ("model", "id", str),
    ("source", "source", str),
    ("task", "task", str),
    ("format", "format", str),
    ("size", "size_bytes", _human),
    ("params", "parameters", _COUNT),
    ("quant", "quantization", str),
    ("licence", "license", str),
    ("downloads", "downloads", _COUNT),
    ("likes", "likes", _COUNT),
    ("memory", "memory_bytes", _human),
    ("fit", "fit", str),
    ("GPU fit", "gpu_fit", str),  # only drawn on a machine with a GPU
)
_FIT_COLOURS = {"fits": "#1a7f37", "tight": "#9a6700", "does not fit": "#cf222e"}
_HUB_SOURCES = ("hub", "onnx-zoo")


def model_files(card: ModelCard, limit: int = 50) -> list[Path]:
    """The ``.onnx`` and ``.gguf`` files of a card that are on this machine (none if not local).

    Example:
        >>> model_files(ModelCard(id="m", source="hub"))
        []
    """
    root = card.local_path
    if root is None or not root.exists():
        return []
    if root.is_file():
        return [root] if root.suffix.lower() in MODEL_SUFFIXES else []
    named = [root / f.name for f in card.files if Path(f.name).suffix.lower() in MODEL_SUFFIXES]
    found = [p for p in named if p.is_file()]
    if not found:  # the card does not list its files: look up to three folders down
        for folder, dirs, files in os.walk(root):
            depth = len(Path(folder).relative_to(root).parts)
            dirs[:] = [] if depth >= 3 else sorted(d for d in dirs if not d.startswith("."))
            found += [Path(folder) / f for f in sorted(files) if f.lower().endswith(MODEL_SUFFIXES)]
            if len(found) >= limit:
                break
    return found[:limit]


def fetch_patterns(card: ModelCard) -> list[str] | None:
    """Files to fetch for a card: its weights file (with external data) and small text files.

    None (every file) when the card does not name its weights file.

    Example:
        >>> fetch_patterns(ModelCard(id="m", source="hub", extra={"main_file": "m.onnx"}))
        ['m.onnx', 'm.onnx_data', 'm.onnx.data', '*.json', '*.txt', '*.model']
    """
    main = card.extra.get("main_file")
    if not main:
        return None
    return [main, f"{main}_data", f"{main}.data", "*.json", "*.txt", "*.model"]


def _profilable(path: Path) -> bool:
    """A plain ONNX file (ONNX Runtime GenAI decoders are profiled with ``slm`` instead)."""
    return path.suffix.lower() == ".onnx" and not (path.parent / "genai_config.json").is_file()


def _cell(value: Any, fmt: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(fmt(value)))


class ZooBrowser(Fallback, widgets.VBox):
    """Find a model: search the sources, filter and sort in memory, read a card, fetch, open it.

    ``.search_result`` is the last ``zoo.search`` answer, ``.results`` the
    filtered and sorted DataFrame (``cards_frame`` columns) and ``.result`` the
    selected ModelCard (None when nothing is selected). With ``cards=`` the
    browser shows those cards and Search filters them by text instead. Fits are
    judged against ``machine`` (default: this machine's free RAM and GPU memory,
    read at each search).

    Example:
        >>> from localml_kit.widgets import ZooBrowser
        >>> browser = ZooBrowser("smollm2", sources=["samples", "cache"])
        >>> browser.fits.value = True; browser.result.id
        'smollm2-135m-instruct'
    """

    _fallback_panes = ("status", "detail")

    def __init__(
        self,
        query: str = "",
        *,
        cards: Sequence[ModelCard] | None = None,
        sources: Sequence[str] | None = None,
        limit: int = 200,
        rows: int = 50,
        context_length: int = 4096,
        netron: bool = True,
        machine: hardware.HardwareReport | None = None,
    ) -> None:
        self.search_result: SearchResult | None = None
        self.result: ModelCard | None = None
        self.results: pd.DataFrame = cards_frame([])
        self.viewer: widgets.Widget | None = None
        self._frame = self.results
        self._fixed = cards is not None  # a given list: Search filters it by text
        self._searched: str | None = None
        self._sources = list(sources) if sources is not None else None
        self._limit = limit
        self._rows = rows
        self._netron = netron
        self._given_machine = machine
        self._machine: hardware.HardwareReport | None = machine
        self._quiet = False

        self.query = widgets.Text(
            value=query,
            placeholder="search models: a name, a task, a tag",
            continuous_update=False,
            layout=widgets.Layout(width="360px"),
        )
        self.search_button = widgets.Button(
            description="Search", button_style="primary", icon="search"
        )
        self.source = widgets.Dropdown(options=[ANY], description="Source", layout=_narrow())
        self.task = widgets.Dropdown(options=[ANY], description="Task", layout=_narrow())
        self.format = widgets.Dropdown(options=[ANY], description="Format", layout=_narrow())
        self.max_size = widgets.SelectionSlider(
            options=list(SIZE_STEPS), value=ANY, description="Max size", continuous_update=False
        )
        self.fits = widgets.ToggleButton(
            description="fits my machine",
            icon="check",
            tooltip="only models that fit (or fit tightly) in the free RAM or on the GPU",
        )
        self.context = widgets.Dropdown(
            options=sorted({*CONTEXT_LENGTHS, context_length}),
            value=context_length,
            description="Context",
            layout=_narrow("160px"),
        )
        self.sort = widgets.Dropdown(
            options=list(SORTS), value="downloads", description="Sort by", layout=_narrow()
        )
        self.ascending = widgets.ToggleButton(description="ascending", icon="sort-amount-asc")
        self.notes = widgets.HTML()
        self.status = widgets.HTML()
        self.table = RowTable()  # a click on a row selects that model
        self.picker = widgets.Select(options=[], rows=8, layout=widgets.Layout(width="100%"))
        self.detail = widgets.HTML("<p>Pick a model to read its card.</p>")
        self.file = widgets.Dropdown(
            options=[], description="File", layout=widgets.Layout(width="100%")
        )
        self.fetch_button = widgets.Button(description="Fetch", icon="download", disabled=True)
        self.all_files = widgets.Checkbox(
            description="every file (else the weights shown and small files)",
            indent=False,
            layout=_auto(),
        )
        self.graph_button = widgets.Button(
            description="Open in GraphViewer", icon="sitemap", disabled=True, layout=_auto()
        )
        self.profile_button = widgets.Button(
            description="Open in profiler", icon="tachometer", disabled=True, layout=_auto()
        )
        self.progress = widgets.Output()
        self.opened = widgets.VBox()

        self.search_button.on_click(lambda _: self.search())
        self.query.observe(self._on_query, names="value")
        for control in (
            self.source,
            self.task,
            self.format,
            self.max_size,
            self.fits,
            self.sort,
            self.ascending,
        ):
            control.observe(lambda _: self.refresh(), names="value")
        self.context.observe(lambda _: self._rebuild(), names="value")
        self.picker.observe(lambda change: self._pick(change["new"]), names="value")
        self.table.observe(lambda change: self._click_row(change["new"]), names="selected")
        self.fetch_button.on_click(lambda _: self.fetch())
        self.graph_button.on_click(lambda _: self.open_graph())
        self.profile_button.on_click(lambda _: self.open_profiler())
        super().__init__(
            [
                widgets.HBox([self.query, self.search_button]),
                widgets.HBox([self.source, self.task, self.format]),
                widgets.HBox([self.max_size, self.fits, self.context]),
                widgets.HBox([self.sort, self.ascending]),
                self.notes,
                self.status,
                self.table,
                widgets.HBox(
                    [
                        widgets.VBox([self.picker], layout=widgets.Layout(width="40%")),
                        widgets.VBox(
                            [
                                self.detail,
                                self.file,
                                widgets.HBox(
                                    [self.fetch_button, self.graph_button, self.profile_button]
                                ),
                                self.all_files,
                                self.progress,
                            ],
                            layout=widgets.Layout(width="60%"),
                        ),
                    ]
                ),
                self.opened,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("localml-zoo-browser")
        if cards is not None:
            self._show(cards)
        elif query or sources is not None:
            self.search()

    # -- searching and filtering -------------------------------------------------------------

    def search(self) -> pd.DataFrame:
        """Run the query (``zoo.search``; with ``cards=``, an in-memory text filter); returns ``.results``."""
        if self._fixed:
            return self.refresh()
        from localml_kit import zoo

        self._searched = self.query.value
        self.status.value = f"<i>Searching {html.escape(self.query.value or 'every model')} ...</i>"
        try:
            found = zoo.search(self.query.value, sources=self._sources, limit=self._limit)
        except errors.LocalMLError as exc:
            self._error(str(exc))
            return self.results
        self.search_result = found
        self.notes.value = "".join(
            f"<div class='localml-note' style='color:#555'>{html.escape(n)}</div>"
            for n in found.notes
        )
        return self._show(found.cards)

    def select(self, id: str) -> ModelCard | None:
        """Select the shown card with this id (as if picked in the list); returns it, or None."""
        shown = self.results.iloc[: self._rows]
        labels = shown.index[shown["id"].to_numpy() == id]
        if len(labels):
            self.picker.value = labels[0]
        return self.result if len(labels) else None

    def _on_query(self, change: dict) -> None:
        # Enter (or leaving the box) submits; the button submits too, so skip repeats.
        if self._fixed or change["new"] != self._searched:
            self.search()

    def _show(self, cards: Sequence[ModelCard]) -> pd.DataFrame:
        self._machine = (
            self._given_machine if self._given_machine is not None else hardware.report()
        )
        self._frame = cards_frame(cards, context_length=self.context.value, machine=self._machine)
        self._quiet = True
        try:
            for control, column in (
                (self.source, "source"),
                (self.task, "task"),
                (self.format, "format"),
            ):
                values = sorted({str(v) for v in self._frame[column].dropna()})
                current = control.value
                control.options = [ANY, *values]
                control.value = current if current in values else ANY
        finally:
            self._quiet = False
        return self.refresh()

    def _rebuild(self) -> None:
        if len(self._frame):
            self._frame = cards_frame(
                list(self._frame["card"]), context_length=self.context.value, machine=self._machine
            )
        self.refresh()

    def refresh(self) -> pd.DataFrame:
        """Filter and sort the cards in memory from the controls, and redraw; returns ``.results``."""
        if self._quiet:
            return self.results

        def chosen(control: widgets.Dropdown) -> str | None:
            return None if control.value == ANY else str(control.value)

        self.results = filter_cards(
            self._frame,
            text=self.query.value if self._fixed else None,
            sources=chosen(self.source),
            task=chosen(self.task),
            format=chosen(self.format),
            max_size=SIZE_STEPS[self.max_size.value],
            fits_only=self.fits.value,
            sort=SORTS[self.sort.value],
            descending=not self.ascending.value,
        )
        shown = self.results.iloc[: self._rows]
        self.table.value = self._table_html(shown)
        total, kept = len(self._frame), len(self.results)
        self.status.value = f"{len(shown):,} of {kept:,} models shown" + (
            f" ({total - kept:,} filtered out)" if total > kept else ""
        )
        # Keep the selected card when it is still shown, else select the first row.
        keep = self.picker.value if self.picker.value in shown.index else None
        if keep is None and len(shown):
            keep = shown.index[0]
        self._quiet = True
        try:
            self.picker.options = [
                (f"{card.id} · {card.source}", label) for label, card in shown["card"].items()
            ]
            self.picker.value = keep
        finally:
            self._quiet = False
        self._pick(keep)
        return self.results

    def _table_html(self, shown: pd.DataFrame) -> str:
        if shown.empty:
            return "<p class='localml-zoo-empty'>No models match.</p>"
        gpu = bool(self._frame["gpu_fit"].notna().any())
        # A column no shown model has a value for (the samples have no downloads or likes)
        # is left out rather than drawn as a column of dashes.
        table = [
            spec
            for spec in _TABLE
            if (gpu or spec[1] != "gpu_fit")
            and (spec[0] == "model" or shown[spec[1]].notna().any())
        ]
        head = "".join(f"<th>{html.escape(h)}</th>" for h, _, _ in table) + "<th>local</th>"
        columns = [[_cell(v, fmt) for v in shown[col].tolist()] for _, col, fmt in table]
        columns.append(["✓" if local else "" for local in shown["local"].tolist()])
        body = [
            "<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
            for row in zip(*columns, strict=True)
        ]
        return (
            "<style>.localml-zoo-table th, .localml-zoo-table td {padding: 2px 10px; "
            "text-align: left; white-space: nowrap}</style>"
            "<table class='localml-zoo-table' style='font-size:12px; border-collapse: collapse'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    # -- one card ----------------------------------------------------------------------------

    def _click_row(self, index: int) -> None:
        shown = self.results.index[: self._rows]
        if not self._quiet and 0 <= index < len(shown) and self.picker.value != shown[index]:
            self.picker.value = shown[index]

    def _pick(self, label: Any) -> None:
        if self._quiet:
            return
        shown = list(self.results.index[: self._rows])
        self._quiet = True
        try:
            self.table.selected = shown.index(label) if label in shown else -1
        finally:
            self._quiet = False
        known = label is not None and label in self.results.index
        card = cast("ModelCard | None", self.results.at[label, "card"] if known else None)
        self.result = card
        files = model_files(card) if card is not None else []
        root = card.local_path if card is not None else None
        self.file.options = [
            (str(p.relative_to(root)) if root and root.is_dir() else p.name, p) for p in files
        ]
        self.file.layout.display = None if len(files) > 1 else "none"
        self.fetch_button.disabled = card is None or card.source not in _HUB_SOURCES
        self.graph_button.disabled = not files
        self.profile_button.disabled = not any(_profilable(p) for p in files)
        if card is None:
            self.detail.value = "<p>No model selected.</p>"
        else:
            self.detail.value = self._detail_html(card, self.results.loc[label])

    def _detail_html(self, card: ModelCard, row: pd.Series) -> str:
        e = html.escape
        memory = row["memory_bytes"]
        fit = str(row["fit"])
        facts = [
            ("id", card.id),
            ("source", card.source),
            ("author", card.author),
            ("task", card.task),
            ("format", card.format),
            ("size", _human(card.size_bytes)),
            ("parameters", f"{card.parameters:,}" if card.parameters else None),
            ("quantization", card.quantization),
            ("licence", card.license or "unknown: check the model card before use"),
            ("downloads", f"{card.downloads:,}" if card.downloads is not None else None),
            ("likes", f"{card.likes:,}" if card.likes is not None else None),
            ("last modified", card.last_modified),
            ("tags", ", ".join(card.tags) or None),
            ("weights file", card.extra.get("main_file")),
            ("local path", str(card.local_path) if card.local_path else None),
            (
                f"memory at {self.context.value:,} tokens",
                _human(None if memory is pd.NA else int(memory)),
            ),
        ]
        rows = "".join(
            f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(str(v))}</td></tr>"
            for k, v in facts
            if v
        )
        fits = [("fit in RAM", fit)]
        if not pd.isna(row["gpu_fit"]):
            fits.append(("fit on GPU", str(row["gpu_fit"])))
        for name, value in fits:
            colour = _FIT_COLOURS.get(value, "#555")
            rows += (
                f"<tr><th style='text-align:left'>{e(name)}</th>"
                f"<td style='color:{colour}'><b>{e(value)}</b></td></tr>"
            )
        link = ""
        if card.source in _HUB_SOURCES:
            url = "https://huggingface.co/" + quote(card.id, safe="/")
            link = f" <a href='{e(url)}' target='_blank' rel='noopener'>on the Hub</a>"
        files = "".join(
            f"<li>{e(f.name)} <span style='color:#555'>{e(_human(f.size) or '')}</span></li>"
            for f in card.files[:40]
        )
        more = f"<li>... and {len(card.files) - 40} more</li>" if len(card.files) > 40 else ""
        description = card.description or ""
        if len(description) > 600:
            description = description[:600] + " ..."
        return (
            f"<div class='localml-zoo-card'><b>{e(card.name)}</b>{link}"
            f"<table>{rows}</table>"
            + (f"<p>{e(description)}</p>" if description else "")
            + (
                f"<details><summary>{len(card.files)} file{'s' * (len(card.files) != 1)}</summary>"
                f"<ul>{files}{more}</ul></details>"
                if files
                else ""
            )
            + "</div>"
        )

    # -- actions -----------------------------------------------------------------------------

    def fetch(self) -> Path | None:
        """Download the selected card's files (``zoo.fetch``, progress below); returns the local path."""
        card = self.result
        if card is None:
            return None
        from localml_kit import zoo

        self.progress.clear_output()
        self.status.value = f"<i>Fetching {html.escape(card.id)} ...</i>"
        try:
            with self.progress:
                patterns = None if self.all_files.value else fetch_patterns(card)
                path = zoo.fetch(card, allow_patterns=patterns, progress=True)
        except errors.LocalMLError as exc:
            self._error(str(exc))
            return None
        label = self.picker.value
        fetched = dataclasses.replace(card, local_path=Path(path))
        self._frame.at[label, "card"] = cast(Any, fetched)
        self._frame.at[label, "local"] = True
        self.refresh()
        self.status.value = f"Fetched {html.escape(card.id)} to {html.escape(str(path))}"
        return Path(path)

    def _chosen_file(self, usable: Callable[[Path], bool]) -> Path | None:
        """The file picked in the File list if ``usable(path)``, else the card's first usable one."""
        picked = self.file.value
        if isinstance(picked, Path) and usable(picked):
            return picked
        files = model_files(self.result) if self.result is not None else []
        return next((p for p in files if usable(p)), None)

    def open_graph(self) -> widgets.Widget | None:
        """Open the selected card's model file in a GraphViewer below; returns the viewer."""
        from localml_kit.widgets.graph_viewer import GraphViewer

        path = self._chosen_file(lambda p: p.suffix.lower() in MODEL_SUFFIXES)
        return self._open(GraphViewer(path, netron=self._netron) if path else None)

    def open_profiler(self) -> widgets.Widget | None:
        """Open the selected card's ONNX file in a ProfilerPanel below; returns the panel."""
        from localml_kit.widgets.profiler_panel import ProfilerPanel

        path = self._chosen_file(_profilable)
        return self._open(ProfilerPanel(path) if path else None)

    def _open(self, view: widgets.Widget | None) -> widgets.Widget | None:
        if view is None:
            self._error("this model has no local .onnx or .gguf file: fetch it first.")
            return None
        if self.viewer is not None:
            self.viewer.close()
        self.viewer = view
        self.opened.children = [view]
        return view

    def _error(self, message: str) -> None:
        show_error(self.status, message)

    def _fallback_text(self) -> str:
        chosen = f"selected {self.result.id}" if self.result is not None else "none selected"
        return f"{len(self.results):,} models match; {chosen}"

    def close(self) -> None:
        """Close the opened viewer (stopping its netron server) and the widget."""
        if self.viewer is not None:
            self.viewer.close()
            self.viewer = None
        super().close()


def _narrow(width: str = "240px") -> widgets.Layout:
    return widgets.Layout(width=width)


def _auto() -> widgets.Layout:
    return widgets.Layout(width="auto")
