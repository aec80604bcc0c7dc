"""What a model's files say about it: format, quantization, weight size, architecture facts.

Pure functions over file names, sizes and headers, shared by every source so
that a GGUF from Ollama, LM Studio, the HF cache or a local folder reads the same.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from localml_kit.graph._types import ModelSummary
from localml_kit.zoo._card import CardFile

# Preferred format when a model comes in several: the ones this kit runs first.
FORMATS = ("gguf", "onnx", "tflite", "safetensors", "pytorch")
_EXTENSIONS = {
    ".gguf": "gguf",
    ".onnx": "onnx",
    ".tflite": "tflite",
    ".safetensors": "safetensors",
    ".bin": "pytorch",
    ".pt": "pytorch",
    ".pth": "pytorch",
}
# Files with a weights extension that are not weights.
_NOT_WEIGHTS = ("training_args", "optimizer", "scheduler", "rng_state")
# The GGUF file a "does it fit" answer is given for when a repo offers many.
_GGUF_PREFERENCE = ("Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1", "Q5_K_M", "Q5_0", "Q8_0")
_GGUF_QUANT = re.compile(
    r"(?:^|[-_.])(I?Q[1-8](?:_[0-9A-Z]{1,4})*|BF16|FP?16|FP?32)(?=$|[-_.])", re.I
)
_SHARD = re.compile(r"-\d{5}-of-\d{5}")
# transformers.js / Optimum names of ONNX variants.
_ONNX_QUANT = (
    ("q4f16", "int4"),
    ("bnb4", "int4"),
    ("q4", "int4"),
    ("int4", "int4"),
    ("fp16", "fp16"),
    ("quantized", "int8"),
    ("uint8", "int8"),
    ("int8", "int8"),
)
_TAG_QUANT = {"4-bit": "int4", "8-bit": "int8", "gptq": "gptq", "awq": "awq", "fp8": "fp8"}
_DTYPE_QUANT = {
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "int8": "int8",
    "uint8": "int8",
    "int4 block": "int4",
}
_EMBEDDING_ARCHS = {
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "modern-bert",
    "t5encoder",
}
# config.json keys the memory estimate and the cards use.
CONFIG_KEYS = (
    "model_type",
    "architectures",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_size",
    "head_dim",
    "max_position_embeddings",
)


def format_of(name: str) -> str | None:
    """The format a file name implies (``.onnx`` -> onnx, ``.bin`` -> pytorch, ...), or None."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith(_NOT_WEIGHTS):
        return None
    return _EXTENSIONS.get(Path(base).suffix.lower())


def formats_of(
    names: Iterable[str], tags: Iterable[str] = (), library: str | None = None
) -> tuple[str, ...]:
    """Every format among the files (else the tags and library), best first (``FORMATS`` order).

    Example:
        >>> formats_of(["model.safetensors", "onnx/model.onnx", "README.md"])
        ('onnx', 'safetensors')
    """
    found = {f for f in map(format_of, names) if f}
    if not found:
        found = {t for t in (*tags, library or "") if t in FORMATS}
    return tuple(f for f in FORMATS if f in found)


def quantization_of(name: str) -> str | None:
    """The quantization a file name tells: GGUF ``Q4_K_M``/``Q8_0``/``F16``..., ONNX ``_fp16``, ``_quantized``.

    Example:
        >>> quantization_of("SmolLM2-135M-Instruct.Q4_1.gguf"), quantization_of("onnx/model_fp16.onnx")
        ('Q4_1', 'fp16')
    """
    base = name.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0]
    if base.lower().endswith(".gguf"):
        found = _GGUF_QUANT.findall(_SHARD.sub("", stem))
        return found[-1].upper().replace("FP", "F") if found else None
    if base.lower().endswith(".onnx"):
        words = set(re.split(r"[-_.]", stem.lower()))
        return next((q for key, q in _ONNX_QUANT if key in words), None)
    return None


