"""tract: a Rust inference engine that reads the same ONNX files (PyPI package ``tract``).

tract plans a model for concrete input shapes (it optimises the graph for
them), so the kit keeps one plan per set of input shapes. It runs on one
thread here, and names outputs after their nodes; the kit gives them the
graph's output names back.

Example:
    >>> from localml_kit.engines import tract
    >>> (tract.version() or "not installed") >= "0.23"
    True
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

__all__ = ["PACKAGE", "reason", "version"]

PACKAGE = "tract"


def version() -> str:
    """The installed tract's version, or ``""`` when it is not installed.

    Example:
        >>> isinstance(version(), str)
        True
    """
    if importlib.util.find_spec("tract") is None:
        return ""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def reason() -> str:
    """Why tract cannot run here (``""`` when it can).

    Example:
        >>> isinstance(reason(), str)
        True
    """
    if version():
        return ""
    return (
        "the tract package is not installed: pip install 'localml-kit[engines]' "
        "(or pip install tract)"
    )
