"""Model conversion below the samples: GGUF -> Hugging Face fp32 -> ONNX Runtime GenAI.

The mechanics that ``slm.build`` (for any GGUF file or Hugging Face folder) and
the SmolLM2 sample's build steps share: the three steps, each meant to run in
a child process (``python -m localml_kit.conversion STEP ...``) so that torch
never enters the caller, and :func:`build`, which checks a source, runs the
steps it needs and caches the result. Precision ``"gguf"`` carries a GGUF's own
quantized blocks into the ONNX model (``_carry``, ``_blocks``).

This package imports no other part of the kit above ``config``, ``errors`` and
``_proc``; ``slm.build`` is the public entry point that also takes samples.

Example:
    >>> from localml_kit import conversion
    >>> conversion.default_precision("model.Q4_1.gguf")
    'gguf'
    >>> from localml_kit import samples
    >>> hf_folder = samples.path("smollm2-135m-instruct", "hf-fp32")
    >>> conversion.check_source(hf_folder, "int4")  # it builds: no error
    >>> conversion.check_source(hf_folder, "gguf")
    Traceback (most recent call last):
    localml_kit.errors.ModelFormatError: precision 'gguf' carries a GGUF file's quantized blocks, and hf-fp32 is a Hugging Face folder; ...
    >>> conversion.PRECISIONS
    ('gguf', 'int4', 'int8', 'fp32')

Building takes minutes (three child processes)::

    conversion.build(Path("model.Q4_1.gguf"), "int8").name  # 'onnx-int8'
"""

from __future__ import annotations

from localml_kit.conversion._pipeline import (
    GGUF_ARCHITECTURES,
    HF_ARCHITECTURES,
    PRECISIONS,
    build,
    check_precision,
    check_source,
    default_precision,
)
from localml_kit.conversion._steps import carry_blocks, gguf_to_hf, hf_to_genai

__all__ = [
    "GGUF_ARCHITECTURES",
    "HF_ARCHITECTURES",
    "PRECISIONS",
    "build",
    "carry_blocks",
    "check_precision",
    "check_source",
    "default_precision",
    "gguf_to_hf",
    "hf_to_genai",
]
