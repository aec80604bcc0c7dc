"""Tables for people: a DataFrame shown with units a reader expects, the data left as it is.

:func:`styled` formats by column name: times in ms with two decimals, seconds
with two, memory in MB without decimals, shares and agreements as percentages,
cosines with four decimals, rates with one; other floats with four significant
digits; missing values as ``-``. It returns a pandas ``Styler`` (what a notebook
shows); the DataFrame itself keeps its full precision for code.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"p50_ms": [2.853421], "share": [0.4213], "run_peak_mb": [812.77]})
    >>> formats(frame)["p50_ms"](2.853421), formats(frame)["share"](0.4213)
    ('2.85', '42.1%')
    >>> styled(frame).to_html().count("812.77")
    0
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


def _rule(column: str) -> Callable[[Any], str]:
    name = column.lower()
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


def formats(frame: pd.DataFrame) -> dict[str, Callable[[Any], str]]:
    """The formatter for each float column of ``frame``, chosen by its name."""
    return {str(c): _rule(str(c)) for c in frame.columns if pd.api.types.is_float_dtype(frame[c])}


def styled(frame: pd.DataFrame, *, index: bool = False) -> Any:
    """``frame`` as a pandas Styler with readable numbers (see the module docstring).

    ``index=False`` hides the row index (a plain table).
    """
    chosen: dict[Any, Any] = dict(formats(frame))
    styler = frame.style.format(chosen, na_rep="-")
    if not index:
        styler = styler.hide(axis="index")
    return styler
