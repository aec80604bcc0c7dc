"""ModelSummary fields for a GGUF file (llama.cpp's format).

The header is read directly over a memory map: the key/value metadata and the
tensor table, skipping the large arrays (the tokenizer's vocabulary and merges)
without decoding them, and never touching the tensor data. The ``gguf``
package supplies the names and block sizes of the quantization types.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Any

from localml_kit import errors
from localml_kit.graph._types import TensorInfo

MAGIC = b"GGUF"
# llama.cpp's working memory beyond the weights (compute buffers), at a short context.
_RUNTIME_OVERHEAD_BYTES = 40 * 1024**2
# GGUF value types: format character for the fixed-size ones.
_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class _Truncated(Exception):
    pass


class _Cursor:
    def __init__(self, buf: mmap.mmap, order: str) -> None:
        self.buf = buf
        self.pos = 0
        self.order = order

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(self.order + fmt)
        if self.pos + size > len(self.buf):
            raise _Truncated
        (value,) = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("Q")
        end = self.pos + length
        if end > len(self.buf):
            raise _Truncated
        text = bytes(self.buf[self.pos : end]).decode("utf-8", errors="replace")
        self.pos = end
        return text

    def skip_string(self) -> None:
        length = self.take("Q")
        self.pos += length
        if self.pos > len(self.buf):
            raise _Truncated

    def value(self, kind: int) -> Any:
        if kind in _FIXED:
            return self.take(_FIXED[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind = self.take("I")
            count = self.take("Q")
            if item_kind in _FIXED and count > 16:
                self.pos += count * struct.calcsize(_FIXED[item_kind])
                if self.pos > len(self.buf):
                    raise _Truncated
                return _Array(count)
            if item_kind == _STRING and count > 16:
                for _ in range(count):
                    self.skip_string()
                return _Array(count)
            return [self.value(item_kind) for _ in range(count)]
        raise _Truncated


class _Array:
    """A long metadata array that was skipped; only its length is kept."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __repr__(self) -> str:
        return f"<array of {self.count}>"


def _type_table() -> tuple[dict[int, str], dict[int, tuple[int, int]]]:
    try:
        import gguf
    except ImportError:
        raise errors.BuildDependencyError(
            "reading GGUF files needs the `gguf` package: pip install gguf"
        ) from None
    names = {int(t): t.name for t in gguf.GGMLQuantizationType}
    sizes = {int(t): (int(b), int(s)) for t, (b, s) in gguf.GGML_QUANT_SIZES.items()}
    return names, sizes


def _read(path: Path) -> tuple[int, dict[str, Any], list[TensorInfo]]:
    names, sizes = _type_table()
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        (version,) = struct.unpack_from("<I", buf, 4)
        cur = _Cursor(buf, "<" if version < 0x10000 else ">")
        cur.pos = 4
        version = cur.take("I")
        if version < 2:
            raise errors.ModelFormatError(
                f"{path} is GGUF version {version}; only versions 2 and 3 are read. "
                "Convert it again with a current llama.cpp."
            )
        tensor_count = cur.take("Q")
        kv_count = cur.take("Q")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cur.string()
            metadata[key] = cur.value(cur.take("I"))
        tensors = []
        for _ in range(tensor_count):
            name = cur.string()
            dims = tuple(cur.take("Q") for _ in range(cur.take("I")))
            kind = cur.take("I")
            cur.take("Q")  # offset into the data section
            count = 1
            for d in dims:
                count *= d
            block, type_size = sizes.get(kind, (1, 1))
            tensors.append(
                TensorInfo(
                    name=name,
                    dtype=names.get(kind, f"type{kind}"),
                    shape=dims,
                    count=count,
                    nbytes=count // block * type_size,
                    location="gguf",
                )
            )
    return version, metadata, tensors


def summary_fields(path: Path) -> dict[str, Any]:
    """The GGUF part of a ModelSummary, as keyword arguments."""
    try:
        version, meta, tensors = _read(path)
    except (_Truncated, struct.error):
        raise errors.ModelFormatError(
            f"{path} is a truncated or damaged GGUF file (its header ends early). Download it again."
        ) from None
    arch = meta.get("general.architecture")
    prefix = f"{arch}." if arch else ""
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = (
        tokens.count
        if isinstance(tokens, _Array)
        else len(tokens)
        if isinstance(tokens, list)
        else None
    ) or meta.get(f"{prefix}vocab_size")
    shown = {
        k: (repr(v) if isinstance(v, _Array) else v)
        for k, v in meta.items()
        if not isinstance(v, list) or len(v) <= 16
    }
    param_bytes = sum(t.nbytes for t in tensors)
    head_count = meta.get(f"{prefix}attention.head_count")
    return {
        "gguf_version": version,
        "architecture": arch,
        "name": meta.get("general.name"),
        "context_length": meta.get(f"{prefix}context_length"),
        "embedding_length": meta.get(f"{prefix}embedding_length"),
        "block_count": meta.get(f"{prefix}block_count"),
        "head_count": head_count,
        "head_count_kv": meta.get(f"{prefix}attention.head_count_kv", head_count),
        "tokenizer_model": meta.get("tokenizer.ggml.model"),
        "vocab_size": vocab,
        "metadata": shown,
        "tensors": tensors,
        "parameter_count": sum(t.count for t in tensors),
        "parameter_bytes": param_bytes,
        "load_memory_bytes": param_bytes + _RUNTIME_OVERHEAD_BYTES,
    }
