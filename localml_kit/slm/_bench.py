"""One engine's generation figures, measured in a fresh process (so peak RSS is its own).

``python -m localml_kit.slm._bench genai FOLDER PROMPT_JSON MAX_NEW THREADS [nospin]``
``python -m localml_kit.slm._bench llama-cpp GGUF PROMPT_JSON MAX_NEW THREADS [norepack]``
``python -m localml_kit.slm._bench llama-cpp-logits GGUF SEQUENCE_JSON OUT_NPY THREADS [norepack]``

``norepack`` loads the GGUF without llama.cpp's CPU weight repacking
(``use_extra_bufts`` off), for files whose repacked kernels crash.

PROMPT_JSON holds the prompt's token ids. Prints one JSON line: load_s,
prompt_tokens, new_tokens, time_to_first_token_s, decode_tokens_per_s,
peak_rss_mb, and the generated token ids.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from localml_kit import _genai
from localml_kit.slm._rss import PeakRSS


def genai(folder: str, ids: list[int], max_new: int, threads: int, spinning: bool = True) -> dict:
    with PeakRSS() as rss:
        start = time.perf_counter()
        # Spinning threads wait for work without sleeping, as llama.cpp's do by default.
        model = _genai.load_model(folder, threads=threads, spinning=spinning)
        load = time.perf_counter() - start
        start = time.perf_counter()
        out: list[int] = []
        first = 0.0
        for token in _genai.tokens(model, ids, max_new):
            out.append(token)
            if len(out) == 1:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
    return _figures(load, ids, out, first, total, rss.peak / 1e6)


def _llama(gguf: str, threads: int, repack: bool = True, **options: Any) -> Any:
    """llama.cpp's model; ``repack=False`` turns off its CPU weight repacking."""
    import llama_cpp as lib

    if not repack:
        default = lib.llama_model_default_params

        def params() -> Any:
            p = default()
            p.use_extra_bufts = False
            return p

        lib.llama_cpp.llama_model_default_params = params  # what Llama() below reads
    return lib.Llama(model_path=gguf, n_ctx=2048, n_threads=threads, verbose=False, **options)


def llama_cpp(gguf: str, ids: list[int], max_new: int, threads: int, repack: bool = True) -> dict:
    with PeakRSS() as rss:
        start = time.perf_counter()
        llm = _llama(gguf, threads, repack)
        load = time.perf_counter() - start
        start = time.perf_counter()
        out: list[int] = []
        first = 0.0
        for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
            out.append(int(token))
            if len(out) == 1:
                first = time.perf_counter() - start
            if token == llm.token_eos() or len(out) >= max_new:
                break
        total = time.perf_counter() - start
    return _figures(load, ids, out, first, total, rss.peak / 1e6)


def llama_cpp_logits(
    gguf: str, ids: list[int], out: str, threads: int, repack: bool = True
) -> dict:
    """llama.cpp's next-token logits at every position of ``ids`` (teacher-forced), to .npy."""
    import numpy as np

    llm = _llama(gguf, threads, repack, logits_all=True)
    llm.eval(ids)
    np.save(out, np.asarray(llm.scores[: len(ids)], dtype=np.float32))
    return {"positions": len(ids)}


def _figures(
    load: float, ids: list[int], out: list[int], first: float, total: float, rss: float
) -> dict:
    decode = total - first
    return {
        "load_s": load,
        "prompt_tokens": len(ids),
        "new_tokens": len(out),
        "time_to_first_token_s": first,
        "decode_tokens_per_s": (len(out) - 1) / decode if len(out) > 1 and decode > 0 else 0.0,
        "peak_rss_mb": rss,
        "tokens": out,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    engine, model, prompt_file, max_new, threads = args[:5]
    ids = json.loads(Path(prompt_file).read_text())
    if engine == "genai":
        figures = genai(model, ids, int(max_new), int(threads), spinning=args[5:] != ["nospin"])
    elif engine == "llama-cpp-logits":
        figures = llama_cpp_logits(model, ids, max_new, int(threads), args[5:] != ["norepack"])
    else:
        figures = llama_cpp(model, ids, int(max_new), int(threads), args[5:] != ["norepack"])
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
