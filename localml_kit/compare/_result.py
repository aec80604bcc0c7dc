"""The result of ``compare.outputs``: the table, the verdicts, error samples for the histogram."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import _plot, errors

COLUMNS = (
    "candidate",
    "output",
    "kind",
    "precision",
    "shape",
    "dtype",
    "max_abs",
    "mean_abs",
    "max_rel",
    "cosine",
    "cosine_min",
    "top1",
    "topk",
    "neighbours",
    "passed",
    "judged",
    "reason",
)
SUMMARY = (
    "candidate",
    "output",
    "kind",
    "precision",
    "max_abs",
    "cosine",
    "top1",
    "neighbours",
    "passed",
)


@dataclass
class Comparison:
    """Outputs of candidates against a reference: one table row per candidate and output.

    ``table`` columns: candidate, output, kind (label/scores/embedding/tensor),
    precision, shape, dtype, max_abs, mean_abs, max_rel, cosine (mean over rows),
    cosine_min (worst row), top1 and topk (scores; top1 is label agreement for
    labels), neighbours (nearest-neighbour agreement for embeddings), passed, reason.
    ``abs_errors[candidate][output]`` holds a sample of absolute errors (for the histogram).

    Example:
        >>> from localml_kit.compare import outputs
        >>> c = outputs("digits-mlp", ["digits-mlp"])
        >>> c.passed, c.reference
        (True, 'digits-mlp')
    """

    table: pd.DataFrame
    reference: str
    candidates: list[str]
    inputs: str
    tolerances: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    abs_errors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    dims: dict[str, int] = field(default_factory=dict)
    input_notes: list[str] = field(default_factory=list)

    def _judged(self) -> pd.DataFrame:
        if "judged" not in self.table:
            return self.table
        return self.table[self.table["judged"].astype(bool)]

    @property
    def passed(self) -> bool:
        """True when every candidate passes on every judged output."""
        table = self._judged()
        return bool(table["passed"].all()) if len(table) else True

    def verdicts(self) -> dict[str, bool]:
        """Pass or fail per candidate (all of its outputs pass).

        Example:
            >>> from localml_kit.compare import outputs
            >>> x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
            >>> c = outputs(
            ...     lambda f: {"y": f["x"] * 2},
            ...     {"close": lambda f: {"y": f["x"] * 2 + 1e-6}, "flipped": lambda f: {"y": -f["x"] * 2}},
            ...     {"x": x},
            ... )
            >>> c.verdicts()
            {'close': True, 'flipped': False}
        """
        return {
            str(k): bool(v)
            for k, v in self._judged().groupby("candidate", sort=False)["passed"].all().items()
        } | {str(c): True for c in self.candidates if c not in set(self._judged()["candidate"])}

    def summary(self) -> pd.DataFrame:
        """The main columns only."""
        return self.table[list(SUMMARY)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: reference, candidates, inputs, tolerances, notes, rows."""
        rows = json.loads(self.table.to_json(orient="records"))
        return {
            "reference": self.reference,
            "candidates": self.candidates,
            "inputs": self.inputs,
            "dims": self.dims,
            "input_notes": self.input_notes,
            "passed": self.passed,
            "verdicts": self.verdicts(),
            "tolerances": self.tolerances,
            "notes": self.notes,
            "rows": rows,
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The dict as JSON text; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text)
        return text

    def plot(self, *, bins: int = 60, pyplot: bool = True) -> Any:
        """A histogram of absolute errors per candidate (one panel per output, log scale).

        Returns the matplotlib Figure. ``pyplot=False`` makes it outside pyplot's
        figure list, so a notebook's inline backend never shows it by itself (a
        widget displays it exactly once, where it wants).

        Example:
            >>> import matplotlib.pyplot as plt
            >>> from localml_kit.compare import outputs
            >>> fig = outputs("digits-mlp", ["digits-mlp"]).plot()
            >>> len(fig.axes)  # one panel per output: label, probabilities
            2
            >>> plt.close(fig)
        """
        try:
            import matplotlib.pyplot as plt
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise errors.OptionalDependencyError(
                "plots need matplotlib: pip install 'localml-kit[notebooks]'"
            ) from exc
        outputs = list(dict.fromkeys(self.table["output"])) if len(self.table) else []
        n = max(1, len(outputs))
        size = (min(5.5 * n, 16), 3.6)
        if pyplot:
            fig, axes = plt.subplots(1, n, figsize=size, squeeze=False)
        else:
            fig = Figure(figsize=size)
            axes = fig.subplots(1, n, squeeze=False)
        for ax, out in zip(axes[0], outputs, strict=False):
            values = {c: e[out] for c, e in self.abs_errors.items() if out in e and e[out].size}
            positive = [v[v > 0] for v in values.values()]
            low = min((float(v.min()) for v in positive if v.size), default=1e-12)
            high = max((float(v.max()) for v in positive if v.size), default=1.0)
            edges = np.logspace(np.log10(max(low, 1e-12)), np.log10(max(high, low * 10)), bins)
            for label, v in values.items():
                exact = int((v == 0).sum())
                text = f"{label} ({exact / v.size:.0%} exact)" if exact else label
                ax.hist(
                    np.clip(v[v > 0], edges[0], None),
                    bins=edges,
                    histtype="step",
                    lw=1.5,
                    label=_plot.label(text),
                )
            ax.set_xscale("log")
            _plot.plain_log_ticks(ax)
            ax.set_title(_plot.label(f"|candidate - reference|: {out}"), fontsize=10)
            ax.set_xlabel("absolute error")
            ax.set_ylabel("values")
            if values:
                ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def badges_html(self) -> str:
        """One green PASS / red FAIL badge per candidate, with the reason on hover."""
        parts = []
        reasons = self.table.groupby("candidate", sort=False)["reason"].apply(
            lambda r: "; ".join(x for x in r if x)
        )
        for label, ok in self.verdicts().items():
            color = "#1a7f37" if ok else "#b00020"
            word = "PASS" if ok else "FAIL"
            title = html.escape(reasons.get(label, "") or "within tolerance", quote=True)
            parts.append(
                f"<span class='localml-badge localml-{word.lower()}' title='{title}' "
                f"style='background:{color};color:#fff;border-radius:4px;padding:2px 8px;"
                f"margin-right:6px;font-weight:600'>{word}</span>"
                f"<span style='margin-right:14px'>{html.escape(label)}</span>"
            )
        return "<div>" + "".join(parts) + "</div>"

    def _repr_html_(self) -> str:
        table = self.summary().to_html(
            index=False, float_format=lambda v: f"{v:.4g}", na_rep="-", escape=True
        )
        return (
            f"<p><b>Reference</b>: {html.escape(self.reference)}; <b>inputs</b>: "
            f"{html.escape(self.inputs)}</p>{self.badges_html()}{table}"
        )
