"""The one record every model source returns: ``ModelCard``, and its memory estimate."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localml_kit import hardware

__all__ = ["CardFile", "ModelCard", "estimate_memory"]

# Weights are mapped or copied once; the runtime adds arena, activations and
# the process itself. 1.2x weights + 64 MiB matches what ONNX Runtime and
# llama.cpp showed on the samples (peak RSS against file size).
_OVERHEAD_FACTOR = 1.2
_OVERHEAD_BYTES = 64 * 2**20

# Bytes per parameter when only the parameter count is known, by quantization.
_BYTES_PER_PARAM = {
    "fp32": 4.0,
    "f32": 4.0,
    "fp16": 2.0,
    "f16": 2.0,
    "bf16": 2.0,
    "int8": 1.0,
    "q8_0": 1.0625,
    "q6_k": 0.82,
    "q5_k_m": 0.69,
    "q5_0": 0.69,
    "q4_k_m": 0.6,
    "q4_0": 0.5625,
    "q4_1": 0.625,
    "int4": 0.5625,
}


@dataclass(frozen=True)
class CardFile:
    """One file of a model: its name (relative to the repository or folder) and size if known."""

    name: str
    size: int | None = None


@dataclass(frozen=True)
class ModelCard:
    """What the kit knows about one model, from any source.

    Fields a source cannot tell are None (or empty); anything a source reports
    beyond these fields is kept in ``extra``. ``config`` holds architecture facts
    used for the memory estimate (``num_hidden_layers``, ``num_key_value_heads``,
    ``head_dim`` or ``hidden_size`` and ``num_attention_heads``, ``context_length``).

    Example:
        >>> card = ModelCard(id="HuggingFaceTB/SmolLM2-135M-Instruct", source="hub",
        ...                  format="gguf", size_bytes=98_362_432)
        >>> card.memory_bytes() > card.size_bytes
        True
    """

    id: str
    source: str
    title: str = ""
    task: str | None = None
    format: str | None = None
    size_bytes: int | None = None
    parameters: int | None = None
    quantization: str | None = None
    license: str | None = None
    downloads: int | None = None
    likes: int | None = None
    tags: tuple[str, ...] = ()
    files: tuple[CardFile, ...] = ()
    local_path: Path | None = None
    description: str | None = None
    author: str | None = None
    last_modified: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The title, else the id."""
        return self.title or self.id

    @property
    def is_local(self) -> bool:
        """True when the model's files are on this machine."""
        return self.local_path is not None

    def memory_bytes(self, context_length: int = 4096) -> int | None:
        """Estimated memory to run the model (see ``estimate_memory``)."""
        return estimate_memory(self, context_length)

    def fit(
        self,
        context_length: int = 4096,
        machine: hardware.HardwareReport | None = None,
        *,
        on_gpu: bool = False,
    ) -> str:
        """Whether it fits this machine: "fits", "tight", "does not fit" or "unknown".

        Against the free RAM, or with ``on_gpu`` the largest GPU's free memory
        ("does not fit" without a GPU; ``gpu_fit`` says None there instead).

        Example:
            >>> ModelCard(id="m", source="local", size_bytes=10**15).fit()
            'does not fit'
        """
        needed = self.memory_bytes(context_length)
        if needed is None:
            return "unknown"
        return hardware.fits(needed, machine, on_gpu=on_gpu)

    def gpu_fit(
        self, context_length: int = 4096, machine: hardware.HardwareReport | None = None
    ) -> str | None:
        """Whether it fits the largest GPU's free memory; None on a machine without a GPU.

        Example:
            >>> import dataclasses
            >>> no_gpu = dataclasses.replace(hardware.report(), gpus=())
            >>> ModelCard(id="m", source="local", size_bytes=10**6).gpu_fit(machine=no_gpu) is None
            True
        """
        machine = hardware.report() if machine is None else machine
        if not machine.gpus:
            return None
        return self.fit(context_length, machine, on_gpu=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        data = asdict(self)
        data["local_path"] = str(self.local_path) if self.local_path else None
        data["tags"] = list(self.tags)
        data["files"] = [asdict(f) for f in self.files]
        return data

    def _repr_html_(self) -> str:
        e = html.escape
        rows = [
            ("source", self.source),
            ("task", self.task),
            ("format", self.format),
            ("size", _human(self.size_bytes)),
            ("parameters", f"{self.parameters:,}" if self.parameters else None),
            ("quantization", self.quantization),
            ("licence", self.license),
            ("downloads", f"{self.downloads:,}" if self.downloads is not None else None),
            ("likes", f"{self.likes:,}" if self.likes is not None else None),
            ("local path", str(self.local_path) if self.local_path else None),
            ("memory to run", _human(self.memory_bytes())),
        ]
        machine = hardware.report()
        rows.append(("fit in RAM", self.fit(machine=machine)))
        rows.append(("fit on GPU", self.gpu_fit(machine=machine)))
        body = "".join(
            f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(str(v))}</td></tr>"
            for k, v in rows
            if v is not None
        )
        return f"<b>{e(self.name)}</b><table>{body}</table>"


def _human(size: int | None) -> str | None:
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _kv_cache_bytes(config: dict[str, Any], context_length: int, bytes_per_value: int = 2) -> int:
    """Keys and values for every layer at ``context_length`` (0 when the config is silent)."""
    layers = config.get("num_hidden_layers") or config.get("block_count")
    heads = config.get("num_attention_heads") or config.get("head_count")
    kv_heads = config.get("num_key_value_heads") or config.get("head_count_kv") or heads
    head_dim = config.get("head_dim")
    hidden = config.get("hidden_size") or config.get("embedding_length")
    if not head_dim and hidden and heads:
        head_dim = int(hidden) // int(heads)
    if not (layers and kv_heads and head_dim):
        return 0
    limit = config.get("max_position_embeddings") or config.get("context_length")
    tokens = min(context_length, int(limit)) if limit else context_length
    return 2 * int(layers) * int(kv_heads) * int(head_dim) * tokens * bytes_per_value


def estimate_memory(card: ModelCard, context_length: int = 4096) -> int | None:
    """Bytes needed to run ``card``: weights x 1.2 + 64 MiB, plus the fp16 KV cache for LMs.

    Weights come from the size on disk, else from parameters x bytes per
    parameter of the card's quantization (fp16 when unknown). None when the card
    tells neither.

    Example:
        >>> estimate_memory(ModelCard(id="m", source="local", size_bytes=100 * 2**20)) // 2**20
        184
    """
    if card.size_bytes:
        weights = float(card.size_bytes)
    elif card.parameters:
        per = _BYTES_PER_PARAM.get((card.quantization or "fp16").lower(), 2.0)
        weights = card.parameters * per
    else:
        return None
    needed = weights * _OVERHEAD_FACTOR + _OVERHEAD_BYTES
    return int(needed) + _kv_cache_bytes(card.config, context_length)
