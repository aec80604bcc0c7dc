"""Jupyter views over the kit's cores (ipywidgets; the graph widget on anywidget).

Each widget is a thin view: the analysis lives in a plain-Python module and the
widget's last result is on ``.result``. Widgets are imported lazily so that
``import localml_kit.widgets`` stays cheap.

Example:
    >>> from localml_kit.widgets import ZooBrowser  # imports ipywidgets only now
    >>> browser = ZooBrowser("minilm", sources=["samples"])
    >>> browser.result.id
    'all-minilm-l6-v2'
"""

from __future__ import annotations

import importlib
from typing import Any

_WIDGETS = {
    "ChatPanel": "localml_kit.widgets.chat_panel",
    "GraphView": "localml_kit.widgets.graph_view",
    "GraphViewer": "localml_kit.widgets.graph_viewer",
    "OutputComparator": "localml_kit.widgets.output_comparator",
    "ProfilerPanel": "localml_kit.widgets.profiler_panel",
    "SearchBox": "localml_kit.widgets.search_box",
    "ZooBrowser": "localml_kit.widgets.zoo_browser",
}

__all__ = sorted(_WIDGETS)


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        return getattr(importlib.import_module(_WIDGETS[name]), name)
    raise AttributeError(f"module 'localml_kit.widgets' has no attribute {name!r}")
