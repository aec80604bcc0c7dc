"""Settings for the JupyterLab that ``make lab`` installs: quiet and offline-friendly.

Run as ``python -m localml_kit.labsetup``; writes
``<prefix>/share/jupyter/lab/settings/overrides.json`` so that JupyterLab does not
fetch news or check for updates (both need the internet and cover the page with
a toast), and, in a source checkout, builds the graph widget's JavaScript
(``--widget`` builds only that): ``npm ci`` installs the versions pinned in
``js/graph-view/package-lock.json`` (dagre, esbuild), then esbuild bundles
``src/graph_view.js`` into ``localml_kit/widgets/static/graph_view.js``, the file
the wheel carries. Without npm it prints a note: the widget then says how to
build it, and netron still shows graphs.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from localml_kit import _proc

__all__ = ["BUNDLE", "JS_SOURCE", "OVERRIDES", "build_widget", "write_overrides"]

JS_SOURCE = Path(__file__).resolve().parent.parent / "js" / "graph-view"
BUNDLE = Path(__file__).resolve().parent / "widgets" / "static" / "graph_view.js"

OVERRIDES: dict[str, dict[str, object]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def write_overrides(prefix: str | Path | None = None) -> Path:
    """Merge the kit's JupyterLab overrides into ``overrides.json`` under ``prefix``.

    Example:
        >>> path = write_overrides("env")
        >>> path.relative_to("env").as_posix()
        'share/jupyter/lab/settings/overrides.json'
        >>> json.loads(path.read_text())["@jupyterlab/apputils-extension:notification"]
        {'fetchNews': 'false', 'checkForUpdates': False}
    """
    root = Path(sys.prefix if prefix is None else prefix)
    path = root / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = {}
    for plugin, settings in OVERRIDES.items():
        current.setdefault(plugin, {}).update(settings)
    path.write_text(json.dumps(current, indent=2))
    return path


def build_widget(source: Path = JS_SOURCE, bundle: Path = BUNDLE) -> Path | None:
    """Build the graph widget's bundle from ``source`` (npm ci, then esbuild); None without npm.

    Reproducible: the lock file pins every package (with its integrity hash),
    and the esbuild options are fixed in ``package.json``'s ``build`` script.
    Outside a source checkout (no ``package-lock.json``) it says so and builds nothing.

    Example:
        >>> build_widget(Path("not-a-checkout"), Path("bundle.js")) is None
        note: ...
        True
    """
    npm = shutil.which("npm")
    if npm is None:
        print(
            "note: npm is not installed, so the graph widget's JavaScript was not built; "
            "install Node.js (it brings npm) and run `python -m localml_kit.labsetup --widget`. "
            "Graphs still show with netron (graph.show)."
        )
        return None
    if not (source / "package-lock.json").is_file():
        print(f"note: no {source}/package-lock.json (not a source checkout): nothing to build")
        return None
    _proc.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=source,
        what="npm ci for the graph widget",
        timeout=600,
    )
    _proc.run(
        [npm, "run", "--silent", "build"],
        cwd=source,
        what="esbuild (the graph widget)",
        timeout=120,
    )
    if not bundle.is_file():
        raise FileNotFoundError(
            f"esbuild ran but {bundle} is missing: see js/graph-view/package.json"
        )
    return bundle


if __name__ == "__main__":
    if "--widget" not in sys.argv[1:]:
        print(f"JupyterLab settings: {write_overrides()}")
    built = build_widget()
    if built is not None:
        print(f"graph widget: {built} ({built.stat().st_size / 1e3:.1f} kB)")
