"""Test harness: hermetic settings for every test, and the real sample cache where needed.

Every test runs with ``LOCALML_HOME`` and the Hugging Face caches in its own
``tmp_path``, and with the Hub endpoint on a closed port of 127.0.0.1. Tests that need the real, built
sample models ask for the ``real_home`` fixture: it points ``LOCALML_HOME`` at
the cache that ``make samples`` filled (read-only use) and fails under
``CI=true`` (skips elsewhere) when the samples are not ready.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localml_kit import config, samples

# Captured before any fixture changes the environment.
REAL_HOME = config.home()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every cache at tmp_path; the Hub endpoint at a closed local port; no real kit cache."""
    home = tmp_path / "localml-home"
    monkeypatch.setenv("LOCALML_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("LOCALML_OFFLINE", raising=False)
    monkeypatch.delenv("LOCALML_HUB_TIMEOUT", raising=False)
    monkeypatch.delenv("LOCALML_PIP_INDEX_URL", raising=False)
    # The zoo's stores on disk: empty folders, never the user's own.
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    monkeypatch.setenv("LOCALML_LMSTUDIO_MODELS", str(tmp_path / "lmstudio"))
    monkeypatch.setenv("LOCALML_MODEL_DIRS", str(tmp_path / "models"))
    return home


def missing_samples(home: Path) -> list[str]:
    old = os.environ.get("LOCALML_HOME")
    os.environ["LOCALML_HOME"] = str(home)
    try:
        return [n for n in samples.names() if not samples.status(n).ready]
    finally:
        if old is None:
            del os.environ["LOCALML_HOME"]
        else:
            os.environ["LOCALML_HOME"] = old


@pytest.fixture
def real_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The real sample cache, with every sample built (``make samples``)."""
    missing = missing_samples(REAL_HOME)
    if missing:
        message = f"samples not built in {REAL_HOME}: {', '.join(missing)}; run `make samples`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.setenv("LOCALML_HOME", str(REAL_HOME))
    yield REAL_HOME


_KIT_CHILD_MARKERS = ("localml_kit", "_worker.py", "_env_worker.py", "_hf_worker.py", "netron")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite ends with no kit process left running: any left over fails the run."""
    import psutil

    leftover = []
    for proc in psutil.Process().children(recursive=True):
        try:
            line = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if any(marker in line for marker in _KIT_CHILD_MARKERS):
            leftover.append((proc, line))
    if leftover:
        for proc, line in leftover:
            print(f"\nleft running after the tests: pid {proc.pid}: {line[:300]}")
            with contextlib.suppress(psutil.Error):
                proc.kill()
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
