"""Doctest harness: the package's docstring examples run against the real sample cache.

``pytest`` collects the examples in ``localml_kit/`` (``--doctest-modules`` in
pyproject). Tests under ``tests/`` keep their own hermetic settings
(``tests/conftest.py``); this file changes nothing for them. Each docstring
example runs

- with ``LOCALML_HOME`` at the sample cache that ``make samples`` filled, for
  reading only: an example that names a sample (or ``openvino``, the provider
  environment ``make samples`` also makes) fails under ``CI=true``, and is skipped
  elsewhere, when that is not built, like the ``real_home`` fixture;
- offline, with the Hugging Face caches in ``tmp_path``, the Hub endpoint on a closed
  port of 127.0.0.1, and the zoo's model stores and model folders empty;
- in ``tmp_path`` as the current directory, so an example may write files there;
- with the environment restored afterwards, so an example may set variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

from tests.conftest import IN_CI, REAL_HOME, missing_samples

# `python -m localml_kit.cli` runs the CLI as soon as it is imported (sys.exit(main())),
# so doctest collection must not import it; it holds no examples.
collect_ignore = ["localml_kit/cli/__main__.py"]


@pytest.fixture(scope="session")
def _not_built() -> dict[str, str]:
    """What ``make samples`` builds and this machine lacks: {word an example names: what}."""
    from localml_kit import envs, errors

    missing = {}
    names = missing_samples(REAL_HOME)
    if names:
        missing["sample"] = f"samples not built in {REAL_HOME}: {', '.join(names)}"
    old = os.environ.get("LOCALML_HOME")
    os.environ["LOCALML_HOME"] = str(REAL_HOME)
    try:
        envs.get("openvino")
    except errors.EnvironmentNotReadyError:
        missing["openvino"] = f"the OpenVINO provider environment is not ready in {REAL_HOME}"
    finally:
        if old is None:
            del os.environ["LOCALML_HOME"]
        else:
            os.environ["LOCALML_HOME"] = old
    return missing


def _needs(item: DoctestItem) -> set[str]:
    """Which of the built things an example uses: ``sample`` (it names one) and ``openvino``."""
    from localml_kit import samples

    source = "".join(example.source for example in item.dtest.examples) if item.dtest else ""
    needs = {"openvino"} if "openvino" in source else set()
    if "sample" in source or any(name in source for name in samples.names()):
        needs.add("sample")
    return needs


@pytest.fixture(autouse=True)
def doctest_env(request: pytest.FixtureRequest) -> Iterator[None]:
    """For docstring examples only: the real sample cache, offline, in tmp_path."""
    item = request.node
    if not isinstance(item, DoctestItem):
        yield
        return
    not_built = request.getfixturevalue("_not_built")
    lacking = [not_built[need] for need in sorted(_needs(item)) if need in not_built]
    if lacking:
        message = "; ".join(lacking) + "; run `make samples`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    tmp_path: Path = request.getfixturevalue("tmp_path")
    saved = dict(os.environ)
    cwd = Path.cwd()
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "LOCALML_PIP_INDEX_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "LOCALML_HOME": str(REAL_HOME),
            "LOCALML_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "hf-home"),
            "HF_ENDPOINT": "http://127.0.0.1:9",
            "OLLAMA_MODELS": str(tmp_path / "ollama"),
            "LOCALML_LMSTUDIO_MODELS": str(tmp_path / "lmstudio"),
            "LOCALML_MODEL_DIRS": str(tmp_path / "models"),
        }
    )
    os.chdir(tmp_path)
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
        # What an example that failed half-way may leave open: figures, netron servers.
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
        if "localml_kit.graph" in sys.modules:
            sys.modules["localml_kit.graph"].stop_all()
