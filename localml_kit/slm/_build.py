"""Build steps for ``slm.build``, run in a child process so torch never enters the caller.

``python -m localml_kit.slm._build gguf-to-hf GGUF_FILE OUT_FOLDER``
``python -m localml_kit.slm._build hf-to-genai HF_FOLDER OUT_FOLDER PRECISION``
``python -m localml_kit.slm._build carry-blocks GGUF_FILE FP32_GENAI_FOLDER OUT_FOLDER``
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


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
    """Hugging Face folder -> ONNX Runtime GenAI folder, with onnxruntime-genai's builder."""
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
        subprocess.run(cmd, check=True, env=env)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if not (out / "genai_config.json").is_file():
        raise RuntimeError(f"the ONNX Runtime GenAI builder wrote no genai_config.json in {out}")


def carry_blocks(gguf_file: Path, fp32_folder: Path, out: Path) -> None:
    """The fp32 GenAI model with the GGUF's quantized blocks carried in (see ``_carry``)."""
    import json

    from localml_kit.slm._carry import carry

    print(json.dumps(carry(gguf_file, fp32_folder, out).to_dict()))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "gguf-to-hf":
        gguf_to_hf(Path(args[1]), Path(args[2]))
        return 0
    if len(args) == 4 and args[0] == "hf-to-genai":
        hf_to_genai(Path(args[1]), Path(args[2]), args[3])
        return 0
    if len(args) == 4 and args[0] == "carry-blocks":
        carry_blocks(Path(args[1]), Path(args[2]), Path(args[3]))
        return 0
    print(
        "usage: python -m localml_kit.slm._build gguf-to-hf GGUF OUT | hf-to-genai HF OUT PREC"
        " | carry-blocks GGUF FP32 OUT"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
