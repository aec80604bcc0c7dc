"""Tables for people: a DataFrame shown with units a reader expects, the data left as it is.

:func:`styled` formats by column name: times in ms with two decimals, seconds
with two, memory in MB without decimals, byte counts (``*_bytes``) as KB / MB / GB,
shares and agreements as percentages, cosines with four decimals, rates with one;
other floats with four significant digits, other integers with thousands
separators; missing values as ``-``. It returns a pandas ``Styler`` (what a notebook
shows); the DataFrame itself keeps its full precision for code.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"p50_ms": [2.853421], "share": [0.4213], "run_peak_mb": [812.77]})
    >>> formats(frame)["p50_ms"](2.853421), formats(frame)["share"](0.4213)
    ('2.85', '42.1%')
    >>> styled(frame).to_html().count("812.77")
    0
    >>> sizes = pd.DataFrame({"size_bytes": [90_400_000], "parameters": [22_713_216]})
    >>> [f(v) for f, v in zip(formats(sizes).values(), sizes.iloc[0])]
    ['90.4 MB', '22,713,216']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["formats", "styled"]

_PERCENT = ("share", "agreement", "top1", "topk", "top5", "neighbours", "fraction", "ratio_pct")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(pattern: str) -> Callable[[Any], str]:
    def format_one(value: Any) -> str:
        if _missing(value):
            return "-"
        try:
            return pattern.format(value)
        except (TypeError, ValueError):
            return str(value)

    return format_one


def _size(value: Any) -> str:
    if _missing(value) or value is pd.NA:
        return "-"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _integer(value: Any) -> str:
    return "-" if _missing(value) or value is pd.NA else f"{int(value):,}"


def _rule(column: str) -> Callable[[Any], str]:
    name = column.lower()
    if name.endswith("_bytes") or name == "bytes":
        return _size
    if name.endswith("_ms") or name.startswith("ms") or "_ms_" in name:
        return _fmt("{:,.2f}")
    if name.endswith("_mb"):
        return _fmt("{:,.0f}")
    if name.endswith("_s") and not name.endswith("_per_s"):
        return _fmt("{:,.2f}")
    if any(word in name for word in _PERCENT):
        return _fmt("{:.1%}")
    if "cosine" in name:
        return _fmt("{:.4f}")
    if name.endswith("_per_s") or name.endswith("per_s"):
        return _fmt("{:,.1f}")
    return _fmt("{:.4g}")


def formats(frame: pd.DataFrame) -> dict[Any, Callable[[Any], str]]:
    """The formatter for each numeric column of ``frame``, chosen by its name and type."""
    chosen: dict[Any, Callable[[Any], str]] = {}
    for column in frame.columns:
        values, name = frame[column], str(column)
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        if name.lower().endswith("_bytes") or name.lower() == "bytes":
            chosen[column] = _size
        elif pd.api.types.is_float_dtype(values):
            chosen[column] = _rule(name)
        else:
            chosen[column] = _integer
    return chosen


def styled(frame: pd.DataFrame, *, index: bool = False) -> Any:
    """``frame`` as a pandas Styler with readable numbers (see the module docstring).

    ``index=False`` hides the row index (a plain table).
    """
    chosen: dict[Any, Any] = dict(formats(frame))
    styler = frame.style.format(chosen, na_rep="-")
    if not index:
        styler = styler.hide(axis="index")
    return styler
