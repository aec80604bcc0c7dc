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
    assert panel.plots.titles == ("Latency", "Operators", "Memory")  # no cluster: no Machines
    for image in panel.plots.children:
        assert image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert panel.status.value.startswith("<p>Done.</p>")
    # The dims chosen for the inputs, one per batch size.
    assert "Inputs: <b>dense.onnx</b>: batch=1 | batch=4" in panel.status.value
    assert result.table["dims"].tolist()[:2] == ["batch=1", "batch=4"]
    # Frontends without widgets get the rows as text and the table as HTML.
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("ProfilerPanel: dense.onnx · cpu · 1t · b1 · all: ok")
    assert "localml-dims" in bundle["text/html"] and "p50_ms" in bundle["text/html"]


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
    assert panel.status.value.startswith("<p>Stopped.</p>")
    assert "batch=1 | batch=2" in panel.status.value


def test_no_provider_ticked_is_an_error_not_a_run(dense: Path) -> None:
    panel = ProfilerPanel(dense)
    for box in panel.providers.values():
        box.value = False
    panel.run_button.click()
    assert panel.wait() is None
    assert panel.error is not None and "tick at least one provider" in panel.error
    assert "Error" in panel.status.value and "localml-error" in panel.status.value
    assert panel._repr_mimebundle_()["text/plain"].startswith("ProfilerPanel: error: tick")


def test_bad_model_path_shows_the_error(tmp_path: Path) -> None:
    panel = ProfilerPanel(tmp_path / "missing.onnx")
    panel.run_button.click()
    assert panel.wait() is None and panel.error is not None
    assert "missing.onnx" in panel.error
