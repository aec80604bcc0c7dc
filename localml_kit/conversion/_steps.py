"""The conversion steps, each meant to run in a child process so torch never enters the caller.

``conversion.build`` launches them as ``python -m localml_kit.conversion STEP ...``
(``__main__``); the samples' build steps, themselves child processes, call the
functions directly.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from localml_kit import _proc, errors

if TYPE_CHECKING:
    from localml_kit.conversion._carry import CarryReport

__all__ = ["carry_blocks", "gguf_to_hf", "hf_to_genai"]


def gguf_to_hf(gguf_file: Path, out: Path) -> None:
    """GGUF -> Hugging Face folder in fp32 (transformers dequantizes the blocks), offline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # The GGUF quantization config does not serialise; the weights are fp32 now.
        quantizer.remove_quantization_config(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def hf_to_genai(hf_folder: Path, out: Path, precision: str) -> None:
    """Hugging Face folder -> ONNX Runtime GenAI folder, with onnxruntime-genai's builder.

    The builder's output goes to this process's stdout and stderr (the build log);
    a failure raises :class:`~localml_kit.errors.ConversionError` with its tail.
    """
    cache = out.parent / f".builder-cache-{out.name}"
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "-i",
        str(hf_folder),
        "-o",
        str(out),
        "-p",
        precision,
        "-e",
        "cpu",
        "-c",
        str(cache),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        done = _proc.run(cmd, what="ONNX Runtime GenAI's model builder", env=env, check=False)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    # Into this step's own output (the build log), then the reason into the error.
    sys.stdout.write(done.stdout or "")
    sys.stderr.write(done.stderr or "")
    if done.returncode != 0:
        raise errors.ConversionError(
            f"ONNX Runtime GenAI's model builder failed on {hf_folder} (exit code "
            f"{done.returncode}): {_proc.tail(done.stderr) or _proc.tail(done.stdout) or 'no output'}"
        )
    if not (out / "genai_config.json").is_file():
        raise errors.ConversionError(
            f"ONNX Runtime GenAI's builder wrote no genai_config.json in {out}; its output "
            "in the build log says why. Try another precision, or update onnxruntime-genai."
        )


def carry_blocks(gguf_file: Path, fp32_folder: Path, out: Path) -> CarryReport:
    """Write ``out``: the fp32 GenAI model with the GGUF's quantized blocks carried in (``_carry``)."""
    from localml_kit.conversion._carry import carry

    return carry(gguf_file, fp32_folder, out)
