"""Language models: teacher-forced logits from ONNX Runtime GenAI folders and Hugging Face folders."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from localml_kit import _genai, _proc, errors, models
from localml_kit.compare._metrics import Tolerance, default_tolerance, token_agreement


def lm_folder(model: str | os.PathLike[str] | models.ModelRef) -> Path:
    """The folder of a language model: a path, or a sample ``name:variant`` (e.g. ``:onnx-int8``).

    Example:
        >>> lm_folder("smollm2-135m-instruct:hf-fp32").name
        'hf-fp32'
    """
    return models.resolve(model).folder


def _kind(folder: Path) -> str:
    if (folder / "genai_config.json").is_file():
        return "genai"
    if (folder / "config.json").is_file():
        return "transformers"
    raise errors.ModelFormatError(
        f"{folder} is neither an ONNX Runtime GenAI folder (genai_config.json) nor a "
        "Hugging Face folder (config.json)."
    )


def lm_precision(folder: Path) -> str:
    """fp32/fp16/int8/int4 of a language-model folder (GenAI: from its operators)."""
    if _kind(folder) == "genai":
        from localml_kit.compare._runners import onnx_precision

        onnx_files = sorted(folder.glob("*.onnx"))
        return onnx_precision(onnx_files[0]) if onnx_files else "fp32"
    for p in ("int4", "int8", "fp16", "bf16"):
        if p in folder.name:
            return p
    return "fp32"


def tokenize(model: str | os.PathLike[str], prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt with the model folder's own ``tokenizer.json``.

    Example:
        >>> tokenize("smollm2-135m-instruct:hf-fp32", ["Hello"])
        [[19556]]
    """
    from tokenizers import Tokenizer

    folder = lm_folder(model)
    file = folder / "tokenizer.json"
    if not file.is_file():
        raise errors.ModelFormatError(f"{folder} has no tokenizer.json; pass token ids instead.")
    tok = Tokenizer.from_file(str(file))
    return [tok.encode(p).ids for p in prompts]


def lm_logits(
    model: str | os.PathLike[str], tokens: Sequence[Sequence[int]], *, threads: int = 1
) -> list[np.ndarray]:
    """Teacher-forced logits (sequence x vocabulary) for each list of token ids.

    An ONNX Runtime GenAI folder runs here (``Generator.append_tokens`` then the
    ``logits`` output); a Hugging Face folder runs with transformers in a child
    process (torch never enters this process).

    Example:
        >>> ids = tokenize("smollm2-135m-instruct:onnx-int8", ["The sky is"])
        >>> lm_logits("smollm2-135m-instruct:onnx-int8", ids)[0].shape
        (3, 49152)
    """
    folder = lm_folder(model)
    lists = [[int(t) for t in ids] for ids in tokens]
    if any(not ids for ids in lists):
        raise errors.InputError("every prompt needs at least one token.")
    if _kind(folder) == "genai":
        return _genai_logits(folder, lists, threads)
    return _hf_logits(folder, lists, threads)


def _genai_logits(folder: Path, tokens: list[list[int]], threads: int) -> list[np.ndarray]:
    model = _genai.load_model(folder, threads=threads, log_severity=3)
    return [_genai.logits(model, ids) for ids in tokens]


def _hf_logits(folder: Path, tokens: list[list[int]], threads: int) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="localml-lm-") as tmp:
        t = Path(tmp)
        (t / "tokens.json").write_text(json.dumps(tokens))
        cmd = [
            sys.executable,
            "-m",
            "localml_kit.compare._hf_worker",
            str(folder),
            str(t / "tokens.json"),
            str(t / "out.npz"),
            str(threads),
        ]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        proc = _proc.run(
            cmd, what=f"transformers on {folder.name}", timeout=900, env=env, check=False
        )
        if proc.returncode != 0:
            text = proc.stderr.strip()
            if "No module named 'torch'" in text or "No module named 'transformers'" in text:
                raise errors.OptionalDependencyError(
                    "a Hugging Face reference needs torch and transformers: "
                    "pip install torch 'localml-kit[build]'"
                )
            last = (text.splitlines() or ["no output"])[-1]
            raise errors.ModelFormatError(f"transformers could not run {folder}: {last[:300]}")
        data = np.load(t / "out.npz")
        return [data[str(i)] for i in range(len(tokens))]


def language_models(
    reference: str | os.PathLike[str],
    candidates: Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]],
    prompts: Sequence[str],
    *,
    tolerances: Mapping[str, Tolerance] | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Teacher-forced next-token agreement and mean KL of each candidate against a reference LM.

    The prompts are tokenized once with the reference's tokenizer; every model
    scores the same tokens. Returns one row per candidate: candidate, precision,
    agreement, top5, mean_kl, max_kl, positions, passed, reason (the default
    tolerance per precision: fp32 99%, fp16 97%, int8 90%, int4 60% agreement).

    Example (an ``hf-fp32`` reference works too, with transformers in a child process):
        >>> table = language_models("smollm2-135m-instruct:onnx-fp32",
        ...                         ["smollm2-135m-instruct:onnx-int8"], ["The sky is blue."])
        >>> table[["candidate", "precision", "positions", "passed"]]
                                 candidate precision  positions  passed
        0  smollm2-135m-instruct:onnx-int8      int8          5    True
    """
    items = (
        list(candidates.items())
        if isinstance(candidates, Mapping)
        else [(os.fspath(c), c) for c in candidates]
    )
    tokens = tokenize(reference, prompts)
    ref = lm_logits(reference, tokens, threads=threads)
    rows = []
    for label, cand in items:
        folder = lm_folder(cand)
        precision = lm_precision(folder)
        logits = lm_logits(cand, tokens, threads=threads)
        if logits[0].shape[-1] != ref[0].shape[-1]:
            raise errors.OutputMismatchError(
                f"{label}: vocabulary of {logits[0].shape[-1]} logits, the reference has "
                f"{ref[0].shape[-1]}; compare models that share a tokenizer."
            )
        stats = token_agreement(ref, logits)
        tol = (tolerances or {}).get(precision) or default_tolerance(precision)
        ok = stats.agreement >= tol.token_agreement
        rows.append(
            {
                "candidate": str(label),
                "precision": precision,
                "agreement": stats.agreement,
                "top5": stats.top5,
                "mean_kl": stats.mean_kl,
                "max_kl": stats.max_kl,
                "positions": stats.positions,
                "passed": ok,
                "reason": ""
                if ok
                else f"agreement {stats.agreement:.1%} < {tol.token_agreement:.0%}",
            }
        )
    return pd.DataFrame(rows)
