"""Small matplotlib helpers: text from model files shown as text, log axes without mathtext.

Labels come from file names, sample names and metadata; matplotlib would read a ``$`` in
them as the start of a formula (and fail on an unbalanced one). Log-axis tick labels are
formatted as plain ``1e-05`` text rather than mathtext.

Example:
    >>> label("my$model.onnx")
    'my\\\\$model.onnx'
"""

from __future__ import annotations

from typing import Any

__all__ = ["label", "plain_log_ticks"]


def label(text: object) -> str:
    """``text`` with ``$`` escaped, so matplotlib draws it as written."""
    return str(text).replace("$", r"\$")


def plain_log_ticks(ax: Any, axis: str = "x") -> None:
    """Format a log axis's ticks as ``1e-05`` (no mathtext)."""
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(lambda value, _pos: f"{value:.0e}" if value > 0 else "0")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(formatter)
