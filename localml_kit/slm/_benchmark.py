"""``bench``: each engine measured in its own child process (``_bench``), fidelity in this one."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from localml_kit import _genai, _proc, conversion, errors, models
from localml_kit.slm._fidelity import Reference
from localml_kit.slm._resolve import build, model_ref, source_gguf

BENCH_PROMPT = "Explain in a few paragraphs how a small language model can run on a laptop."
# One engine's run in its child may take this long before it is stopped.
_CHILD_TIMEOUT_S = 900.0

_COLUMNS = (
    "engine",
    "precision",
    "decode_tokens_per_s",
    "time_to_first_token_s",
    "peak_rss_mb",
    "load_s",
    "agreement",
    "mean_kl",
    "prompt_tokens",
    "new_tokens",
    "runs",
    "size_mb",
    "size_vs_gguf",
    "note",
    "error",
)
# What the llama.cpp row says when its CPU weight repacking crashed and it ran without.
NO_REPACK_NOTE = "llama.cpp's CPU weight repacking crashed on this file; measured with it off"


def _bench_child(
    engine: str,
    model: Path,
    ids: list[int],
    max_new: int,
    threads: int,
    spinning: bool = True,
    out: Path | None = None,
    repack: bool = True,
) -> dict:
    """One ``_bench`` run in a fresh process: its JSON figures, or ``{"error": ...}``
    (with ``"crashed": True`` when a signal ended it)."""
    with tempfile.TemporaryDirectory(prefix="localml-slm-") as tmp:
        prompt = Path(tmp) / "prompt.json"
        prompt.write_text(json.dumps(ids))
        done = _proc.run(
            [
                sys.executable,
                "-m",
                "localml_kit.slm._bench",
                engine,
                str(model),
                str(prompt),
                str(out) if out is not None else str(max_new),
                str(threads),
                *([] if spinning else ["nospin"]),
                *([] if repack else ["norepack"]),
            ],
            what=f"the {engine} benchmark of {model.name}",
            timeout=_CHILD_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        crashed = done.returncode < 0 or done.returncode > 128
        why = _proc.tail(done.stderr, lines=1, limit=300)
        if not why:
            why = f"killed by a signal (exit {done.returncode})" if crashed else "no output"
        return {"error": why, "crashed": crashed}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _llama_cpp_logits(gguf: Path, seq: list[int], threads: int, repack: bool = True) -> Any:
    """llama.cpp's teacher-forced logits over ``seq``, computed in a child process."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="localml-slm-") as tmp:
        out = Path(tmp) / "logits.npy"
        figures = _bench_child("llama-cpp-logits", gguf, seq, 0, threads, out=out, repack=repack)
        if "error" in figures:
            raise errors.ProfileRunError(
                f"llama.cpp could not score the sequence: {figures['error']}"
            )
        return np.load(out)


