"""The widget front end of a workshop bundle: npm packages fetched once at setup, never at page-open.

A bundle page draws its widgets with ``@jupyter-widgets/html-manager``'s
``embed-amd.js`` (loaded by ``requirejs``), anywidget's front end (the
``nbextension/index.js`` of the installed ``anywidget`` package, served as
``anywidget.js``) and the icon fonts html-manager asks for. The npm packages are
fetched with ``npm pack`` at pinned versions, checked against their sha256 and
unpacked into ``<kit home>/workshop/widget-assets-<version>/`` (``make samples``
runs :func:`setup`); a bundle copies that folder into its ``assets/``.

Example:
    >>> from localml_kit.workshop import _assets
    >>> _assets.ready()  # prepared by `make samples`
    True
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from localml_kit import _download, config, errors

NpmPackage = _download.NpmPackage

_FONTS = (
    "1551f4f60c37af51121f.woff2",
    "7a3337626410ca2f4071.woff2",
    "d878b0a6a1144760244f.woff2",
    "2285773e6b4b172f07d9.woff",
    "bb58e57c48a3e911f15f.woff",
    "eeccf4f66002c6f2ba24.woff",
    "491974d108fe4002b2aa.ttf",
    "527940b104eb2ea366c8.ttf",
    "be9ee23c0c6390141475.ttf",
    "23f19bb08961f37aaf69.eot",
    "77206a6bb316fa0aded5.eot",
    "9bbb245e67a133f6e486.eot",
    "2f517e09eb2ca6650ff5.svg",
    "4689f52cc96215721344.svg",
    "7a8b4f130182d19a2d7c.svg",
)

HTML_MANAGER = NpmPackage(
    "@jupyter-widgets/html-manager",
    "1.0.15",
    "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638",
    (
        ("package/dist/embed-amd.js", "embed-amd.js"),
        ("package/dist/embed.js.LICENSE.txt", "html-manager.LICENSE.txt"),
        ("package/package.json", "html-manager.package.json"),
        # The icon fonts: html-manager asks for them under <baseUrl>/@jupyter-widgets/.
        *((f"package/dist/{font}", f"@jupyter-widgets/{font}") for font in _FONTS),
    ),
)
REQUIREJS = NpmPackage(
    "requirejs",
    "2.3.8",
    "777158e89275e16bd51aec3ef714fbcb5dc45789e7078659933bc814916d7dec",
    (("package/require.js", "require.js"), ("package/package.json", "requirejs.package.json")),
)
PACKAGES = (HTML_MANAGER, REQUIREJS)
MANIFEST = _download.NPM_MANIFEST


def folder() -> Path:
    """Where the unpacked files live: ``<kit home>/workshop/widget-assets-<version>``."""
    return config.home() / "workshop" / f"widget-assets-{HTML_MANAGER.version}"


def ready() -> bool:
    """True when every kept file is there with the size its manifest records."""
    return _download.npm_files_ready(folder(), PACKAGES)


def setup(*, force: bool = False) -> Path:
    """Fetch html-manager and requirejs with ``npm pack`` (once), check them, keep what pages load.

    Offline (``LOCALML_OFFLINE``) the cached tarballs are used, else
    :class:`~localml_kit.errors.OfflineError`; without npm,
    :class:`~localml_kit.errors.BuildDependencyError`. The folder appears
    complete or not at all (staging folder, manifest, rename).

    Example:
        >>> setup().name  # already prepared by `make samples`: returns at once
        'widget-assets-1.0.15'
    """
    return _download.npm_files(folder(), PACKAGES, lock="workshop-assets", force=force)


def anywidget_frontend() -> Path:
    """anywidget's front end for pages without JupyterLab: the package's ``nbextension/index.js``.

    Example:
        >>> anywidget_frontend().name
        'index.js'
    """
    spec = importlib.util.find_spec("anywidget")
    if spec is None or spec.origin is None:
        raise errors.OptionalDependencyError(
            "anywidget is not installed, so bundle pages cannot draw anywidget widgets: "
            "pip install 'localml-kit[notebooks]'"
        )
    path = Path(spec.origin).parent / "nbextension" / "index.js"
    if not path.is_file():
        raise errors.OptionalDependencyError(
            f"the installed anywidget has no {path.name} under {path.parent}: "
            "reinstall it (pip install --force-reinstall anywidget)"
        )
    return path


def copy_into(dest: Path) -> None:
    """Fill ``dest`` (a bundle's ``assets/``) with the widget front end: npm files and anywidget."""
    source = setup()
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            out = dest / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
    shutil.copyfile(anywidget_frontend(), dest / "anywidget.js")
