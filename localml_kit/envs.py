"""Python environments that serve extra execution providers.

Some providers ship in a package that *replaces* ``onnxruntime`` itself:
``onnxruntime-openvino`` (OpenVINO, on an ordinary x86 CPU) and
``onnxruntime-gpu`` (CUDA, TensorRT). They cannot live in the kit's own
environment, so the kit makes a venv for each under ``<kit home>/envs/NAME``
and records which providers it serves. The profiler runs every configuration
in a subprocess, so it simply starts that venv's Python for those providers.

Example:
    >>> from localml_kit import envs
    >>> sorted(envs.RECIPES)
    ['gpu', 'openvino']
    >>> envs.get("openvino").providers  # made by envs.create("openvino")
    ('OpenVINOExecutionProvider', 'CPUExecutionProvider')
    >>> envs.find("OpenVINOExecutionProvider").python
    '.../envs/openvino/bin/python'
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import filelock
import pandas as pd

from localml_kit import _download, _proc, config, errors

__all__ = [
    "RECIPES",
    "Environment",
    "Recipe",
    "create",
    "envs_dir",
    "find",
    "get",
    "list",
    "query_python",
    "remove",
]

RECORD = "localml-env.json"


@dataclass(frozen=True)
class Recipe:
    """What goes into one provider environment and which providers it should serve."""

    name: str
    requirements: tuple[str, ...]
    providers: tuple[str, ...]
    description: str


RECIPES: dict[str, Recipe] = {
    "openvino": Recipe(
        name="openvino",
        requirements=("onnxruntime-openvino==1.24.1", "numpy>=1.26", "psutil>=5.9"),
        providers=("OpenVINOExecutionProvider",),
        description="Intel OpenVINO: runs on any x86 CPU (and Intel GPUs/NPUs); ~450 MB.",
    ),
    "gpu": Recipe(
        name="gpu",
        requirements=(
            "onnxruntime-gpu[cuda,cudnn]==1.31.1",
            "numpy>=1.26",
            "psutil>=5.9",
            "nvidia-ml-py>=12",
        ),
        providers=("CUDAExecutionProvider", "TensorrtExecutionProvider"),
        description=(
            "NVIDIA CUDA (and TensorRT when its libraries are installed too, e.g. "
            "extra=['tensorrt-cu12']); needs an NVIDIA driver; several GB."
        ),
    ),
}


@dataclass(frozen=True)
class Environment:
    """A ready provider environment: its Python, its ONNX Runtime and the providers it offers."""

    name: str
    path: str
    python: str
    onnxruntime: str
    providers: tuple[str, ...]
    requirements: tuple[str, ...]
    create_seconds: float
    created_at: str

    def to_dict(self) -> dict:
        return asdict(self)


def envs_dir() -> Path:
    """Where provider environments live: ``home() / "envs"``."""
    return config.home() / "envs"


def _python_in(folder: Path) -> Path:
    if os.name == "nt":
        return folder / "Scripts" / "python.exe"
    return folder / "bin" / "python"


def _read(folder: Path) -> Environment | None:
    try:
        data = json.loads((folder / RECORD).read_text())
        env = Environment(
            name=str(data["name"]),
            path=str(folder),
            python=str(data["python"]),
            onnxruntime=str(data["onnxruntime"]),
            providers=tuple(data["providers"]),
            requirements=tuple(data["requirements"]),
            create_seconds=float(data.get("create_seconds", 0.0)),
            created_at=str(data.get("created_at", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return env if Path(env.python).exists() else None


def query_python(
    python: str | os.PathLike[str], timeout: float = 120
) -> tuple[str, tuple[str, ...]]:
    """The ONNX Runtime version and providers that another Python offers (run in a subprocess).

    Example:
        >>> import sys
        >>> version, providers = query_python(sys.executable)
        >>> "CPUExecutionProvider" in providers
        True
    """
    code = (
        "import json, onnxruntime as o; "
        "print(json.dumps([o.__version__, o.get_available_providers()]))"
    )
    try:
        proc = _proc.run(
            [python, "-c", code],
            what=f"the Python {python} (asked for its providers)",
            timeout=timeout,
            check=False,
        )
    except errors.ChildProcessFailedError as exc:  # not there, not executable
        raise errors.EnvironmentNotReadyError(str(exc)) from exc
    except errors.ChildTimeoutError as exc:
        raise errors.EnvironmentNotReadyError(
            f"{exc}. Check that it is a working Python with onnxruntime installed."
        ) from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise errors.EnvironmentNotReadyError(
            f"{python} cannot import onnxruntime ({last}); install an onnxruntime package in it."
        )
    version, providers = json.loads(proc.stdout.strip().splitlines()[-1])
    return str(version), tuple(providers)


def get(name: str) -> Environment:
    """A ready provider environment by name; one not created yet names the command that creates it.

    Example:
        >>> get("openvino").providers[0]
        'OpenVINOExecutionProvider'
        >>> get("no-such-env")
        Traceback (most recent call last):
        localml_kit.errors.EnvironmentNotReadyError: provider environment 'no-such-env' is not ready in .... Known recipes: openvino, gpu.
    """
    env = _read(envs_dir() / name)
    if env is None:
        hint = (
            f"Run `localml-kit envs create {name}` (or `envs.create({name!r})`)."
            if name in RECIPES
            else f"Known recipes: {', '.join(RECIPES)}."
        )
        raise errors.EnvironmentNotReadyError(
            f"provider environment {name!r} is not ready in {envs_dir()}. {hint}"
        )
    return env


def find(provider: str) -> Environment | None:
    """The first ready environment (by name) that offers ``provider``, or None.

    Example:
        >>> find("NoSuchExecutionProvider") is None
        True
    """
    folder = envs_dir()
    if not folder.is_dir():
        return None
    for sub in sorted(folder.iterdir()):
        env = _read(sub) if sub.is_dir() else None
        if env is not None and provider in env.providers:
            return env
    return None


def list() -> pd.DataFrame:
    """Every recipe and every environment on disk: name, ready, providers, onnxruntime, python.

    Example:
        >>> set(list()["name"]) >= {"openvino", "gpu"}
        True
    """
    names = builtins.list(RECIPES)
    folder = envs_dir()
    if folder.is_dir():
        names += sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in RECIPES)
    rows = []
    for name in names:
        env = _read(folder / name)
        recipe = RECIPES.get(name)
        rows.append(
            {
                "name": name,
                "ready": env is not None,
                "providers": ", ".join(
                    env.providers if env else recipe.providers if recipe else ()
                ),
                "onnxruntime": env.onnxruntime if env else "",
                "requirements": " ".join(
                    env.requirements if env else recipe.requirements if recipe else ()
                ),
                "python": env.python if env else "",
            }
        )
    return pd.DataFrame(rows)


def create(
    name: str,
    *,
    requirements: tuple[str, ...] | None = None,
    extra: tuple[str, ...] = (),
    force: bool = False,
) -> Environment:
    """Create (once) a venv under ``envs_dir()/name`` with a provider package, and record it.

    ``name`` is a recipe (``openvino``, ``gpu``) or any name with explicit
    ``requirements``. A ready environment is returned at once unless ``force``.
    The venv is made from the running Python; packages come through pip (and
    ``LOCALML_PIP_INDEX_URL`` when set). A failed creation leaves nothing behind.

    Usage (a venv and a pip install: minutes, and the network)::

        env = create("openvino")
        env.providers  # ('OpenVINOExecutionProvider', 'CPUExecutionProvider')
    """
    recipe = RECIPES.get(name)
    if requirements is None:
        if recipe is None:
            raise errors.UnknownEnvironmentError(
                f"no recipe for a provider environment named {name!r}; recipes: "
                f"{', '.join(RECIPES)}. For another one, pass requirements=[...]."
            )
        requirements = recipe.requirements
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise errors.ConfigError(f"environment name {name!r}: use letters, digits, - and _.")
    reqs = (*requirements, *extra)
    folder = envs_dir() / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_dir = config.home() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(lock_dir / f"env-{name}.lock"), timeout=3600):
        existing = _read(folder)
        if existing is not None and not force and existing.requirements == reqs:
            return existing
        if folder.exists():
            shutil.rmtree(folder)
        start = time.perf_counter()
        try:
            proc = _proc.run(
                [sys.executable, "-m", "venv", str(folder)],
                what=f"making a venv in {folder}",
                timeout=600,
                check=False,
            )
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise errors.EnvironmentCreateError(
                    f"could not create a venv in {folder}: {last}. On Debian/Ubuntu install "
                    "python3-venv; check free disk space."
                )
            python = _python_in(folder)
            _download.pip_install(python, builtins.list(reqs))
            try:
                version, providers = query_python(python)
            except errors.EnvironmentNotReadyError as exc:
                raise errors.EnvironmentCreateError(
                    f"environment {name!r} was installed but {exc}"
                ) from exc
            if recipe is not None and requirements == recipe.requirements:
                missing = [p for p in recipe.providers[:1] if p not in providers]
                if missing:
                    raise errors.EnvironmentCreateError(
                        f"environment {name!r} installed, but its onnxruntime {version} offers "
                        f"{', '.join(providers)}, not {', '.join(missing)}."
                    )
            record = {
                "name": name,
                "python": str(python),
                "onnxruntime": version,
                "providers": builtins.list(providers),
                "requirements": builtins.list(reqs),
                "create_seconds": round(time.perf_counter() - start, 1),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            (folder / RECORD).write_text(json.dumps(record, indent=2))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    env = _read(folder)
    assert env is not None
    return env


def remove(name: str) -> bool:
    """Delete a provider environment; True when there was one.

    Example:
        >>> remove("no-such-env")
        False
    """
    folder = envs_dir() / name
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True
