"""Provider environments: real venvs made with pip from a package index on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localml_kit import envs, errors, profile
from localml_kit.profile import Plan
from tests.pkgindex import serve_index
from tests.test_profile import FAST, dense_model
from tests.test_samples import make_wheel

FAKE_ORT = (
    '__version__ = "0.0.1+fake"\n'
    "def get_available_providers():\n"
    '    return ["FakeExecutionProvider", "CPUExecutionProvider"]\n'
)


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local index holding a stand-in 'onnxruntime' that offers FakeExecutionProvider."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "fake-ort", "1.0", {"onnxruntime/__init__.py": FAKE_ORT.encode()})
    # Only the local index: no pip configuration, find-links or extra indexes from the machine.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    with serve_index(wheels) as (url, requests):
        monkeypatch.setenv("LOCALML_PIP_INDEX_URL", url)
        yield requests


def test_recipes_and_list_in_a_fresh_home() -> None:
    assert envs.RECIPES["openvino"].requirements[0] == "onnxruntime-openvino==1.24.1"
    table = envs.list()
    assert table.set_index("name").loc["openvino", "ready"] == False  # noqa: E712
    assert envs.find("OpenVINOExecutionProvider") is None
    with pytest.raises(errors.EnvironmentNotReadyError, match="localml-kit envs create openvino"):
        envs.get("openvino")


def test_unknown_recipe_and_bad_name() -> None:
    with pytest.raises(errors.UnknownEnvironmentError, match="recipes: openvino, gpu"):
        envs.create("tensorflow")
    with pytest.raises(errors.ConfigError):
        envs.create("../x", requirements=("numpy",))


def test_offline_creation_fails_and_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    with pytest.raises(errors.OfflineError, match="offline mode is on"):
        envs.create("openvino")
    assert not (envs.envs_dir() / "openvino").exists()


def test_create_records_providers_and_plans_use_it(index: list[str], tmp_path: Path) -> None:
    env = envs.create("fake", requirements=("fake-ort==1.0",))
    assert env.providers == ("FakeExecutionProvider", "CPUExecutionProvider")
    assert env.onnxruntime == "0.0.1+fake" and Path(env.python).exists()
    assert any("fake-ort" in r for r in index)
    record = json.loads((envs.envs_dir() / "fake" / envs.RECORD).read_text())
    assert record["requirements"] == ["fake-ort==1.0"] and record["create_seconds"] > 0
    assert envs.find("FakeExecutionProvider") == env
    assert envs.create("fake", requirements=("fake-ort==1.0",)) == env  # once
    assert profile.resolve_provider("fake") == "FakeExecutionProvider"

    # A plan finds the environment for its provider. This stand-in has no numpy,
    # so the worker fails there; the row says so and names the environment.
    model = dense_model(tmp_path / "dense.onnx")
    row = profile.run(
        Plan(model, providers=["fake"], threads=[1], **FAST), progress=False
    ).table.iloc[0]
    assert row["environment"] == "fake" and row["python"] == env.python
    assert row["status"] == "error" and "numpy" in row["error"]

    assert envs.remove("fake") and envs.find("FakeExecutionProvider") is None


def test_failed_install_leaves_nothing(index: list[str]) -> None:
    with pytest.raises(errors.DownloadError, match="could not install no-such-package==9"):
        envs.create("broken", requirements=("no-such-package==9",))
    assert not (envs.envs_dir() / "broken").exists()


def test_environment_without_onnxruntime_is_refused(index: list[str], tmp_path: Path) -> None:
    from tests.test_samples import make_wheel as wheel

    wheels = tmp_path / "wheels"
    wheel(wheels, "not-ort", "1.0", {"not_ort/__init__.py": b""})
    from tests.pkgindex import write_simple_index

    write_simple_index(wheels)
    with pytest.raises(errors.EnvironmentCreateError, match="cannot import onnxruntime"):
        envs.create("empty", requirements=("not-ort==1.0",))
    assert not (envs.envs_dir() / "empty").exists()