def _median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each timing over repeated runs; the largest peak RSS."""
    keys = ("decode_tokens_per_s", "time_to_first_token_s", "load_s")
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    out["prompt_tokens"] = runs[0]["prompt_tokens"]
    out["new_tokens"] = runs[0]["new_tokens"]
    return out


def bench(
    model: str | os.PathLike[str] | models.ModelRef = "smollm2-135m-instruct",
    precisions: tuple[str, ...] = conversion.PRECISIONS,
    *,
    prompt: str = BENCH_PROMPT,
    max_new_tokens: int = 128,
    threads: int = 2,
    llama_cpp: bool = True,
    repeats: int = 1,
    spinning: bool = True,
    progress: bool = True,
) -> Any:
    """Decode tokens/s, time to first token, peak RSS and fidelity per precision.

    Each engine generates ``max_new_tokens`` greedy tokens for the same prompt in a
    fresh process, ``repeats`` times in turn (engines interleaved, so a busy
    moment of the machine does not favour one); the row holds the medians and
    the largest peak RSS. ONNX Runtime's threads spin while waiting for work,
    as llama.cpp's do (``spinning=False`` lets them sleep, as ``Chat`` does).
    Fidelity is teacher-forced top-1 agreement and mean KL against the fp32
    build over the fp32 build's own continuation. llama.cpp runs on the
    model's GGUF (a sample's, or the GGUF file given) when ``llama-cpp-python``
    is installed (the kit installs nothing). Returns a DataFrame, one row per engine.

    Usage (fresh processes and an fp32 reference: 5 s on this machine even for 8 tokens)::

        table = bench(precisions=("int4",), max_new_tokens=32)
        table[["engine", "precision", "decode_tokens_per_s", "agreement"]]
    """
    import pandas as pd

    for precision in precisions:
        conversion.check_precision(precision)
    if repeats < 1 or max_new_tokens < 1 or threads < 1:
        raise errors.ConfigError(
            f"repeats, max_new_tokens and threads must each be at least 1 (got {repeats}, "
            f"{max_new_tokens}, {threads})."
        )
    ref = model_ref(model, progress=progress)
    folders = {p: build(ref, p, progress=progress) for p in dict.fromkeys(("fp32", *precisions))}
    reference = _genai.load_model(folders["fp32"], threads=threads)
    ids = _genai.chat_prompt_ids(_genai.tokenizer(reference), prompt)
    rows: list[dict[str, Any]] = []
    forced: Reference | None = None
    engines: list[tuple[str, str, Path]] = [
        ("onnxruntime-genai", p, folders[p]) for p in precisions
    ]
    has_llama = importlib.util.find_spec("llama_cpp") is not None
    gguf = source_gguf(ref)
    if llama_cpp and gguf is not None:
        engines.append(("llama.cpp", "gguf", gguf))
    runs: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(engines))}
    repack = True
    for _ in tqdm(range(repeats), desc="rounds", disable=not progress or repeats == 1):
        for i, (engine, _precision, path) in enumerate(engines):
            if engine == "llama.cpp" and not has_llama:
                continue
            kind = "genai" if engine != "llama.cpp" else "llama-cpp"
            run = _bench_child(kind, path, ids, max_new_tokens, threads, spinning, repack=repack)
            if engine == "llama.cpp" and run.get("crashed") and repack:
                repack = False  # a known llama.cpp failure on some K-quant files: run without
                run = _bench_child(kind, path, ids, max_new_tokens, threads, spinning, repack=False)
            runs[i].append(run)
    gguf_mb = gguf.stat().st_size / 1e6 if gguf is not None else None
    for i, (engine, precision, path) in enumerate(engines):
        row: dict[str, Any] = {"engine": engine, "precision": precision}
        row["size_mb"] = _size_mb(path)
        if gguf_mb:
            row["size_vs_gguf"] = row["size_mb"] / gguf_mb
        if engine == "llama.cpp" and not repack:
            row["note"] = NO_REPACK_NOTE
        if engine == "llama.cpp" and not has_llama:
            row["error"] = "llama-cpp-python is not installed (pip install llama-cpp-python)"
            rows.append(row)
            continue
        failed = [r["error"] for r in runs[i] if "error" in r]
        if failed:
            row["error"] = failed[0]
            rows.append(row)
            continue
        row.update(_median_figures(runs[i]))
        row["runs"] = len(runs[i])
        if engine != "llama.cpp":
            if forced is None:  # the fp32 build's continuation, as its engine generated it
                tokens = (
                    runs[i][0]["tokens"]
                    if precision == "fp32"
                    else _fp32_tokens(folders["fp32"], ids, max_new_tokens, threads)
                )
                forced = Reference.of(
                    reference, [prompt], [ids], label=str(folders["fp32"]), continuations=[tokens]
                )
            cand = _genai.load_model(path, threads=threads) if precision != "fp32" else reference
            score = forced.score(str(path), functools.partial(_genai.logits, cand))
            row.update(agreement=score.agreement, mean_kl=score.mean_kl)
        rows.append(row)
    llama_rows = [r for r in rows if r["engine"] == "llama.cpp" and "error" not in r]
    if llama_rows and forced is not None and gguf is not None:
        logits = _llama_cpp_logits(gguf, forced.sequences()[0], threads, repack)
        score = forced.score(str(gguf), lambda seq: logits)
        llama_rows[0].update(agreement=score.agreement, mean_kl=score.mean_kl)
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=[c for c in _COLUMNS if c in frame.columns])


def _size_mb(path: Path) -> float:
    """Megabytes on disk: a GGUF file, or a GenAI folder's model (graph and weights)."""
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(f.stat().st_size for f in path.glob("model.onnx*") if f.is_file()) / 1e6


def _fp32_tokens(folder: Path, ids: list[int], max_new_tokens: int, threads: int) -> list[int]:
    """The fp32 build's greedy continuation, generated in a child as the measured runs are."""
    figures = _bench_child("genai", folder, ids, max_new_tokens, threads)
    if "error" in figures:
        raise errors.ProfileRunError(
            f"the fp32 reference run of {folder} failed: {figures['error']}"
        )
    return list(figures["tokens"])
