"""Execution providers, engines and graph-optimization levels: one table the whole kit reads.

Short names a user may type (``cpu``, ``cuda``, ``openvino``...), the ONNX
Runtime names they stand for, the providers that run on a GPU, the package
that brings each one, and ONNX Runtime's graph-optimization levels.

Two **engines** sit in the same table: runtimes other than this Python's ONNX
Runtime that run the same ONNX file, named where a provider is named
(``model.onnx@tract``, ``model.onnx@web``): ``tract`` (a Rust engine, PyPI
package ``tract``) and ``onnxruntime-web`` (ONNX Runtime compiled to
WebAssembly, run in headless Chromium; aliases ``web``, ``ort-web``).
:mod:`localml_kit.engines` runs them.

Example:
    >>> from localml_kit import providers
    >>> providers.resolve("OpenVINO")
    'OpenVINOExecutionProvider'
    >>> providers.short_name("CUDAExecutionProvider")
    'cuda'
    >>> providers.resolve("ort-web"), providers.is_engine("tract")
    ('onnxruntime-web', True)
"""

from __future__ import annotations

from localml_kit import errors

__all__ = [
    "ALIASES",
    "CPU",
    "ENGINES",
    "GPU_PROVIDERS",
    "OPTIMIZATION_LEVELS",
    "ORT_LEVELS",
    "PACKAGES",
    "TRACT",
    "WEB",
    "available",
    "is_engine",
    "known",
    "package",
    "resolve",
    "short_name",
]

CPU = "CPUExecutionProvider"
TRACT = "tract"
WEB = "onnxruntime-web"

# Short names a user may type, and the ONNX Runtime names they stand for.
ALIASES: dict[str, str] = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "ov": "OpenVINOExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
    "azure": "AzureExecutionProvider",
    # Engines: not ONNX Runtime providers, named in the same place (model.onnx@tract).
    "tract": TRACT,
    "web": WEB,
    "ort-web": WEB,
    "onnxruntime-web": WEB,
}

# The package that brings each well-known provider.
PACKAGES: dict[str, str] = {
    CPU: "onnxruntime",
    "CUDAExecutionProvider": "onnxruntime-gpu",
    "TensorrtExecutionProvider": "onnxruntime-gpu (with TensorRT)",
    "OpenVINOExecutionProvider": "onnxruntime-openvino",
    "DmlExecutionProvider": "onnxruntime-directml (Windows)",
    "CoreMLExecutionProvider": "onnxruntime (macOS)",
    "QNNExecutionProvider": "onnxruntime-qnn (Snapdragon)",
    "ROCMExecutionProvider": "onnxruntime-rocm",
    "MIGraphXExecutionProvider": "onnxruntime-migraphx",
    "WebGpuExecutionProvider": "onnxruntime-webgpu",
}

# The engines (other runtimes for the same ONNX file) and what brings each one.
ENGINES: dict[str, str] = {
    TRACT: "tract (PyPI; the kit's engines extra)",
    WEB: "onnxruntime-web (npm; `make samples` fetches it) + playwright + Chromium",
}

# Providers whose memory lives on a GPU (NVML reads it).
GPU_PROVIDERS: tuple[str, ...] = (
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "NvTensorRTRTXExecutionProvider",
)

# ONNX Runtime's graph-optimization levels: the kit's name -> the GraphOptimizationLevel member.
ORT_LEVELS: dict[str, str] = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}
OPTIMIZATION_LEVELS: tuple[str, ...] = tuple(ORT_LEVELS)


def available() -> tuple[str, ...]:
    """The providers this Python's ONNX Runtime offers (empty when it is not installed).

    Example:
        >>> CPU in available()
        True
    """
    try:
        import onnxruntime
    except ImportError:
        return ()
    return tuple(onnxruntime.get_available_providers())


def is_engine(name: str) -> bool:
    """True for an engine (``tract``, ``onnxruntime-web``), False for an ONNX Runtime provider.

    Takes full names and aliases; an unknown name is no engine.

    Example:
        >>> is_engine("web"), is_engine("CPUExecutionProvider")
        (True, False)
    """
    full = ALIASES.get(str(name).strip().lower(), name)
    return full in ENGINES


def package(name: str) -> str:
    """What brings a provider or an engine (``""`` when the kit does not know).

    Example:
        >>> package("OpenVINOExecutionProvider")
        'onnxruntime-openvino'
    """
    return ENGINES.get(name) or PACKAGES.get(name, "")


def known() -> list[str]:
    """Every provider and engine name the kit accepts (full names; aliases map onto them).

    Example:
        >>> "OpenVINOExecutionProvider" in known(), "tract" in known()
        (True, True)
    """
    names = [*PACKAGES, "AzureExecutionProvider", *ENGINES]
    names += [p for p in available() if p not in names]
    return names


def resolve(name: str) -> str:
    """The ONNX Runtime name for a provider: ``"cuda"`` -> ``"CUDAExecutionProvider"``.

    Accepts the aliases (cpu, cuda, tensorrt, openvino, directml, coreml, ...),
    full names in any letter case, and any provider a provider environment
    offers. An unknown name lists the valid ones.

    Example:
        >>> resolve("trt")
        'TensorrtExecutionProvider'
    """
    key = str(name).strip()
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    candidates = known()
    for full in candidates:
        if full.lower() in (key.lower(), f"{key.lower()}executionprovider"):
            return full
    from localml_kit import envs

    env_names: list[str] = []
    table = envs.list()
    for cell in table.loc[table["ready"], "providers"]:
        env_names += [p.strip() for p in str(cell).split(",") if p.strip()]
    for full in env_names:
        if full.lower() in (key.lower(), f"{key.lower()}executionprovider"):
            return full
    raise errors.UnknownProviderError(
        f"unknown execution provider {name!r}. Valid: {', '.join(ALIASES)} "
        f"(short names) or {', '.join(dict.fromkeys(candidates + env_names))}."
    )


def short_name(provider: str) -> str:
    """The short name of a provider, for labels: ``"CUDAExecutionProvider"`` -> ``"cuda"``.

    Example:
        >>> short_name("OpenVINOExecutionProvider")
        'openvino'
    """
    for alias, full in ALIASES.items():
        if full == provider:
            return alias
    return provider.removesuffix("ExecutionProvider").lower()
