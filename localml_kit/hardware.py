"""What this machine offers for local inference: CPU, memory, GPUs, runtimes, providers.

Example:
    >>> from localml_kit import hardware
    >>> report = hardware.report()
    >>> report.cpu_logical_cores >= 1
    True
    >>> hardware.fits(50_000_000, report)
    'fits'
"""

from __future__ import annotations

import html
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

import pandas as pd
import psutil

from localml_kit import config, providers

__all__ = ["GPU", "PROVIDER_PACKAGES", "HardwareReport", "fits", "providers_table", "report"]

Fit = Literal["fits", "tight", "does not fit"]

# Providers that ship as a separate package, for "how do I get this one".
PROVIDER_PACKAGES: dict[str, str] = providers.PACKAGES


@dataclass(frozen=True)
class GPU:
    """One GPU as NVML reports it."""

    index: int
    name: str
    memory_total_bytes: int
    memory_free_bytes: int
    driver: str


@dataclass(frozen=True)
class HardwareReport:
    """A snapshot of the machine; ``to_dict()`` for JSON, ``_repr_html_`` for notebooks."""

    os: str
    machine: str
    cpu_model: str
    cpu_physical_cores: int
    cpu_logical_cores: int
    ram_total_bytes: int
    ram_available_bytes: int
    gpus: tuple[GPU, ...]
    gpu_note: str
    python: str
    onnxruntime: str | None
    onnxruntime_genai: str | None
    providers: tuple[str, ...]
    cache_home: str
    cache_bytes: int
    samples_ready: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def _repr_html_(self) -> str:
        gb = 1024**3
        rows = [
            ("Operating system", f"{self.os} ({self.machine})"),
            (
                "CPU",
                f"{self.cpu_model}: {self.cpu_physical_cores} cores, {self.cpu_logical_cores} threads",
            ),
            (
                "RAM",
                f"{self.ram_available_bytes / gb:.1f} GiB free of {self.ram_total_bytes / gb:.1f} GiB",
            ),
            (
                "GPUs",
                "; ".join(
                    f"{g.name}: {g.memory_free_bytes / gb:.1f} GiB free of {g.memory_total_bytes / gb:.1f} GiB"
                    for g in self.gpus
                )
                or self.gpu_note,
            ),
            ("Python", self.python),
            ("onnxruntime", self.onnxruntime or "not installed"),
            ("onnxruntime-genai", self.onnxruntime_genai or "not installed"),
            ("Execution providers", ", ".join(self.providers) or "none"),
            ("Cache", f"{self.cache_home} ({self.cache_bytes / 1e6:.0f} MB)"),
            (
                "Samples ready",
                ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in self.samples_ready.items()),
            ),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        return f"<table class='localml-hardware'>{body}</table>"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpus() -> tuple[tuple[GPU, ...], str]:
    try:
        import pynvml
    except ImportError:
        return (), "NVML not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVML raises its own error types; no driver means no NVIDIA GPU
        return (), f"no NVIDIA GPU found ({type(exc).__name__})"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            found.append(
                GPU(
                    index=i,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    memory_total_bytes=int(mem.total),
                    memory_free_bytes=int(mem.free),
                    driver=driver.decode() if isinstance(driver, bytes) else str(driver),
                )
            )
        return tuple(found), "" if found else "NVML found no GPU"
    finally:
        pynvml.nvmlShutdown()


def _providers() -> tuple[str, ...]:
    try:
        import onnxruntime
    except ImportError:
        return ()
    return tuple(onnxruntime.get_available_providers())


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (unreadable files skipped)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                continue
    return total


def report() -> HardwareReport:
    """Read the machine now: CPU, RAM, GPUs (NVML), runtimes, providers, cache, samples.

    Example:
        >>> "CPUExecutionProvider" in report().providers
        True
    """
    from localml_kit import samples

    mem = psutil.virtual_memory()
    gpus, note = _gpus()
    home = config.home()
    return HardwareReport(
        os=f"{platform.system()} {platform.release()}",
        machine=platform.machine(),
        cpu_model=_cpu_model(),
        cpu_physical_cores=psutil.cpu_count(logical=False) or 1,
        cpu_logical_cores=psutil.cpu_count(logical=True) or 1,
        ram_total_bytes=int(mem.total),
        ram_available_bytes=int(mem.available),
        gpus=gpus,
        gpu_note=note,
        python=f"{sys.version.split()[0]} ({sys.executable})",
        onnxruntime=_version("onnxruntime") or _first_version("onnxruntime-"),
        onnxruntime_genai=_version("onnxruntime-genai"),
        providers=_providers(),
        cache_home=str(home),
        cache_bytes=folder_bytes(home) if home.is_dir() else 0,
        samples_ready={name: samples.status(name).ready for name in samples.names()},
    )


def _first_version(prefix: str) -> str | None:
    """The version of an onnxruntime variant package (onnxruntime-gpu, -openvino, ...)."""
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith(prefix) and not name.startswith("onnxruntime-genai"):
            return f"{dist.version} ({name})"
    return None


def fits(needed_bytes: int, machine: HardwareReport | None = None, *, on_gpu: bool = False) -> Fit:
    """Will a model needing ``needed_bytes`` of memory fit: "fits", "tight" or "does not fit".

    Compares against free RAM (or the largest GPU's free memory with ``on_gpu``):
    under 60% of it fits, under 90% is tight, above does not fit.

    Example:
        >>> fits(10**15)
        'does not fit'
    """
    machine = report() if machine is None else machine
    if on_gpu:
        free = max((g.memory_free_bytes for g in machine.gpus), default=0)
    else:
        free = machine.ram_available_bytes
    if free <= 0 or needed_bytes > 0.9 * free:
        return "does not fit"
    if needed_bytes > 0.6 * free:
        return "tight"
    return "fits"


def providers_table(available: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Every well-known execution provider, whether this machine has it, and its package.

    Example:
        >>> table = providers_table(("CPUExecutionProvider",))
        >>> bool(table.set_index("provider").loc["CPUExecutionProvider", "available"])
        True
    """
    have = _providers() if available is None else available
    names = list(PROVIDER_PACKAGES) + [p for p in have if p not in PROVIDER_PACKAGES]
    return pd.DataFrame(
        {
            "provider": names,
            "available": [n in have for n in names],
            "package": [PROVIDER_PACKAGES.get(n, "") for n in names],
        }
    )
