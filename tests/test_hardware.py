"""The hardware report: real readings, the fit rule, and escaped HTML."""

from __future__ import annotations

from dataclasses import replace

import onnxruntime
import psutil

from localml_kit import hardware


def test_report_reads_the_machine() -> None:
    rep = hardware.report()
    assert rep.cpu_logical_cores == psutil.cpu_count(logical=True)
    assert abs(rep.ram_total_bytes - psutil.virtual_memory().total) < 1024**2
    assert 0 < rep.ram_available_bytes <= rep.ram_total_bytes
    assert rep.providers == tuple(onnxruntime.get_available_providers())
    assert rep.onnxruntime == onnxruntime.__version__
    assert rep.gpus or rep.gpu_note  # either GPUs or the reason there are none
    assert rep.cache_bytes == 0  # a fresh LOCALML_HOME
    assert not any(rep.samples_ready.values())


def test_fits_thresholds() -> None:
    rep = replace(hardware.report(), ram_available_bytes=10_000, gpus=())
    assert hardware.fits(5_000, rep) == "fits"
    assert hardware.fits(7_000, rep) == "tight"
    assert hardware.fits(9_500, rep) == "does not fit"
    assert hardware.fits(1, rep, on_gpu=True) == "does not fit"  # no GPU
    gpu = hardware.GPU(0, "test", 100_000, 50_000, "1")
    assert hardware.fits(20_000, replace(rep, gpus=(gpu,)), on_gpu=True) == "fits"


def test_html_escapes_what_the_machine_reports() -> None:
    rep = replace(hardware.report(), cpu_model="<script>alert(1)</script>", cache_home="/tmp/<b>x")
    page = rep._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>x" not in page


def test_providers_table_marks_availability() -> None:
    table = hardware.providers_table(
        ("CPUExecutionProvider", "MyCustomExecutionProvider")
    ).set_index("provider")
    assert bool(table.loc["CPUExecutionProvider", "available"])
    assert not bool(table.loc["CUDAExecutionProvider", "available"])
    assert table.loc["OpenVINOExecutionProvider", "package"] == "onnxruntime-openvino"
    assert bool(table.loc["MyCustomExecutionProvider", "available"])
