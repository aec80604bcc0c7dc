"""Settings for the JupyterLab that ``make lab`` installs: quiet and offline-friendly.

Run as ``python -m localml_kit.labsetup``; writes
``<prefix>/share/jupyter/lab/settings/overrides.json`` so that JupyterLab does not
fetch news or check for updates (both need the internet and cover the page with
a toast).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["OVERRIDES", "write_overrides"]

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


if __name__ == "__main__":
    print(f"JupyterLab settings: {write_overrides()}")
