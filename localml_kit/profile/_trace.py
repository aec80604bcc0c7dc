"""Pure functions over ONNX Runtime's profiling trace (``SessionOptions.enable_profiling``).

The trace is a JSON list of Chrome-trace events. Each executed node gives a
``cat == "Node"`` event named ``<node>_kernel_time`` with ``dur`` (microseconds)
and ``args.op_name`` / ``args.provider``; each ``InferenceSession.run`` gives a
``cat == "Session"`` event named ``model_run``.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

Trace = Sequence[dict[str, Any]]

_SUFFIX = "_kernel_time"
_NUMBERED = re.compile(r"(_\d+)+$")


def _op_name(op: str) -> str:
    """Fused provider kernels carry a number per subgraph; count them as one operator type."""
    if "subgraph" in op.lower() or op.startswith("TRTKernel"):
        return _NUMBERED.sub("", op)
    return op


def load_trace(source: str | os.PathLike[str] | Trace) -> list[dict[str, Any]]:
    """A trace from a file path or an already parsed list."""
    if isinstance(source, str | os.PathLike):
        data = json.loads(Path(source).read_text())
        return list(data) if isinstance(data, list) else list(data.get("traceEvents", []))
    return list(source)


def kernel_events(trace: Trace, *, skip_first_run: bool = True) -> pd.DataFrame:
    """One row per node execution: run, node, op, provider, dur_us.

    With ``skip_first_run`` (and at least two runs in the trace) the first
    run is left out: it pays for one-off allocations.

    Example:
        >>> events = [
        ...     {"cat": "Session", "name": "model_run", "ts": 0, "dur": 10},
        ...     {"cat": "Node", "name": "mm_kernel_time", "ts": 1, "dur": 7,
        ...      "args": {"op_name": "MatMul", "provider": "CPUExecutionProvider"}},
        ... ]
        >>> kernel_events(events)[["node", "op", "dur_us"]].values.tolist()
        [['mm', 'MatMul', 7]]
    """
    runs = sorted(
        (e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e.get("ts", 0),
    )
    starts = [r.get("ts", 0) for r in runs]
    rows = []
    for event in trace:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith(_SUFFIX):
            continue
        args = event.get("args") or {}
        ts = event.get("ts", 0)
        run = bisect.bisect_right(starts, ts) - 1  # the last run begun by then
        rows.append(
            {
                "run": max(run, 0),
                "node": name[: -len(_SUFFIX)],
                "op": _op_name(str(args.get("op_name", "?"))),
                "provider": str(args.get("provider", "?")),
                "dur_us": event.get("dur", 0),
            }
        )
    table = pd.DataFrame(rows, columns=["run", "node", "op", "provider", "dur_us"])
    if skip_first_run and len(starts) >= 2:
        table = table[table["run"] > 0].reset_index(drop=True)
    return table


def runs_in(trace: Trace, *, skip_first_run: bool = True) -> int:
    """How many ``model_run`` events the trace holds (the first one left out when asked)."""
    n = sum(1 for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run")
    return n - 1 if skip_first_run and n >= 2 else n


def operator_times(trace: Trace, *, top: int | None = None) -> pd.DataFrame:
    """Time per operator type and provider, largest first, with its share of all kernel time.

    Columns: op, provider, calls, total_ms, ms_per_run, share (0..1). With
    ``top``, the rest is folded into one ``(other)`` row so shares still sum to 1.

    Example:
        >>> events = [{"cat": "Node", "name": f"n{i}_kernel_time", "dur": d,
        ...            "args": {"op_name": op, "provider": "CPUExecutionProvider"}}
        ...           for i, (op, d) in enumerate([("MatMul", 30), ("Add", 10)])]
        >>> operator_times(events)[["op", "share"]].values.tolist()
        [['MatMul', 0.75], ['Add', 0.25]]
    """
    events = kernel_events(trace)
    columns = ["op", "provider", "calls", "total_ms", "ms_per_run", "share"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    runs = max(runs_in(trace), 1)
    grouped = (
        events.groupby(["op", "provider"], as_index=False)
        .agg(calls=("dur_us", "size"), total_us=("dur_us", "sum"))
        .sort_values("total_us", ascending=False, kind="stable")
    )
    total = float(grouped["total_us"].sum()) or 1.0
    grouped["total_ms"] = grouped["total_us"] / 1000.0
    grouped["ms_per_run"] = grouped["total_ms"] / runs
    grouped["share"] = grouped["total_us"] / total
    table = grouped[columns].reset_index(drop=True)
    if top is not None and len(table) > top:
        rest = table.iloc[top:]
        other = {
            "op": "(other)",
            "provider": "",
            "calls": int(rest["calls"].sum()),
            "total_ms": float(rest["total_ms"].sum()),
            "ms_per_run": float(rest["ms_per_run"].sum()),
            "share": float(rest["share"].sum()),
        }
        table = pd.concat([table.iloc[:top], pd.DataFrame([other])], ignore_index=True)
    return table


def node_providers(trace: Trace) -> dict[str, str]:
    """Which provider ran each executed node: ``{node name: provider}``.

    Example:
        >>> node_providers([{"cat": "Node", "name": "a_kernel_time",
        ...                  "args": {"op_name": "Relu", "provider": "CUDAExecutionProvider"}}])
        {'a': 'CUDAExecutionProvider'}
    """
    events = kernel_events(trace, skip_first_run=False)
    return dict(zip(events["node"], events["provider"], strict=True))


def node_times(trace: Trace) -> pd.DataFrame:
    """Kernel time per node, largest first: node, op, provider, calls, ms_per_run.

    Example:
        >>> events = [{"cat": "Node", "name": f"{n}_kernel_time", "dur": d,
        ...            "args": {"op_name": "MatMul", "provider": "CPUExecutionProvider"}}
        ...           for n, d in [("a", 300), ("b", 100), ("a", 100)]]
        >>> node_times(events)[["node", "calls", "ms_per_run"]].values.tolist()
        [['a', 2, 0.4], ['b', 1, 0.1]]
    """
    events = kernel_events(trace)
    columns = ["node", "op", "provider", "calls", "ms_per_run"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    runs = max(runs_in(trace), 1)
    grouped = (
        events.groupby(["node", "op", "provider"], as_index=False, sort=False)
        .agg(calls=("dur_us", "size"), total_us=("dur_us", "sum"))
        .sort_values("total_us", ascending=False, kind="stable")
    )
    grouped["ms_per_run"] = (grouped["total_us"] / 1000.0 / runs).round(5)
    grouped["calls"] = grouped["calls"].astype(int)
    return grouped[columns].reset_index(drop=True)
