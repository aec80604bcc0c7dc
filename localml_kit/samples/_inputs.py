"""Realistic example inputs for the sample models (used by profiling and comparisons).

Each function takes the sample's folder, a batch size, named dims and a seed,
and returns the model's inputs. A sample names its function in the registry
(``Sample.inputs``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

SENTENCES = (
    "How do I run a language model on my laptop without a GPU?",
    "The quarterly report is due on Friday.",
    "Quantization stores weights in eight bits instead of thirty-two.",
    "A cat sat on the warm windowsill all afternoon.",
    "Which execution provider should I use on an Intel CPU?",
    "Semantic search finds documents by meaning, not by exact words.",
    "The train to Lyon leaves at half past nine.",
    "Memory, not compute, decides whether a model fits.",
    "Please reset my password; I cannot log in since yesterday.",
    "Sentence embeddings turn text into vectors of 384 numbers.",
    "Profiling shows where the time goes, operator by operator.",
    "It rained all week, so the football match was cancelled.",
)


def minilm_sentences(
    folder: Path, batch: int, dims: Mapping[str, int], seed: int
) -> dict[str, np.ndarray]:
    """Real sentences through the model's own tokenizer; ``dims["sequence"]`` pads or cuts."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    seq = dims.get("sequence") or dims.get("seq")
    tok.no_padding()
    tok.no_truncation()
    if seq:
        tok.enable_truncation(max_length=int(seq))
        tok.enable_padding(length=int(seq))
    else:
        tok.enable_truncation(max_length=256)
        tok.enable_padding()
    start = seed % len(SENTENCES)
    texts = [SENTENCES[(start + i) % len(SENTENCES)] for i in range(batch)]
    enc = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }


def _text_image(batch: int, height: int, width: int, seed: int) -> np.ndarray:
    """Dark strokes on a light page, normalised as PP-OCR does ((x - 0.5) / 0.5)."""
    rng = np.random.default_rng(seed)
    img = np.full((batch, 3, height, width), 0.95, dtype=np.float32)
    line_h = max(4, height // 12) if height > 64 else max(4, height // 2)
    for b in range(batch):
        top = line_h // 2
        while top + line_h < height:
            x = int(rng.integers(2, max(3, width // 10)))
            while x < width - 4:
                w = int(rng.integers(2, max(3, line_h)))
                img[b, :, top : top + line_h, x : min(width, x + w)] = 0.1
                x += w + int(rng.integers(1, max(2, line_h // 2)))
            top += 2 * line_h if height > 64 else height
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return ((np.clip(img, 0, 1) - 0.5) / 0.5).astype(np.float32)


def _ocr(default_hw: tuple[int, int]) -> Callable[[Path, int, Mapping[str, int], int], dict]:
    def make(folder: Path, batch: int, dims: Mapping[str, int], seed: int) -> dict:
        height = int(dims.get("height", default_hw[0]))
        width = int(dims.get("width", default_hw[1]))
        return {"x": _text_image(batch, height, width, seed)}

    return make


def digits_rows(
    folder: Path, batch: int, dims: Mapping[str, int], seed: int
) -> dict[str, np.ndarray]:
    """Rows of the held-out digits (8x8 images flattened to 64 floats)."""
    x = np.load(folder / "test_set.npz")["x"]
    start = seed % len(x)
    return {"X": x[(start + np.arange(batch)) % len(x)].astype(np.float32)}


INPUTS: dict[str, Callable[[Path, int, Mapping[str, int], int], dict[str, np.ndarray]]] = {
    "minilm_sentences": minilm_sentences,
    "ppocr_det_page": _ocr((640, 640)),
    "ppocr_rec_line": _ocr((48, 320)),
    "ppocr_cls_line": _ocr((48, 192)),
    "digits_rows": digits_rows,
}
