"""Teacher-forced logits from a Hugging Face (transformers) folder, in a child process.

``python -m localml_kit.compare._hf_worker FOLDER TOKENS.json OUT.npz THREADS``:
reads lists of token ids, runs the causal LM once per list in fp32 and saves
the logits (``"0"``, ``"1"``, ...). A child process keeps torch and its memory
out of the caller's process and notebook kernel.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    folder, tokens_path, out_path, threads = argv
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(max(1, int(threads)))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with open(tokens_path) as fh:
        token_lists = json.load(fh)
    out = {}
    with torch.no_grad():
        for i, ids in enumerate(token_lists):
            logits = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]
            out[str(i)] = logits.float().numpy()
    np.savez(out_path, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
