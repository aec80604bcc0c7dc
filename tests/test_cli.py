"""The localml-kit command line, in process (main(argv)) and as the installed script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localml_kit import samples
from localml_kit.cli import main, parse_arguments


def test_samples_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samples", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == samples.names()
    assert all(r["ready"] is False for r in rows)  # a fresh LOCALML_HOME
    assert {"task", "format", "source", "path", "size_bytes", "description"} <= set(rows[0])


def test_samples_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samples", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct" in out and "ready" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["samples", "path", "nope"], "Known samples: smollm2-135m-instruct"),
        (["samples", "fetch", "nope"], "no sample named 'nope'"),
        (["samples", "fetch"], "pass --all"),
        (["samples", "path", "digits-mlp"], "localml-kit samples fetch digits-mlp"),
        (["samples", "path", "digits-mlp", "--variant", "gguf"], "has no variant 'gguf'"),
        (["samples", "verify", "digits-mlp"], "localml-kit samples fetch digits-mlp"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_offline_fetch_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    assert main(["samples", "fetch", "ppocr-v4-det"]) == 2
    assert "offline mode is on" in capsys.readouterr().err


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "CPUExecutionProvider" in data["providers"]
    assert data["cpu_logical_cores"] >= 1 and data["ram_total_bytes"] > 0
    assert data["onnxruntime"] and data["onnxruntime_genai"]
    assert set(data["samples_ready"]) == set(samples.names())


def test_doctor_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for key in ("CPU", "RAM", "GPUs", "Providers", "onnxruntime-genai", "Cache", "Samples"):
        assert key in out
    assert "localml-kit samples fetch --all" in out  # nothing is ready in a fresh home


def test_parse_arguments_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        parse_arguments([])


def test_installed_console_script() -> None:
    script = shutil.which("localml-kit", path=str(Path(sys.executable).parent))
    assert script, "the localml-kit console script is not installed in this environment"
    proc = subprocess.run(
        [script, "samples", "path", "nope"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("error: no sample named 'nope'") and "Traceback" not in proc.stderr
    )
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("localml-kit ")


@pytest.mark.samples
def test_path_and_verify_on_real_samples(
    real_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["samples", "path", "smollm2-135m-instruct", "--variant", "gguf"]) == 0
    assert Path(capsys.readouterr().out.strip()).stat().st_size == 98_362_432
    assert main(["samples", "verify", "ppocr-v4-det", "digits-mlp"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ppocr-v4-det: ok", "digits-mlp: ok"]
    assert main(["samples", "fetch", "all-minilm-l6-v2"]) == 0  # ready: returns at once
