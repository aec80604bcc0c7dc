"""GGUF -> Hugging Face fp32 -> ONNX Runtime GenAI, checked first, each step a child, cached."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from localml_kit import _proc, config, errors

# "gguf": the GGUF's own quantized blocks, carried into the ONNX model unchanged (GGUF
# sources only); "int4" / "int8" / "fp32": ONNX Runtime GenAI's builder from fp32 weights.
PRECISIONS = ("gguf", "int4", "int8", "fp32")
# GGUF architectures that transformers can read and the ONNX Runtime GenAI builder can build.
GGUF_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "nemotron")
# Hugging Face architectures the ONNX Runtime GenAI builder supports (decoder-only text models).
HF_ARCHITECTURES = (
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Phi3ForCausalLM",
    "PhiForCausalLM",
    "GemmaForCausalLM",
    "Gemma2ForCausalLM",
    "Gemma3ForCausalLM",
    "GraniteForCausalLM",
    "OlmoForCausalLM",
    "NemotronForCausalLM",
    "SmolLM3ForCausalLM",
)


def check_precision(precision: str) -> None:
    """A ConfigError unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise errors.ConfigError(
            f"precision {precision!r} is not one of {', '.join(PRECISIONS)}; choose one of those."
        )


def default_precision(source: str | os.PathLike[str]) -> str:
    """The precision a build uses when none is given: "gguf" for a .gguf file, else "int4".

    Example:
        >>> default_precision("model.Q4_K_M.gguf")
        'gguf'
    """
    return "gguf" if os.fspath(source).lower().endswith(".gguf") else "int4"


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` of a GGUF file ("unknown" when it has none)."""
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # gguf raises ValueError, struct errors, OSError...
        raise errors.ModelFormatError(
            f"{path} is not a readable GGUF file ({type(exc).__name__}: {exc}); "
            "download or convert it again."
        ) from exc
    field = reader.fields.get("general.architecture")
    if field is None or not field.data:
        return "unknown"
    return bytes(field.parts[field.data[0]]).decode(errors="replace")


def hf_architecture(folder: Path) -> str:
    """The first of ``architectures`` in a Hugging Face folder's config.json."""
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        raise errors.ModelFormatError(
            f"{folder} has no readable config.json: it is not a Hugging Face model folder."
        ) from None
    return str((cfg.get("architectures") or ["unknown"])[0])


def check_source(path: Path, precision: str) -> None:
    """A kit error unless ``path`` (a .gguf file or a Hugging Face folder) builds at ``precision``.

    Example:
        >>> import gguf
        >>> writer = gguf.GGUFWriter("bert.gguf", "bert")  # an empty GGUF of architecture bert
        >>> writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.close()
        >>> check_source(Path("bert.gguf"), "gguf")
        Traceback (most recent call last):
        localml_kit.errors.ModelFormatError: bert.gguf is a GGUF of architecture 'bert', ...
    """
    check_precision(precision)
    if not path.exists():
        raise errors.ModelNotFoundError(
            f"no model at {str(path)!r}: give a .gguf file or a Hugging Face folder."
        )
    if path.is_file() and path.suffix.lower() != ".gguf":
        raise errors.ModelFormatError(
            f"{path} is not a GGUF file; slm.build takes a .gguf file, a Hugging Face folder or "
            "an ONNX Runtime GenAI folder."
        )
    if path.is_file():
        arch = gguf_architecture(path)
        if arch not in GGUF_ARCHITECTURES:
            raise errors.ModelFormatError(
                f"{path.name} is a GGUF of architecture {arch!r}, which this path cannot build; "
                f"supported GGUF architectures: {', '.join(GGUF_ARCHITECTURES)}."
            )
        return
    if precision == "gguf":
        raise errors.ModelFormatError(
            f"precision 'gguf' carries a GGUF file's quantized blocks, and {path.name} is a "
            "Hugging Face folder; give the .gguf file, or choose int4, int8 or fp32."
        )
    arch = hf_architecture(path)
    if arch not in HF_ARCHITECTURES:
        raise errors.ModelFormatError(
            f"{path.name} is a {arch}, which ONNX Runtime GenAI's builder does not build; "
            f"supported: {', '.join(HF_ARCHITECTURES)}."
        )


def _digest(path: Path) -> str:
    """A cache key for a source: its absolute path, size and modification time."""
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    h = hashlib.sha256(str(path.resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def _step(args: list[str], what: str, log: Path) -> None:
    """One conversion step in a child process (``__main__``), its output appended to ``log``."""
    try:
        _proc.run([sys.executable, "-m", "localml_kit.conversion", *args], what=what, log=log)
    except errors.ChildProcessFailedError as exc:
        raise errors.ConversionError(str(exc)) from exc


def build(
    path: Path, precision: str | None = None, *, progress: bool = True, force: bool = False
) -> Path:
    """The ONNX Runtime GenAI folder of a .gguf file or a Hugging Face folder (built once, cached).

    GGUF goes GGUF -> Hugging Face fp32 -> ONNX, offline, each step in a child
    process (its output in ``build.log`` beside the result); precision ``"gguf"``
    then carries the GGUF's own blocks into the fp32 build. Everything is
    cached under the kit home, keyed by the source's path, size and time.

    Usage (minutes the first time, at once from the cache)::

        build(Path("SmolLM2-135M-Instruct.Q4_1.gguf")).name  # 'onnx-gguf'
    """
    path = Path(path).expanduser()
    precision = precision or default_precision(path)
    check_source(path, precision)
    root = config.home() / "slm" / f"{path.stem}-{_digest(path)}"
    out = root / f"onnx-{precision}"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock")):
        if force:
            shutil.rmtree(out, ignore_errors=True)
        if (out / "genai_config.json").is_file():
            return out
        log = root / "build.log"
        steps = (2 if path.is_file() else 1) + (precision == "gguf")
        with tqdm(total=steps, desc=f"build {path.name} {precision}", disable=not progress) as bar:
            hf = path
            if path.is_file():
                hf = root / "hf-fp32"
                if not (hf / "config.json").is_file():
                    bar.set_postfix_str("GGUF -> Hugging Face fp32")
                    staging = root / ".staging-hf"
                    shutil.rmtree(staging, ignore_errors=True)
                    _step(["gguf-to-hf", str(path), str(staging)], "GGUF -> HF", log)
                    staging.rename(hf)
                bar.update(1)
            built = precision if precision != "gguf" else "fp32"
            target = root / f"onnx-{built}"
            if not (target / "genai_config.json").is_file():
                bar.set_postfix_str(f"Hugging Face -> ONNX {built}")
                staging = root / f".staging-{built}"
                shutil.rmtree(staging, ignore_errors=True)
                _step(["hf-to-genai", str(hf), str(staging), built], "HF -> ONNX", log)
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            bar.update(1)
            if precision == "gguf":
                bar.set_postfix_str("GGUF blocks -> ONNX")
                staging = root / ".staging-gguf"
                shutil.rmtree(staging, ignore_errors=True)
                _step(["carry-blocks", str(path), str(target), str(staging)], "GGUF blocks", log)
                staging.rename(out)
                bar.update(1)
    return out
