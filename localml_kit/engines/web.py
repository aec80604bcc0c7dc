"""ONNX Runtime Web: the npm package, fetched once at build time, and whether it can run here.

The web engine runs onnxruntime-web's WebAssembly backend (or WebGPU, where
the browser offers an adapter) in headless Chromium. Its files come from the
npm package ``onnxruntime-web``, fetched by ``npm pack`` at build time (``make
samples`` runs :func:`setup`), checked against a pinned sha256, and unpacked
into ``<kit home>/engines/onnxruntime-web-<version>/`` (only the files the page
loads, plus ``package.json`` with the MIT licence field). Nothing touches the
network at run time.

Example:
    >>> from localml_kit.engines import web
    >>> web.reason() or "ready"
    'ready'

Usage (it may run npm)::

    web.setup()  # PosixPath('~/.cache/localml-kit/engines/onnxruntime-web-1.30.0')
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from localml_kit import _download, config
from localml_kit.engines._driver import BACKEND_FILES

__all__ = ["FILES", "SHA256", "VERSION", "folder", "ready", "reason", "setup"]

VERSION = "1.30.0"
SPEC = f"onnxruntime-web@{VERSION}"
TARBALL = f"onnxruntime-web-{VERSION}.tgz"
SHA256 = "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71"
# The members kept: the scripts and WebAssembly modules of the wasm and webgpu backends.
FILES: tuple[str, ...] = (
    "package.json",
    *(f"dist/{name}" for names in BACKEND_FILES.values() for name in names),
)
MANIFEST = _download.NPM_MANIFEST


def folder() -> Path:
    """Where the unpacked files live: ``<kit home>/engines/onnxruntime-web-<version>``."""
    return config.engines_dir() / f"onnxruntime-web-{VERSION}"


def ready() -> bool:
    """True when every kept file is there with the size its manifest records.

    Example:
        >>> isinstance(ready(), bool)
        True
    """
    return _download.npm_files_ready(folder(), (_package(),))


def _package() -> _download.NpmPackage:
    # Built at call time: the pinned sha256 is read where it is used.
    members = tuple((f"package/{member}", Path(member).name) for member in FILES)
    return _download.NpmPackage("onnxruntime-web", VERSION, SHA256, members)


def reason() -> str:
    """Why the web engine cannot run here (``""`` when it can): files, playwright, Chromium.

    Example:
        >>> isinstance(reason(), str)
        True
    """
    problems = []
    if not ready():
        how = "`make samples`, or `python -m localml_kit.engines setup`"
        if shutil.which("npm") is None:
            problems.append(
                f"onnxruntime-web {VERSION} is not in {folder()} and npm is not installed: "
                f"install Node.js (it brings npm), then run {how}"
            )
        else:
            problems.append(f"onnxruntime-web {VERSION} is not in {folder()}: run {how}")
    if importlib.util.find_spec("playwright") is None:
        problems.append("playwright is not installed: pip install 'localml-kit[engines]'")
    chromium, why = config.chromium()
    if chromium is None:
        problems.append(why)
    return "; ".join(problems)


def setup(*, force: bool = False) -> Path:
    """Fetch onnxruntime-web with ``npm pack`` (once), check its sha256, keep the files the page
    loads; the folder.

    Offline (``LOCALML_OFFLINE``) a cached tarball is used, else
    :class:`~localml_kit.errors.OfflineError`; without npm,
    :class:`~localml_kit.errors.BuildDependencyError`. The folder appears
    complete or not at all (staging folder, manifest, rename).

    Example:
        >>> setup().name  # already prepared by `make samples`: returns at once
        'onnxruntime-web-1.30.0'
    """
    return _download.npm_files(folder(), (_package(),), lock="engine-onnxruntime-web", force=force)
