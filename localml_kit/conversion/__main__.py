"""The conversion steps as a child process (what ``conversion.build`` runs).

``python -m localml_kit.conversion gguf-to-hf GGUF_FILE OUT_FOLDER``
``python -m localml_kit.conversion hf-to-genai HF_FOLDER OUT_FOLDER PRECISION``
``python -m localml_kit.conversion carry-blocks GGUF_FILE FP32_GENAI_FOLDER OUT_FOLDER``

``carry-blocks`` prints its report (JSON) on stdout, into the build log.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from localml_kit.conversion._steps import carry_blocks, gguf_to_hf, hf_to_genai


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "gguf-to-hf":
        gguf_to_hf(Path(args[1]), Path(args[2]))
        return 0
    if len(args) == 4 and args[0] == "hf-to-genai":
        hf_to_genai(Path(args[1]), Path(args[2]), args[3])
        return 0
    if len(args) == 4 and args[0] == "carry-blocks":
        report = carry_blocks(Path(args[1]), Path(args[2]), Path(args[3]))
        print(json.dumps(report.to_dict()))
        return 0
    print(
        "usage: python -m localml_kit.conversion gguf-to-hf GGUF OUT"
        " | hf-to-genai HF OUT PREC | carry-blocks GGUF FP32 OUT",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
