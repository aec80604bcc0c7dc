"""Settings read from the environment, and the error hierarchy."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from localml_kit import config, errors


def test_home_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCALML_HOME", str(tmp_path / "a"))
    assert config.home() == tmp_path / "a"
    assert config.samples_dir() == tmp_path / "a" / "samples"
    monkeypatch.setenv("LOCALML_HOME", "~/kit")
    assert config.home() == Path.home() / "kit"
    monkeypatch.delenv("LOCALML_HOME")
    assert config.home().name == "localml-kit"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"LOCALML_OFFLINE": "1"}, True),
        ({"LOCALML_OFFLINE": "true"}, True),
        ({"LOCALML_OFFLINE": "0"}, False),
        ({"HF_HUB_OFFLINE": "1"}, True),
        ({"HF_HUB_OFFLINE": "yes", "LOCALML_OFFLINE": "0"}, True),
    ],
)
def test_offline_switch(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert config.is_offline() is expected


def test_every_error_is_a_kit_error_and_a_builtin() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.LocalMLError | errors.LocalMLWarning)
    ]
    assert set(errors.__all__) == {c.__name__ for c in classes}
    for cls in classes:
        if cls in (errors.LocalMLError, errors.LocalMLWarning):
            continue
        builtins = [
            b
            for b in cls.__mro__
            if b.__module__ == "builtins" and b not in (object, Exception, BaseException)
        ]
        assert builtins, f"{cls.__name__} does not inherit a specific builtin"


def test_key_error_messages_are_not_quoted() -> None:
    assert str(errors.UnknownSampleError("no sample 'x'")) == "no sample 'x'"


def test_checksum_error_names_everything() -> None:
    exc = errors.ChecksumError("/cache/a.whl", "a" * 64, "b" * 64)
    assert "/cache/a.whl" in str(exc) and "a" * 64 in str(exc) and "b" * 64 in str(exc)
    assert isinstance(exc, ValueError)