def quantization_of_tags(tags: Iterable[str]) -> str | None:
    """A quantization named by Hub tags (``4-bit``, ``8-bit``, ``gptq``, ``awq``), or None."""
    return next((_TAG_QUANT[t] for t in tags if t in _TAG_QUANT), None)


def _total(files: Sequence[CardFile]) -> int | None:
    sizes = [f.size for f in files]
    return None if not sizes or any(s is None for s in sizes) else sum(s or 0 for s in sizes)


def _onnx_groups(files: Sequence[CardFile]) -> list[list[CardFile]]:
    by_name = {f.name: f for f in files}
    groups = []
    for f in files:
        if not f.name.lower().endswith(".onnx"):
            continue
        data = [f.name + "_data", f.name + ".data", f.name[: -len(".onnx")] + ".onnx_data"]
        groups.append([f, *(by_name[d] for d in dict.fromkeys(data) if d in by_name)])
    return groups


def weights(
    files: Sequence[CardFile], format: str | None
) -> tuple[int | None, str | None, str | None]:
    """(size in bytes, quantization, main file) of the weights of one format among ``files``.

    A repository with several GGUF files is judged by its Q4_K_M (else the
    closest common 4-bit or 8-bit file); several ONNX files by ``model.onnx``
    (else the largest), with its external data. Sizes are None when any is unknown.

    Example:
        >>> weights([CardFile("m.Q8_0.gguf", 200), CardFile("m.Q4_K_M.gguf", 100)], "gguf")
        (100, 'Q4_K_M', 'm.Q4_K_M.gguf')
    """
    if format == "gguf":
        groups: dict[str, list[CardFile]] = {}
        for f in files:
            base = f.name.rsplit("/", 1)[-1].lower()
            if base.endswith(".gguf") and not base.startswith("mmproj"):
                groups.setdefault(_SHARD.sub("", f.name), []).append(f)
        if not groups:
            return None, None, None
        quants = {key: quantization_of(key) for key in groups}
        ranked = sorted(
            groups,
            key=lambda k: (
                _GGUF_PREFERENCE.index(quants[k])
                if quants[k] in _GGUF_PREFERENCE
                else len(_GGUF_PREFERENCE),
                k,
            ),
        )
        chosen = groups[ranked[0]]
        return _total(chosen), quants[ranked[0]], chosen[0].name
    if format == "onnx":
        onnx_groups = _onnx_groups(files)
        if not onnx_groups:
            return None, None, None
        named = [g for g in onnx_groups if g[0].name.rsplit("/", 1)[-1] == "model.onnx"]
        if named:
            best = min(named, key=lambda g: g[0].name.count("/"))
        else:
            best = max(onnx_groups, key=lambda g: _total(g) or 0)
        return _total(best), quantization_of(best[0].name), best[0].name
    chosen_files = [f for f in files if format and format_of(f.name) == format]
    if not chosen_files:
        return None, None, None
    return _total(chosen_files), None, chosen_files[0].name


def task_of_architecture(architecture: str | None) -> str | None:
    """The task a GGUF architecture serves: embeddings for BERT-likes, else text generation."""
    if not architecture:
        return None
    if architecture in _EMBEDDING_ARCHS:
        return "feature-extraction"
    return None if architecture == "clip" else "text-generation"


def _gguf_file_type(summary: ModelSummary) -> str | None:
    value = summary.metadata.get("general.file_type")
    if isinstance(value, int):
        try:
            import gguf

            return gguf.LlamaFileType(value).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except (ImportError, ValueError):
            return None
    return None


def _dominant_dtype(summary: ModelSummary) -> str | None:
    totals: dict[str, int] = {}
    for t in summary.tensors:
        totals[t.dtype] = totals.get(t.dtype, 0) + t.nbytes
    return max(totals, key=lambda k: totals[k]) if totals else None


