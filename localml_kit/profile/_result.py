"""The result of a profiling run: one table row per configuration, JSON in and out, plots."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

import numpy as np
import pandas as pd

from localml_kit import _plot, errors

_WORKER = {"from": "worker"}  # a measurement the worker reports under the field's name


@dataclass(kw_only=True)
class ProfileRow:
    """One configuration's row: its fields, in order, are the columns of ``ProfileResult.table``.

    A field's type is its column's dtype: ``int`` -> nullable ``Int64``,
    ``float`` -> float (NaN when missing), ``bool`` -> nullable boolean, ``str``
    with a default of ``""`` -> text that is never missing; anything else stays
    a Python object (``None`` when missing). Measurements are ``None`` for a
    configuration that did not run.

    Example:
        >>> row = ProfileRow(config=0, label="m cpu t1", model="m", provider="CPUExecutionProvider",
        ...                  environment="main", threads=1, status="stopped")
        >>> frame([row]).loc[0, "status"], list(frame([row]).columns) == list(COLUMNS)
        ('stopped', True)
    """

    config: int
    label: str
    model: str
    provider: str
    environment: str
    threads: int
    batch: int | None = None
    optimization: str | None = None
    cpu_arena: bool | None = None
    spinning: bool | None = None
    io_binding: bool | None = None
    status: str = "error"
    error: str = ""
    package: str = ""
    fallback: str = ""
    inputs: str | None = None
    input_shapes: str | None = None
    dims: str | None = None
    input_notes: str | None = None
    load_s: float | None = field(default=None, metadata=_WORKER)
    first_run_ms: float | None = field(default=None, metadata=_WORKER)
    warmup: int | None = field(default=None, metadata=_WORKER)
    iterations: int | None = field(default=None, metadata=_WORKER)
    measure_s: float | None = field(default=None, metadata=_WORKER)
    p50_ms: float | None = field(default=None, metadata=_WORKER)
    p90_ms: float | None = field(default=None, metadata=_WORKER)
    p99_ms: float | None = field(default=None, metadata=_WORKER)
    mean_ms: float | None = field(default=None, metadata=_WORKER)
    std_ms: float | None = field(default=None, metadata=_WORKER)
    min_ms: float | None = field(default=None, metadata=_WORKER)
    max_ms: float | None = field(default=None, metadata=_WORKER)
    items_per_s: float | None = None
    baseline_mb: float | None = field(default=None, metadata=_WORKER)
    load_peak_mb: float | None = field(default=None, metadata=_WORKER)
    session_mb: float | None = field(default=None, metadata=_WORKER)
    run_peak_mb: float | None = field(default=None, metadata=_WORKER)
    memory_method: str | None = field(default=None, metadata=_WORKER)
    gpu_name: str | None = field(default=None, metadata=_WORKER)
    gpu_load_peak_mb: float | None = field(default=None, metadata=_WORKER)
    gpu_run_peak_mb: float | None = field(default=None, metadata=_WORKER)
    gpu_memory_method: str | None = field(default=None, metadata=_WORKER)
    session_providers: list[str] | None = field(default=None, metadata=_WORKER)
    nodes: int | None = None
    nodes_on_provider: int | None = None
    nodes_on_cpu: int | None = None
    nodes_run: int | None = None
    subgraphs: int | None = None
    cpu_fallback: bool | None = None
    top_operators: list[dict[str, Any]] | None = None
    # Per node from the profiling trace: node, op, provider, calls, ms_per_run (largest first).
    node_times: list[dict[str, Any]] | None = None
    # Which provider the session placed each node on (its graph after optimization).
    node_providers: dict[str, str] | None = field(default=None, metadata=_WORKER)
    operator_ms_per_run: float | None = None
    startup_s: float | None = field(default=None, metadata=_WORKER)
    wall_s: float | None = field(default=None, metadata=_WORKER)
    onnxruntime: str | None = field(default=None, metadata=_WORKER)
    python: str | None = None
    model_path: str | None = None
    provider_options: dict[str, str] | None = None
    latencies_ms: list[float] | None = field(default=None, metadata=_WORKER)
    # Where it ran: the cluster machine (a Dask worker's name; empty for this machine), the
    # worker's address, and when the measuring process started and ended (seconds since the epoch).
    machine: str = ""
    worker: str = ""
    started_at: float | None = field(default=None, metadata=_WORKER)
    ended_at: float | None = field(default=None, metadata=_WORKER)

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict, in column order (values are not copied).

        Example:
            >>> ProfileRow(config=0, label="l", model="m", provider="p", environment="main",
            ...            threads=1).to_dict()["status"]
            'error'
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _kind(hint: Any, default: Any) -> str:
    """A column's kind from its field's type: "int", "float", "bool", "text" or "object"."""
    args = [a for a in get_args(hint) if a is not type(None)] or [hint]
    if len(args) == 1 and args[0] in (int, float, bool):
        return args[0].__name__
    if hint is str and default == "":
        return "text"
    return "object"


_HINTS = get_type_hints(ProfileRow)
_KINDS: dict[str, str] = {f.name: _kind(_HINTS[f.name], f.default) for f in fields(ProfileRow)}

# Every row has these columns, in this order: ProfileRow's fields.
COLUMNS: tuple[str, ...] = tuple(_KINDS)
# The measurements the worker reports under the column's own name.
WORKER_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(ProfileRow) if f.metadata.get("from") == "worker"
)
_NUMERIC = tuple(c for c, k in _KINDS.items() if k == "float")
_INTS = tuple(c for c, k in _KINDS.items() if k == "int")
_BOOLS = tuple(c for c, k in _KINDS.items() if k == "bool")
_TEXT = tuple(c for c, k in _KINDS.items() if k == "text")
SUMMARY = (
    "label",
    "status",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "items_per_s",
    "load_s",
    "first_run_ms",
    "session_mb",
    "run_peak_mb",
    "fallback",
    "error",
)


def frame(records: Sequence[ProfileRow | Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with ProfileRow's columns and dtypes (also used when loading JSON).

    Rows may be :class:`ProfileRow` records or mappings (rows read from JSON);
    keys that are not columns are left out, missing ones are empty.

    Example:
        >>> frame([]).columns[:3].tolist()
        ['config', 'label', 'model']
    """
    dicts = [r.to_dict() if isinstance(r, ProfileRow) else dict(r) for r in records]
    table = pd.DataFrame(dicts, columns=list(COLUMNS))
    for col in _NUMERIC:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    for col in _INTS:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    for col in _BOOLS:
        table[col] = table[col].astype("boolean")
    for col in _TEXT:
        values = table[col].astype(object)
        table[col] = values.where(values.map(_present), "").astype(str)
    for col, kind in _KINDS.items():
        if kind == "object":
            values = table[col].astype(object)
            table[col] = values.where(values.map(_present), None)
    return table


