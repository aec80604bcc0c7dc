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
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import filelock

from localml_kit import _download, config, errors
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
MANIFEST = "manifest.json"


def folder() -> Path:
    """Where the unpacked files live: ``<kit home>/engines/onnxruntime-web-<version>``."""
    return config.engines_dir() / f"onnxruntime-web-{VERSION}"


def ready() -> bool:
    """True when every kept file is there with the size its manifest records.

    Example:
        >>> isinstance(ready(), bool)
        True
    """
    try:
        manifest = json.loads((folder() / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = manifest.get("files", {})
    return set(files) == {Path(f).name for f in FILES} and all(
        (folder() / name).is_file() and (folder() / name).stat().st_size == int(entry["size"])
        for name, entry in files.items()
    )


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
    target = folder()
    if ready() and not force:
        return target
    locks = config.home() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(locks / "engine-onnxruntime-web.lock"), timeout=1800):
        if ready() and not force:
            return target
        tarball = _download.npm_pack(SPEC, TARBALL, SHA256)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".web-"))
        try:
            files = {}
            with tarfile.open(tarball, "r:gz") as archive:
                for member in FILES:
                    try:
                        info = archive.getmember(f"package/{member}")
                    except KeyError as exc:
                        raise errors.EnvironmentCreateError(
                            f"{TARBALL} has no {member}: the package changed shape; "
                            "pin the version the kit knows."
                        ) from exc
                    source = archive.extractfile(info)
                    if source is None or not info.isfile():
                        raise errors.UnsafeArchiveError(f"{TARBALL}: {member} is not a file")
                    name = Path(member).name
                    with source, (staging / name).open("wb") as out:
                        shutil.copyfileobj(source, out)
                    files[name] = {
                        "size": (staging / name).stat().st_size,
                        "sha256": _download.sha256_file(staging / name),
                    }
            manifest = {"package": SPEC, "tarball_sha256": SHA256, "files": files}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target
