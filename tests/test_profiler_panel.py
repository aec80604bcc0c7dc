"""ProfilerPanel driven headlessly: set values, click buttons, read .result."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from localml_kit.widgets import ProfilerPanel
from tests.test_profile import dense_model


@pytest.fixture
def dense(tmp_path: Path) -> Path:
    return dense_model(tmp_path / "dense.onnx")


def test_run_fills_result_table_and_plots(dense: Path) -> None:
    panel = ProfilerPanel(dense, min_seconds=0.0, min_iterations=3, warmup=1)
    assert panel.providers["CPUExecutionProvider"].value
    assert "needs onnxruntime-gpu" in panel.providers["CUDAExecutionProvider"].description
    panel.threads.value = (1,)
    panel.batches.value = (1, 4)
    panel.providers["CUDAExecutionProvider"].value = True
    panel.providers["OpenVINOExecutionProvider"].value = False
    panel.run_button.click()
    result = panel.wait(timeout=120)
    assert result is not None and panel.error is None
    table = result.table
    assert table["label"].tolist() == [
        "dense.onnx · cpu · 1t · b1 · all",
        "dense.onnx · cpu · 1t · b4 · all",
        "dense.onnx · cuda · 1t · b1 · all",
        "dense.onnx · cuda · 1t · b4 · all",
    ]
    assert table["status"].tolist()[:2] == ["ok", "ok"]
    assert set(table["status"].tolist()[2:]) <= {"ok", "unavailable"}
    assert panel.progress.value == panel.progress.max == 4 and panel.progress.description == "4/4"
    assert "dense.onnx · cpu · 1t · b4 · all" in panel.table.value
    for image in panel.plots.children:
        assert image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert panel.status.value == "<p>Done.</p>"


def test_stop_button_stops_the_run(dense: Path) -> None:
    panel = ProfilerPanel(dense, threads=[1], batches=(1, 2), min_seconds=60.0, min_iterations=1)
    panel.providers["OpenVINOExecutionProvider"].value = False
    panel.run_button.click()
    assert panel.run_button.disabled and not panel.stop_button.disabled
    timer = threading.Timer(1.5, panel.stop_button.click)
    timer.start()
    result = panel.wait(timeout=120)
    timer.cancel()
    assert result is not None
    assert result.table["status"].tolist() == ["stopped", "stopped"]
    assert panel.status.value == "<p>Stopped.</p>"


def test_no_provider_ticked_is_an_error_not_a_run(dense: Path) -> None:
    panel = ProfilerPanel(dense)
    for box in panel.providers.values():
        box.value = False
    panel.run_button.click()
    assert panel.wait() is None
    assert panel.error is not None and "tick at least one provider" in panel.error
    assert "Error" in panel.status.value


def test_bad_model_path_shows_the_error(tmp_path: Path) -> None:
    panel = ProfilerPanel(tmp_path / "missing.onnx")
    panel.run_button.click()
    assert panel.wait() is None and panel.error is not None
    assert "missing.onnx" in panel.error
