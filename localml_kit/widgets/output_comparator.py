"""OutputComparator: choose a reference and candidates, run them on the same inputs, see the verdict."""

from __future__ import annotations

import html
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from IPython.display import Image, display

from localml_kit import compare, errors, models
from localml_kit.widgets._util import Fallback, dims_text, show_error

__all__ = ["OutputComparator"]


def _label(obj: Any) -> str:
    if isinstance(obj, str | os.PathLike):
        return os.fspath(obj)
    return str(getattr(obj, "label", None) or getattr(obj, "__name__", None) or type(obj).__name__)


def _record(candidate: Any) -> Any:
    """Text names a model: resolve it once into a ModelRef; objects pass as they are."""
    return models.resolve(candidate) if isinstance(candidate, str | os.PathLike) else candidate


class OutputComparator(Fallback, widgets.VBox):
    """Compare candidates' outputs with a reference's: a table, an error histogram, pass/fail badges.

    Choose the reference (a sample or a path; ``@openvino`` picks a provider)
    and one or more candidates: samples from the list, more paths typed in the
    box (comma-separated), or objects given to the constructor (variants from
    ``optimize``, sessions, estimators, callables). ``.result`` holds the last
    :class:`~localml_kit.compare.Comparison` (None after an error).

    Example:
        >>> from localml_kit.widgets import OutputComparator
        >>> import contextlib, io
        >>> w = OutputComparator("ppocr-v4-cls", ["ppocr-v4-cls@openvino"])
        >>> with contextlib.redirect_stdout(io.StringIO()):  # outside Jupyter, the histogram prints
        ...     w.run_button.click()
        >>> w.result.passed
        True
        >>> w.result.verdicts()
        {'ppocr-v4-cls@openvino': True}
    """

    _fallback_panes = ("status", "badges", "table")

    def __init__(
        self,
        reference: Any = None,
        candidates: Sequence[Any] | Mapping[str, Any] = (),
        *,
        inputs: compare.Inputs | None = None,
        only: Sequence[str] | None = None,
        run: bool = False,
    ) -> None:
        self.result: compare.Comparison | None = None
        self.figure: Any = None
        self._inputs = inputs
        self._only = list(only) if only else None
        items = (
            list(candidates.items())
            if isinstance(candidates, Mapping)
            else [(_label(c), c) for c in candidates]
        )
        self._objects: dict[str, Any] = {
            label: obj for label, obj in items if not isinstance(obj, str | os.PathLike)
        }
        ref_label = _label(reference) if reference is not None else ""
        if reference is not None and not isinstance(reference, str | os.PathLike):
            self._objects[ref_label] = reference
        choices = models.sample_choices((".onnx",))
        options = list(dict.fromkeys([*self._objects, *choices, *(label for label, _ in items)]))
        self.reference = widgets.Combobox(
            options=options,
            value=ref_label,
            placeholder="a sample name or a path to an .onnx file",
            description="Reference",
            ensure_option=False,
            layout=widgets.Layout(width="480px"),
        )
        self.candidates = widgets.SelectMultiple(
            options=options,
            value=tuple(label for label, _ in items),
            description="Candidates",
            rows=min(8, max(3, len(options))),
            layout=widgets.Layout(width="480px"),
        )
        self.extra = widgets.Text(
            placeholder="more candidates: paths or name@provider, comma-separated",
            description="More",
            layout=widgets.Layout(width="480px"),
        )
        self.run_button = widgets.Button(description="Compare", button_style="primary", icon="play")
        self.status = widgets.HTML()
        self.badges = widgets.HTML()
        self.table = widgets.HTML()
        self.plot_pane = widgets.Output()
        self.run_button.on_click(lambda _: self.run())
        super().__init__(
            [
                self.reference,
                self.candidates,
                widgets.HBox([self.extra, self.run_button]),
                self.status,
                self.badges,
                self.table,
                self.plot_pane,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("localml-output-comparator")
        if run:
            self.run()

    def _resolve(self, label: str) -> Any:
        return self._objects.get(label, label)

    def chosen(self) -> dict[str, Any]:
        """The candidates to compare: ``{label: candidate}`` from the list and the text box."""
        out = {label: self._resolve(label) for label in self.candidates.value}
        for part in self.extra.value.split(","):
            if part.strip():
                out[part.strip()] = part.strip()
        return out

    def run(self) -> compare.Comparison | None:
        """Compare the chosen candidates with the reference; returns the Comparison (None on error)."""
        ref = self.reference.value.strip()
        chosen = self.chosen()
        if not ref:
            self._error("choose a reference: a sample from the list or a path to an .onnx file.")
            return None
        if not chosen:
            self._error("choose at least one candidate (or type one in the box).")
            return None
        self.status.value = f"<i>Running {len(chosen) + 1} models on the same inputs ...</i>"
        try:
            reference = _record(self._resolve(ref))
            records = {label: _record(c) for label, c in chosen.items()}
            result = compare.outputs(reference, records, self._inputs, only=self._only)
        except errors.LocalMLError as exc:
            self._error(str(exc))
            return None
        self.result = result
        dims = dims_text(result.dims, result.input_notes)
        self.status.value = (
            f"Reference <b>{html.escape(result.reference)}</b>; inputs: "
            f"{html.escape(result.inputs)}" + (f"; dims: {html.escape(dims)}" if dims else "")
        )
        self.badges.value = result.badges_html()
        table = result.summary().to_html(
            index=False, float_format=lambda v: f"{v:.4g}", na_rep="-", escape=True
        )
        reasons = [
            f"<li><b>{html.escape(str(c))}</b> {html.escape(str(o))}: {html.escape(str(r))}</li>"
            for c, o, r in result.table[["candidate", "output", "reason"]].itertuples(index=False)
            if r
        ]
        self.table.value = table + (f"<ul>{''.join(reasons)}</ul>" if reasons else "")
        self.plot_pane.clear_output()
        if any(np.size(v) for e in result.abs_errors.values() for v in e.values()):
            # A figure outside pyplot, shown once as a PNG: the inline backend never shows it
            # again on its own (a Compare click runs while the kernel handles widget messages).
            self.figure = result.plot(pyplot=False)
            buf = io.BytesIO()
            self.figure.savefig(buf, format="png", bbox_inches="tight")
            with self.plot_pane:
                display(Image(data=buf.getvalue(), format="png"))
        return result

    def _fallback_text(self) -> str:
        if self.result is None:
            return "not compared yet"
        verdicts = ", ".join(
            f"{label} {'PASS' if ok else 'FAIL'}" for label, ok in self.result.verdicts().items()
        )
        dims = dims_text(self.result.dims, self.result.input_notes)
        return f"reference {self.result.reference}; {verdicts}" + (
            f"; dims: {dims}" if dims else ""
        )

    def _error(self, message: str) -> None:
        self.result = None
        self.figure = None
        self.badges.value = ""
        self.table.value = ""
        self.plot_pane.clear_output()
        show_error(self.status, message)
