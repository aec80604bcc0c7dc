"""Workshops: the series executed into a folder that opens anywhere, offline, with its widgets.

:func:`build` runs each notebook in a fresh kernel and writes the executed
``.ipynb`` files, one HTML page per notebook whose widgets draw from their saved
state with nothing fetched from the network, an index page and a zip.
:func:`serve` serves such a folder on 127.0.0.1. :func:`copy_series` puts the
notebooks that ship with the kit into a folder of yours (what ``localml-kit lab``
and ``localml-kit notebooks`` do).

Example:
    >>> from localml_kit import workshop
    >>> [p.name for p in workshop.notebooks()][0]
    '00_setup_and_hardware.ipynb'
    >>> workshop.copy_series("mine").written[:1]
    ('00_setup_and_hardware.ipynb',)

Usage (it runs the notebooks: minutes)::

    bundle = workshop.build("workshop", notebooks=["00", "04"])
    [(r.name, r.status, r.seconds) for r in bundle.runs]
"""

from __future__ import annotations

from localml_kit.workshop._assets import ready as assets_ready
from localml_kit.workshop._assets import setup as setup_assets
from localml_kit.workshop._build import Bundle, NotebookRun, build
from localml_kit.workshop._series import Copied, folder, notebooks, select
from localml_kit.workshop._series import copy_to as copy_series
from localml_kit.workshop._serve import Server, serve

__all__ = [
    "Bundle",
    "Copied",
    "NotebookRun",
    "Server",
    "assets_ready",
    "build",
    "copy_series",
    "folder",
    "notebooks",
    "select",
    "serve",
    "setup_assets",
]
