"""Fidelity: teacher-forced next-token agreement and mean KL of a candidate against a reference.

One way, used by :func:`fidelity` and by ``bench``: the reference's greedy
continuation of each prompt is fixed once (:class:`Reference`); every
candidate then reads prompt + continuation in one teacher-forced pass and its
next-token choices over the continuation are compared with the reference's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from localml_kit import _genai, models
from localml_kit.slm._chat import default_threads
from localml_kit.slm._resolve import resolve_model

DEFAULT_PROMPTS = (
    "Explain photosynthesis in simple terms.",
    "Write a short email asking a colleague to review a document.",
    "What are three tips for learning a new language?",
    "Describe how a bicycle works.",
)


def teacher_forced_logits(model: Any, token_ids: list[int]) -> Any:
    """Logits at every position of ``token_ids`` in one forward pass (numpy float32 [len, vocab]).

    ``model`` is an ``onnxruntime_genai.Model``.

    Example:
        >>> from localml_kit import samples
        >>> model = _genai.load_model(samples.path("smollm2-135m-instruct"), threads=2)
        >>> teacher_forced_logits(model, [1, 2, 3]).shape
        (3, 49152)
    """
    return _genai.logits(model, token_ids)


@dataclass
class Fidelity:
    """Teacher-forced next-token agreement and mean KL of a candidate against a reference."""

    candidate: str
    reference: str
    agreement: float
    mean_kl: float
    positions: int
    per_prompt: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reference:
    """A reference's continuations of some prompts and its logits where they are predicted.

    ``prompt_ids[i] + continuations[i]`` is the sequence every model reads for
    prompt ``i``; ``logits[i]`` are the reference's at the positions that predict
    the continuation (one row per continuation token).
    """

    label: str
    prompts: tuple[str, ...]
    prompt_ids: tuple[tuple[int, ...], ...]
    continuations: tuple[tuple[int, ...], ...]
    logits: tuple[np.ndarray, ...]

    @classmethod
    def of(
        cls,
        model: Any,
        prompts: Sequence[str],
        prompt_ids: Sequence[Sequence[int]],
        *,
        label: str,
        max_new_tokens: int = 64,
        continuations: Sequence[Sequence[int]] | None = None,
        progress: bool = False,
    ) -> Reference:
        """The reference ``model``'s greedy continuations (or the ``continuations`` given) and logits."""
        conts, logits = [], []
        for i, ids in enumerate(
            tqdm(prompt_ids, desc="reference continuations", disable=not progress)
        ):
            cont = (
                list(continuations[i])
                if continuations is not None
                else _genai.greedy_ids(model, ids, max_new_tokens)
            )
            seq = [*ids, *cont]
            conts.append(tuple(cont))
            logits.append(_genai.logits(model, seq)[_span(len(ids), len(seq))])
        return cls(
            label,
            tuple(prompts),
            tuple(tuple(int(t) for t in ids) for ids in prompt_ids),
            tuple(conts),
            tuple(logits),
        )

    def sequences(self) -> list[list[int]]:
        """Prompt + continuation of each prompt: what every candidate reads."""
        return [
            [*ids, *cont] for ids, cont in zip(self.prompt_ids, self.continuations, strict=True)
        ]

    def score(self, candidate: str, logits_of: Callable[[list[int]], np.ndarray]) -> Fidelity:
        """Agreement and mean KL of the candidate whose logits over a sequence ``logits_of`` gives.

        Example:
            >>> from localml_kit import samples
            >>> int8 = _genai.load_model(samples.path("smollm2-135m-instruct", "onnx-int8"), threads=2)
            >>> int4 = _genai.load_model(samples.path("smollm2-135m-instruct", "onnx-int4"), threads=2)
            >>> prompt = ["Describe how a bicycle works."]
            >>> ids = [_genai.chat_prompt_ids(_genai.tokenizer(int8), prompt[0])]
            >>> ref = Reference.of(int8, prompt, ids, label="int8", max_new_tokens=8)
            >>> ref.score("int8", lambda seq: _genai.logits(int8, seq)).agreement  # itself
            1.0
            >>> f = ref.score("int4", lambda seq: _genai.logits(int4, seq))
            >>> f.positions, 0 <= f.agreement <= 1
            (8, True)
        """
        from localml_kit.compare import token_agreement

        rows, picked = [], []
        for prompt, ids, seq, ref in zip(
            self.prompts, self.prompt_ids, self.sequences(), self.logits, strict=True
        ):
            cand = np.asarray(logits_of(seq))[_span(len(ids), len(seq))]
            stats = token_agreement(ref, cand)
            rows.append(
                {
                    "prompt": prompt,
                    "positions": stats.positions,
                    "agreement": stats.agreement,
                    "mean_kl": stats.mean_kl,
                }
            )
            picked.append(cand)
        total = token_agreement(list(self.logits), picked)
        return Fidelity(
            candidate=candidate,
            reference=self.label,
            agreement=total.agreement,
            mean_kl=total.mean_kl,
            positions=total.positions,
            per_prompt=rows,
        )


def _span(prompt_len: int, seq_len: int) -> slice:
    """The positions of a sequence that predict its continuation."""
    return slice(prompt_len - 1, seq_len - 1)


def fidelity(
    candidate: str | os.PathLike[str] | models.ModelRef,
    reference: str | os.PathLike[str] | models.ModelRef = "smollm2-135m-instruct:onnx-fp32",
    *,
    prompts: tuple[str, ...] | list[str] = DEFAULT_PROMPTS,
    max_new_tokens: int = 64,
    threads: int | None = None,
    progress: bool = True,
) -> Fidelity:
    """How often ``candidate`` picks the reference's next token, with the reference's text as input.

    For each prompt the reference generates ``max_new_tokens`` greedy tokens;
    both models then read prompt + continuation in one teacher-forced pass and
    their next-token choices over the continuation are compared (top-1
    agreement) along with the mean KL divergence of their distributions.
    Exact generated text is the wrong test: greedy near-ties flip between
    engines and one flip changes all the text after it.

    Example:
        >>> f = fidelity("smollm2-135m-instruct", "smollm2-135m-instruct:onnx-int8",
        ...              prompts=["Describe how a bicycle works."], max_new_tokens=8, threads=2)
        >>> f.positions, 0 <= f.agreement <= 1, f.mean_kl >= 0
        (8, True, True)
    """
    threads = threads or default_threads()
    ref_path = resolve_model(reference)
    cand_path = resolve_model(candidate)
    ref_model = _genai.load_model(ref_path, threads=threads)
    tok = _genai.tokenizer(ref_model)
    ref = Reference.of(
        ref_model,
        prompts,
        [_genai.chat_prompt_ids(tok, p) for p in prompts],
        label=str(ref_path),
        max_new_tokens=max_new_tokens,
        progress=progress,
    )
    cand_model = _genai.load_model(cand_path, threads=threads)
    return ref.score(str(cand_path), lambda seq: _genai.logits(cand_model, seq))