def _present(value: Any) -> bool:
    """False for a missing cell (None or NaN); lists and dicts count as present."""
    if value is None:
        return False
    return not (isinstance(value, float) and np.isnan(value))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _with_machine(rows: pd.DataFrame) -> list[str]:
    """Row labels, with `` @ machine`` added on a cluster run (one configuration, many machines)."""
    return [
        f"{lab} @ {m}" if m else str(lab)
        for lab, m in zip(rows["label"], rows["machine"], strict=True)
    ]


def _pyplot():  # -> matplotlib.pyplot
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise errors.OptionalDependencyError(
            'plots need matplotlib: pip install "localml-kit[notebooks]" (or matplotlib).'
        ) from exc
    return plt


def _horizontal() -> dict[str, Any]:
    """Horizontal boxes: ``orientation=`` since matplotlib 3.10, ``vert=False`` before."""
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


@dataclass
class ProfileResult:
    """One row per configuration (``table``), the plan that produced it, and the machine.

    Example:
        >>> from localml_kit import profile
        >>> plan = profile.Plan("digits-mlp", threads=[1], warmup=1, min_iterations=5, min_seconds=0)
        >>> result = profile.run(plan, progress=False)
        >>> result.summary().columns.tolist()
        ['label', 'status', 'p50_ms', 'p90_ms', 'p99_ms', 'items_per_s', 'load_s', 'first_run_ms', 'session_mb', 'run_peak_mb', 'fallback', 'error']
        >>> result.plan["models"], result.machine["logical_cores"] > 0
        ({'digits-mlp': 'digits-mlp'}, True)
    """

    table: pd.DataFrame
    plan: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    # A cluster run: each machine's hardware report, by machine name (see profile.run(cluster=)).
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __repr__(self) -> str:
        counts = self.table["status"].value_counts()
        parts = ", ".join(f"{n} {status}" for status, n in counts.items())
        return f"ProfileResult({len(self.table)} configurations: {parts or 'none'})"

    # --- views -----------------------------------------------------------------------
    @property
    def ok(self) -> pd.DataFrame:
        """The rows that were measured (status ``ok``)."""
        return self.table[self.table["status"] == "ok"]

    def summary(self) -> pd.DataFrame:
        """The columns most people read first: latency percentiles, throughput, load, memory.

        A run on a cluster (``run(plan, cluster=...)``) adds the ``machine`` column after the label.
        """
        columns = list(SUMMARY)
        if self.on_cluster:
            columns.insert(1, "machine")
        return self.table[columns].copy()

    @property
    def on_cluster(self) -> bool:
        """True when the rows were measured on cluster machines (the ``machine`` column is set)."""
        return bool((self.table["machine"] != "").any())

    def problems(self) -> pd.DataFrame:
        """Rows that were not measured, or that ran nodes off the requested provider."""
        bad = (self.table["status"] != "ok") | (self.table["fallback"] != "")
        columns = ["label", "status", "error", "package", "fallback"]
        if self.on_cluster:
            columns.insert(1, "machine")
        return self.table.loc[bad, columns]

    def operators(self) -> pd.DataFrame:
        """Per-operator time shares, long form: label, op, provider, ms_per_run, share."""
        rows = []
        for _, row in self.table.iterrows():
            for op in row["top_operators"] if isinstance(row["top_operators"], list) else []:
                rows.append({"label": row["label"], **op})
        return pd.DataFrame(rows, columns=["label", "op", "provider", "ms_per_run", "share"])

    def node_times(self) -> pd.DataFrame:
        """Kernel time per node, long form: label, node, op, provider, calls, ms_per_run.

        Draw it on the graph with ``graph.time_overlay(result)`` (or a GraphView's overlays).
        """
        rows = [
            {"label": row["label"], **entry}
            for _, row in self.table.iterrows()
            for entry in (row["node_times"] if isinstance(row["node_times"], list) else [])
        ]
        columns = ["label", "node", "op", "provider", "calls", "ms_per_run"]
        return pd.DataFrame(rows, columns=columns)

    def latencies(self) -> pd.DataFrame:
        """Every kept latency sample, long form: label, latency_ms."""
        rows = [
            {"label": row["label"], "latency_ms": v}
            for _, row in self.ok.iterrows()
            for v in (row["latencies_ms"] if isinstance(row["latencies_ms"], list) else [])
        ]
        return pd.DataFrame(rows, columns=["label", "latency_ms"])

    # --- JSON --------------------------------------------------------------------------
    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The result as JSON text; written to ``path`` too when given.

        Example:
            >>> from localml_kit import profile
            >>> plan = profile.Plan("digits-mlp", threads=[1], warmup=1, min_iterations=5, min_seconds=0)
            >>> result = profile.run(plan, progress=False)
            >>> text = result.to_json("profile.json")
            >>> json.loads(text)["kind"]
            'localml-kit profile result'
        """
        records = self.table.astype(object).where(self.table.notna(), None).to_dict("records")
        data = {
            "kind": "localml-kit profile result",
            "version": 1,
            "plan": _json_safe(self.plan),
            "machine": _json_safe(self.machine),
            "machines": _json_safe(self.machines),
            "rows": _json_safe(records),
        }
        text = json.dumps(data, indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> ProfileResult:
        """Load a result saved with :meth:`to_json` (a path, or the JSON text itself).

        Example:
            >>> from localml_kit import profile
            >>> plan = profile.Plan("digits-mlp", threads=[1], warmup=1, min_iterations=5, min_seconds=0)
            >>> result = profile.run(plan, progress=False)
            >>> _ = result.to_json("profile.json")
            >>> again = ProfileResult.from_json("profile.json")
            >>> again.table["label"].tolist()
            ['digits-mlp · cpu · 1t · b1 · all']
            >>> again.table.equals(ProfileResult.from_json(result.to_json()).table)
            True
        """
        text = os.fspath(source)
        if not text.lstrip().startswith("{"):
            try:
                text = Path(text).read_text()
            except OSError as exc:
                raise errors.ModelFormatError(
                    f"cannot read a profile result from {source}: {exc}"
                ) from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise errors.ModelFormatError(
                f"{source} is not a profile result (not JSON: {exc})."
            ) from exc
        if not isinstance(data, dict) or data.get("kind") != "localml-kit profile result":
            raise errors.ModelFormatError(f"{source} is not a localml-kit profile result.")
        return cls(
            table=frame(data["rows"]),
            plan=data.get("plan") or {},
            machine=data.get("machine") or {},
            machines=data.get("machines") or {},
        )

    # --- display -----------------------------------------------------------------------
    def _repr_html_(self) -> str:
        table = self.summary()
        warn = ""
        problems = self.problems()
        if len(problems):
            items = "".join(
                f"<li><b>{html.escape(str(r['label']))}</b>"
                + (f" on {html.escape(str(r['machine']))}" if r.get("machine") else "")
                + f": {html.escape(str(r['status']))} "
                f"{html.escape(str(r['fallback'] or r['error']))}</li>"
                for r in problems.to_dict("records")
            )
            warn = f"<div style='color:#b00020'><b>Look here:</b><ul>{items}</ul></div>"
        styled = table.to_html(index=False, float_format=lambda v: f"{v:,.2f}", na_rep="")
        return f"{warn}{styled}"

    # --- plots -------------------------------------------------------------------------
    def plot_latency(self, ax: Any = None, machine: str | None = None) -> Any:
        """Latency distribution per configuration (box: p25-p75, whiskers p1-p99; dots: p50, p90).

        ``machine`` keeps the rows of one cluster machine (see :meth:`plot_machines`).

        Example:
            >>> from localml_kit import profile
            >>> plan = profile.Plan("digits-mlp", threads=[1], warmup=1, min_iterations=5, min_seconds=0)
            >>> result = profile.run(plan, progress=False)
            >>> ax = result.plot_latency()
            >>> ax.get_title()
            'Latency distribution'
            >>> import matplotlib.pyplot as plt
            >>> plt.close(ax.figure)
        """
        plt = _pyplot()
        ok = self.ok if machine is None else self.ok[self.ok["machine"] == machine]
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.45 * max(len(ok), 2) + 1.2))
        data = [np.asarray(v, dtype=float) for v in ok["latencies_ms"]]
        if data:
            ax.boxplot(data, whis=(1, 99), showfliers=False, widths=0.6, **_horizontal())
            names = ok["label"] if machine is not None else _with_machine(ok)
            ax.set_yticks(range(1, len(data) + 1), [_plot.label(v) for v in names])
            ax.scatter(
                ok["p50_ms"], range(1, len(data) + 1), marker="|", s=200, label="p50", zorder=3
            )
            ax.scatter(ok["p90_ms"], range(1, len(data) + 1), marker="x", label="p90", zorder=3)
            spread = max(d.max() for d in data) / max(min(d.min() for d in data), 1e-9)
            if spread > 30:
                ax.set_xscale("log")
            ax.invert_yaxis()
            # Beside the axes, never over a whisker.
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        ax.set_xlabel("latency per run (ms)")
        ax.set_title("Latency distribution" if machine is None else f"Latency on {machine}")
        return ax

    def plot_machines(self, fig: Any = None) -> Any:
        """One latency plot per cluster machine, stacked, on one shared time axis; the figure.

        A run without a cluster has one machine, this one.

        Example:
            >>> from localml_kit import profile
            >>> plan = profile.Plan("digits-mlp", threads=[1], warmup=1, min_iterations=5, min_seconds=0)
            >>> fig = profile.run(plan, progress=False).plot_machines()
            >>> [ax.get_title() for ax in fig.axes]
            ['Latency distribution']
            >>> import matplotlib.pyplot as plt
            >>> plt.close(fig)
        """
        plt = _pyplot()
        names = list(dict.fromkeys(self.table["machine"])) or [""]
        rows = max(len(self.ok), 2) / len(names)
        if fig is None:
            fig = plt.figure(figsize=(8, len(names) * (0.45 * rows + 1.2)))
        axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
        for ax, name in zip(axes, names, strict=True):
            self.plot_latency(ax=ax, machine=name if name else None)
            if ax is not axes[-1]:
                ax.set_xlabel("")
        return fig

    def plot_operators(self, ax: Any = None, top: int = 8) -> Any:
        """Share of kernel time per operator type, one stacked bar per configuration.

        Example:
            >>> from localml_kit import profile
            >>> plan = profile.Plan("digits-mlp", threads=[1], warmup=1, min_iterations=5, min_seconds=0)
            >>> result = profile.run(plan, progress=False)
            >>> ax = result.plot_operators(top=6)
            >>> ax.get_title()
            'Where the time goes'
            >>> import matplotlib.pyplot as plt
            >>> plt.close(ax.figure)
        """
        plt = _pyplot()
        ops = self.operators()
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.45 * max(ops["label"].nunique(), 2) + 1.5))
        if not ops.empty:
            ranked = ops.groupby("op")["share"].sum().sort_values(ascending=False)
            keep = [op for op in ranked.index if op != "(other)"][:top]
            ops = ops.assign(op=ops["op"].where(ops["op"].isin(keep), "(other)"))
            wide = ops.pivot_table(
                index="label", columns="op", values="share", aggfunc="sum"
            ).fillna(0)
            wide = wide.reindex(columns=[*keep, "(other)"] if "(other)" in wide else keep)
            labels = list(dict.fromkeys(ops["label"]))
            wide = wide.reindex(labels) * 100
            wide.plot.barh(stacked=True, ax=ax, width=0.7, colormap="tab10")
            ax.invert_yaxis()
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        ax.set_xlabel("share of operator time (%)")
        ax.set_ylabel("")
        ax.set_title("Where the time goes")
        return ax

    def plot_memory(self, ax: Any = None) -> Any:
        """Memory above the process baseline: after load, peak during load, peak during runs (MB).

        Example:
            >>> from localml_kit import profile
            >>> plan = profile.Plan("digits-mlp", threads=[1], warmup=1, min_iterations=5, min_seconds=0)
            >>> result = profile.run(plan, progress=False)
            >>> ax = result.plot_memory()
            >>> ax.get_title()
            'Memory per configuration'
            >>> import matplotlib.pyplot as plt
            >>> plt.close(ax.figure)
        """
        plt = _pyplot()
        ok = self.ok.set_axis(pd.Index(_with_machine(self.ok), name="label"))
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.45 * max(len(ok), 2) + 1.2))
        cols = {"session_mb": "session", "load_peak_mb": "load peak", "run_peak_mb": "run peak"}
        if "gpu_run_peak_mb" in ok and ok["gpu_run_peak_mb"].notna().any():
            cols["gpu_run_peak_mb"] = "GPU run peak"
        if len(ok):
            ok[list(cols)].rename(columns=cols).plot.barh(ax=ax, width=0.75)
            ax.invert_yaxis()
        ax.set_xlabel("MB above the process baseline")
        ax.set_ylabel("")
        ax.set_title("Memory per configuration")
        return ax