def summary_facts(summary: ModelSummary) -> dict[str, Any]:
    """ModelCard keyword arguments from a ``graph.summarize`` result (ONNX or GGUF).

    Gives parameters, quantization, size, task (GGUF), licence and author
    (GGUF metadata), the architecture facts for the memory estimate (``config``)
    and a few format details (``extra``).
    """
    facts: dict[str, Any] = {
        "format": summary.format,
        "size_bytes": summary.total_bytes,
        "parameters": summary.parameter_count or None,
    }
    if summary.format == "gguf":
        meta = summary.metadata
        facts["quantization"] = _gguf_file_type(summary) or _dominant_dtype(summary)
        facts["task"] = task_of_architecture(summary.architecture)
        license_ = meta.get("general.license")
        facts["license"] = license_ if isinstance(license_, str) else None
        author = meta.get("general.organization") or meta.get("general.author")
        facts["author"] = author if isinstance(author, str) else None
        facts["config"] = {
            k: v
            for k, v in {
                "architecture": summary.architecture,
                "context_length": summary.context_length,
                "block_count": summary.block_count,
                "head_count": summary.head_count,
                "head_count_kv": summary.head_count_kv,
                "embedding_length": summary.embedding_length,
                "vocab_size": summary.vocab_size,
            }.items()
            if v is not None
        }
        facts["extra"] = {"gguf_version": summary.gguf_version, "gguf_name": summary.name}
    else:
        dtype = _dominant_dtype(summary)
        facts["quantization"] = _DTYPE_QUANT.get(dtype or "", dtype)
        facts["config"] = {}
        facts["extra"] = {
            "opsets": dict(summary.opsets),
            "producer": summary.producer,
            "inputs": [i.name for i in summary.inputs],
            "outputs": [o.name for o in summary.outputs],
        }
    return facts


def config_facts(folder: Path) -> dict[str, Any]:
    """Architecture facts from a folder's ``config.json`` (Hugging Face) or ``genai_config.json``.

    Example:
        >>> config_facts(Path("/nowhere"))
        {}
    """
    hf = _read_json(folder / "config.json")
    if hf:
        if "num_hidden_layers" not in hf and isinstance(hf.get("text_config"), dict):
            hf = {**hf["text_config"], "model_type": hf.get("model_type")}
        return {k: hf[k] for k in CONFIG_KEYS if hf.get(k) is not None}
    genai = _read_json(folder / "genai_config.json")
    model = genai.get("model") if isinstance(genai.get("model"), dict) else None
    if not model:
        return {}
    decoder = model.get("decoder") if isinstance(model.get("decoder"), dict) else {}
    facts = {
        "model_type": model.get("type"),
        "max_position_embeddings": model.get("context_length"),
        "num_hidden_layers": decoder.get("num_hidden_layers"),
        "num_attention_heads": decoder.get("num_attention_heads"),
        "num_key_value_heads": decoder.get("num_key_value_heads"),
        "hidden_size": decoder.get("hidden_size"),
        "head_dim": decoder.get("head_size"),
    }
    return {k: v for k, v in facts.items() if v is not None}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def safetensors_parameters(paths: Iterable[Path]) -> tuple[int | None, str | None]:
    """(parameter count, main dtype) from the headers of ``.safetensors`` files (no weights read).

    Example:
        >>> safetensors_parameters([])
        (None, None)
    """
    count = 0
    by_dtype: dict[str, int] = {}
    for path in paths:
        try:
            with path.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 100 * 2**20:
                    continue
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error):
            continue
        for name, info in header.items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            n = math.prod(int(d) for d in info.get("shape", []))
            count += n
            by_dtype[str(info.get("dtype", ""))] = by_dtype.get(str(info.get("dtype", "")), 0) + n
    if not count:
        return None, None
    dtype = max(by_dtype, key=lambda k: by_dtype[k]).lower()
    return count, {"f32": "fp32", "f16": "fp16", "i8": "int8"}.get(dtype, dtype)
