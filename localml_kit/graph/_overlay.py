"""Overlays: a value per node (time, provider, error), its colours and legend, and exports.

An :class:`Overlay` maps node names to a number (drawn on a colour scale) or a
category (drawn with one colour each); ``marked`` nodes get a red outline
(fallback nodes, say). Colours are chosen here, once, so the widget and the
exports to Model Explorer's node data and netron's metrics attachment agree.

The builders read the kit's own records without importing them:
``time_overlay`` / ``operator_overlay`` / ``placement_overlay`` take a
``ProfileResult`` (its ``node_times`` and ``node_providers`` columns), and
``error_overlay`` the DataFrame of ``compare.per_node``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from localml_kit import errors

# A perceptual scale (viridis, 7 stops) from low to high.
SCALE = ("#440154", "#443983", "#31688e", "#21918c", "#35b779", "#90d743", "#fde725")
# Categories: a colour-blind-safe set (Okabe-Ito), then greys.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999")


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _mix(a: str, b: str, t: float) -> str:
    ra, ga, ba = _hex(a)
    rb, gb, bb = _hex(b)
    return f"#{round(ra + (rb - ra) * t):02x}{round(ga + (gb - ga) * t):02x}{round(ba + (bb - ba) * t):02x}"


def scale_color(t: float) -> str:
    """The scale's colour at ``t`` in [0, 1] (clipped).

    Example:
        >>> scale_color(0.0), scale_color(1.0)
        ('#440154', '#fde725')
    """
    t = min(max(float(t), 0.0), 1.0) * (len(SCALE) - 1)
    low = min(int(t), len(SCALE) - 2)
    return _mix(SCALE[low], SCALE[low + 1], t - low)


def text_color(background: str) -> str:
    """Black or white, whichever reads better on ``background``."""
    r, g, b = _hex(background)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


@dataclass
class Overlay:
    """Values drawn on a graph's nodes: a scale (numbers) or categories (text).

    ``values`` maps node names to a number or a category; ``marked`` names nodes
    drawn with a red outline; ``note`` says what could not be mapped. With
    ``log`` the scale is logarithmic (set by the builders when values span more
    than 100x).

    Example:
        >>> o = Overlay("time", {"a": 1.0, "b": 3.0}, unit="ms")
        >>> o.colors()
        {'a': '#440154', 'b': '#fde725'}
        >>> o.legend()["low"], o.legend()["high"]
        (1.0, 3.0)
    """

    name: str
    values: dict[str, float | str]
    kind: str = "scale"  # "scale" or "category"
    unit: str = ""
    log: bool = False
    marked: list[str] = field(default_factory=list)
    mark_label: str = ""
    note: str = ""
    details: dict[str, str] = field(default_factory=dict)  # node -> extra hover text
    aggregate: str = "max"  # a collapsed layer's value: "sum" (times) or "max" (errors)

    def __post_init__(self) -> None:
        if self.kind not in ("scale", "category"):
            raise errors.ConfigError(
                f"overlay kind must be 'scale' or 'category', not {self.kind!r}"
            )

    # --- colours ---------------------------------------------------------------------
    def _numbers(self) -> dict[str, float]:
        out = {}
        for k, v in self.values.items():
            if isinstance(v, int | float) and math.isfinite(v):
                out[k] = float(v)
        return out

    def _bounds(self) -> tuple[float, float]:
        nums = list(self._numbers().values())
        if not nums:
            return 0.0, 0.0
        if self.log:
            positive = [v for v in nums if v > 0]
            return (min(positive), max(positive)) if positive else (0.0, 0.0)
        return min(nums), max(nums)

    def _position(self, value: float, low: float, high: float) -> float:
        if high <= low:
            return 1.0
        if self.log:
            value = max(value, low)
            return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return (value - low) / (high - low)

    def categories(self) -> dict[str, str]:
        """Category -> colour, most frequent first (a category overlay)."""
        counts = pd.Series([str(v) for v in self.values.values()]).value_counts()
        return {c: PALETTE[min(i, len(PALETTE) - 1)] for i, c in enumerate(counts.index)}

    def colors(self) -> dict[str, str]:
        """Node name -> fill colour."""
        if self.kind == "category":
            palette = self.categories()
            return {k: palette[str(v)] for k, v in self.values.items()}
        low, high = self._bounds()
        return {k: scale_color(self._position(v, low, high)) for k, v in self._numbers().items()}

    def legend(self) -> dict[str, Any]:
        """What the legend shows: the scale's ends and stops, or the categories' colours."""
        if self.kind == "category":
            return {"kind": "category", "items": [[c, col] for c, col in self.categories().items()]}
        low, high = self._bounds()
        return {
            "kind": "scale",
            "low": low,
            "high": high,
            "log": self.log,
            "stops": list(SCALE),
            "unit": self.unit,
        }

    # --- data ------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """One row per node: node, value (largest first for a scale), marked."""
        marked = set(self.marked)
        rows = [{"node": k, "value": v, "marked": k in marked} for k, v in self.values.items()]
        table = pd.DataFrame(rows, columns=["node", "value", "marked"])
        if self.kind == "scale" and len(table):
            table = table.sort_values("value", ascending=False, kind="stable").reset_index(
                drop=True
            )
        return table

    def to_dict(self) -> dict[str, Any]:
        """What the widget receives: the values, colours, legend and marks (JSON-ready)."""
        data = asdict(self)
        data["colors"] = self.colors()
        data["legend"] = self.legend()
        return data

    # --- exports ---------------------------------------------------------------------
    def to_model_explorer(self, graph_id: str = "main_graph") -> dict[str, Any]:
        """Model Explorer's node data: ``{graph_id: {results: {node: {value, bgColor}}, ...}}``.

        Load the saved file in Model Explorer's "node data" panel. Categories are
        numbered (their names go in ``thresholds``' order).

        Example:
            >>> data = Overlay("t", {"n": 2.0}).to_model_explorer("g")
            >>> data["g"]["results"]["n"]["value"], "gradient" in data["g"]
            (2.0, True)
        """
        colors = self.colors()
        results: dict[str, Any] = {}
        body: dict[str, Any] = {"results": results}
        if self.kind == "category":
            categories = self.categories()
            number = {name: i for i, name in enumerate(categories)}
            for node, value in self.values.items():
                bg = colors[node]
                results[node] = {
                    "value": number[str(value)],
                    "bgColor": bg,
                    "textColor": text_color(bg),
                }
            body["thresholds"] = [
                {"value": i + 0.5, "bgColor": col, "textColor": text_color(col)}
                for i, col in enumerate(categories.values())
            ]
        else:
            for node, value in self._numbers().items():
                bg = colors[node]
                results[node] = {"value": value, "bgColor": bg, "textColor": text_color(bg)}
            body["gradient"] = [
                {"stop": i / (len(SCALE) - 1), "bgColor": col, "textColor": text_color(col)}
                for i, col in enumerate(SCALE)
            ]
        return {graph_id: body}

    def to_netron(self) -> dict[str, Any]:
        """netron's metrics attachment: open the model in netron, then drop the saved ``.json`` on it.

        Example:
            >>> Overlay("t", {"n": 2.0}, unit="ms").to_netron()["metrics"]
            [{'kind': 'node', 'target': 'n', 'name': 't (ms)', 'value': 2.0, 'type': 'float64'}]
        """
        name = f"{self.name} ({self.unit})" if self.unit else self.name
        metrics = []
        for node, value in self.values.items():
            number = isinstance(value, int | float)
            metrics.append(
                {
                    "kind": "node",
                    "target": node,
                    "name": name,
                    "value": value,
                    "type": "float64" if number else "string",
                }
            )
        for node in self.marked:
            metrics.append(
                {
                    "kind": "node",
                    "target": node,
                    "name": self.mark_label or "marked",
                    "value": True,
                    "type": "boolean",
                }
            )
        return {"signature": "netron:attachment", "metrics": metrics}

    def save_model_explorer(
        self, path: str | os.PathLike[str], graph_id: str = "main_graph"
    ) -> Path:
        """Write :meth:`to_model_explorer` as JSON to ``path``; returns the path."""
        out = Path(path)
        out.write_text(json.dumps(self.to_model_explorer(graph_id), indent=1))
        return out

    def save_netron(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_netron` as JSON to ``path`` (netron wants a ``.json`` name)."""
        out = Path(path)
        if out.suffix.lower() != ".json":
            raise errors.ConfigError(
                f"netron reads an attachment only from a file named *.json, not {out.name!r}."
            )
        out.write_text(json.dumps(self.to_netron(), indent=1))
        return out


# --- builders over the kit's records -------------------------------------------------------


def _row(result: Any, config: int | str | None) -> Mapping[str, Any]:
    """One measured row of a ProfileResult: by config number, label, or the first ok one."""
    table = getattr(result, "table", None)
    if not isinstance(table, pd.DataFrame):
        raise errors.ConfigError(
            f"expected a ProfileResult (profile.run's result), got {type(result).__name__}."
        )
    ok = table[table["status"] == "ok"]
    if config is None:
        chosen = ok
    elif isinstance(config, int):
        chosen = table[table["config"] == config]
    else:
        chosen = table[table["label"] == config]
    if chosen.empty:
        labels = ", ".join(map(str, table["label"]))
        raise errors.ConfigError(
            f"no measured configuration {config!r} in this profile (it has: {labels})."
        )
    row: dict[str, Any] = {str(k): v for k, v in chosen.iloc[0].to_dict().items()}
    if not isinstance(row.get("node_times"), list) or not row["node_times"]:
        raise errors.ConfigError(
            f"the profile of {row['label']} has no per-node times: run it with "
            "Plan(..., operator_profile=True) (the default) on ONNX Runtime."
        )
    return row


def _spread(values: Mapping[str, float | str]) -> bool:
    nums = [float(v) for v in values.values() if isinstance(v, int | float) and v > 0]
    return bool(nums) and max(nums) / min(nums) > 100


def _mapped(row: Mapping[str, Any], names: set[str] | None) -> tuple[list[dict[str, Any]], str]:
    times = list(row["node_times"])
    if names is None:
        return times, ""
    kept = [t for t in times if t["node"] in names]
    missed = [t for t in times if t["node"] not in names]
    if not missed:
        return kept, ""
    ms = sum(float(t["ms_per_run"]) for t in missed)
    note = (
        f"{len(missed)} kernels ({ms:.3f} ms per run) ran as nodes the file does not have "
        "(fused by graph optimization): profile with optimization 'disable' to see every node."
    )
    return kept, note


def time_overlay(
    result: Any, config: int | str | None = None, *, nodes: set[str] | None = None
) -> Overlay:
    """Kernel time per node (ms per run) from a ProfileResult's per-node profile.

    ``config`` picks the configuration (its number or label; default the first
    measured one); ``nodes`` (the graph's node names) lets the note count the
    kernels that match no node of the file.
    """
    row = _row(result, config)
    kept, note = _mapped(row, nodes)
    values: dict[str, float | str] = {t["node"]: float(t["ms_per_run"]) for t in kept}
    details = {t["node"]: f"{t['op']} on {t['provider']}" for t in kept}
    return Overlay(
        f"time per node · {row['label']}",
        values,
        unit="ms",
        log=_spread(values),
        note=note,
        details=details,
        aggregate="sum",
    )


def operator_overlay(
    result: Any, config: int | str | None = None, *, nodes: set[str] | None = None
) -> Overlay:
    """Each node coloured by its operator type's total kernel time (ms per run)."""
    row = _row(result, config)
    kept, note = _mapped(row, nodes)
    per_op = _per_op(kept)
    values: dict[str, float | str] = {t["node"]: per_op[t["op"]] for t in kept}
    details = {t["node"]: f"all {t['op']} nodes together" for t in kept}
    return Overlay(
        f"time per operator type · {row['label']}",
        values,
        unit="ms",
        log=_spread(values),
        note=note,
        details=details,
        aggregate="max",
    )


def _per_op(times: list[dict[str, Any]]) -> dict[str, float]:
    """Total ms per run of each operator type."""
    total: dict[str, float] = {}
    for t in times:
        total[t["op"]] = total.get(t["op"], 0.0) + float(t["ms_per_run"])
    return total


def placement_overlay(
    result: Any, config: int | str | None = None, *, nodes: set[str] | None = None
) -> Overlay:
    """Which provider ran each node; nodes off the requested provider are marked (fallback)."""
    row = _row(result, config)
    placed = row.get("node_providers")
    if not isinstance(placed, dict) or not placed:
        placed = {t["node"]: t["provider"] for t in row["node_times"]}
    wanted = str(row["provider"])
    values: dict[str, float | str] = {}
    missed = 0
    for node, provider in placed.items():
        if nodes is not None and node not in nodes:
            missed += 1
            continue
        values[node] = str(provider).removesuffix("ExecutionProvider")
    marked = [n for n, p in placed.items() if p != wanted and n in values]
    note = (
        f"{missed} placed nodes are not in the file (made by graph optimization)" if missed else ""
    )
    return Overlay(
        f"provider · {row['label']}",
        values,
        kind="category",
        marked=marked,
        mark_label=f"fallback (not on {wanted.removesuffix('ExecutionProvider')})",
        note=note,
    )


def error_overlay(frame: pd.DataFrame, metric: str = "max_abs") -> Overlay:
    """Numeric error per node from ``compare.per_node``: the largest of its outputs' ``metric``.

    ``metric`` is ``max_abs``, ``mean_abs``, ``rel_error``, ``added`` (the error
    the node itself adds) or ``cosine`` (drawn as ``1 - cosine``, so the worst is
    brightest).
    """
    if metric not in ("max_abs", "mean_abs", "rel_error", "cosine", "added"):
        raise errors.ConfigError(
            f"metric must be max_abs, mean_abs, rel_error, cosine or added, not {metric!r}."
        )
    if not isinstance(frame, pd.DataFrame) or "node" not in frame or metric not in frame:
        raise errors.ConfigError("expected the DataFrame that compare.per_node returns.")
    rows = frame.dropna(subset=[metric])
    column = 1.0 - rows[metric] if metric == "cosine" else rows[metric]
    per_node = column.groupby(rows["node"]).max()
    values: dict[str, float | str] = {str(k): float(v) for k, v in per_node.items()}
    name = "1 - cosine" if metric == "cosine" else metric.replace("_", " ")
    missing = frame[frame[metric].isna()]
    reasons = missing["note"].replace("", "not compared") if "note" in frame else missing[metric]
    counts = reasons.astype(str).str.replace(r"^shapes differ.*", "shapes differ", regex=True)
    note = "; ".join(f"{n} tensors: {why}" for why, n in counts.value_counts().items())
    return Overlay(f"error per node ({name})", values, log=_spread(values), note=note)
