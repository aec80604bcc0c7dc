"""Compare outputs: the same inputs through a reference and candidates, error and agreement per output.

The reference and the candidates may be ONNX files or sample names (on any
provider: ``"model.onnx@openvino"`` or ``("model.onnx", "openvino")`` runs in the
provider environment's Python when this ONNX Runtime lacks it; or on another
engine: ``"model.onnx@tract"``, ``"model.onnx@web"``), ONNX Runtime
sessions, variants made by :mod:`localml_kit.optimize`, Python code (a
scikit-learn estimator, a torch module, a function) or recorded outputs (a dict
of arrays). Per output: max and mean absolute error, max relative error, cosine
similarity; top-1/top-k agreement for scores and probabilities, label agreement
for labels, nearest-neighbour agreement for embeddings; a verdict against a
tolerance chosen by the candidate's precision.

For language models, :func:`token_agreement` (a pure function over logits) and
:func:`language_models` (teacher-forced over prompts) measure next-token
agreement and mean KL divergence.

Example:
    >>> from localml_kit import compare
    >>> result = compare.outputs("all-minilm-l6-v2", ["all-minilm-l6-v2@openvino"])
    >>> result.table[["candidate", "output", "judged", "passed"]]
                       candidate              output  judged  passed
    0  all-minilm-l6-v2@openvino   last_hidden_state   False    True
    1  all-minilm-l6-v2@openvino  sentence_embedding    True    True
    >>> result.verdicts()
    {'all-minilm-l6-v2@openvino': True}
    >>> fig = result.plot()  # one panel of |candidate - reference| per output
    >>> len(fig.axes)
    2
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import errors, models, providers, samples
from localml_kit.compare._lm import language_models, lm_folder, lm_logits, tokenize
from localml_kit.compare._metrics import (
    KINDS,
    PRECISIONS,
    TokenAgreement,
    Tolerance,
    default_tolerance,
    error_stats,
    guess_kind,
    label_agreement,
    neighbour_agreement,
    row_cosines,
    token_agreement,
    topk_agreement,
    verdict,
)
from localml_kit.compare._nodes import per_node
from localml_kit.compare._result import COLUMNS, Comparison
from localml_kit.compare._runners import (
    Runner,
    as_runner,
    callable_runner,
    engine_runner,
    onnx_precision,
    onnx_runner,
    recorded_runner,
    split_provider,
)
from localml_kit.compare._text import corpus, sentence_inputs, sentence_tokenizer
from localml_kit.inputs import Feeds, dims_of, inputs_for

__all__ = [
    "COLUMNS",
    "KINDS",
    "PRECISIONS",
    "Comparison",
    "Runner",
    "TokenAgreement",
    "Tolerance",
    "as_runner",
    "callable_runner",
    "corpus",
    "default_inputs",
    "default_tolerance",
    "engine_runner",
    "error_stats",
    "guess_kind",
    "label_agreement",
    "language_models",
    "lm_folder",
    "lm_logits",
    "neighbour_agreement",
    "onnx_precision",
    "onnx_runner",
    "outputs",
    "per_node",
    "recorded_runner",
    "row_cosines",
    "sentence_inputs",
    "sentence_tokenizer",
    "split_provider",
    "token_agreement",
    "tokenize",
    "topk_agreement",
    "verdict",
]

Inputs = Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]] | Feeds
_HIST_SAMPLE = 200_000


def default_inputs(
    reference: Any,
    *,
    batch: int = 8,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    vocab_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Inputs for a reference given by name: a sample's realistic example inputs, else from its specs.

    The same as ``localml_kit.inputs.inputs_for(reference, ...).arrays``.

    Example:
        >>> feeds = default_inputs("all-minilm-l6-v2")
        >>> sorted(feeds), feeds["input_ids"].shape[0]
        (['attention_mask', 'input_ids', 'token_type_ids'], 8)
    """
    return _default_feeds(
        reference, batch=batch, dims=dims, seed=seed, vocab_size=vocab_size
    ).arrays


def _reference_ref(reference: Any) -> models.ModelRef | None:
    if isinstance(reference, tuple) and len(reference) == 2 and isinstance(reference[1], str):
        reference = reference[0]
    return models.as_ref(reference)


def _default_feeds(
    reference: Any,
    *,
    batch: int,
    dims: Mapping[str, int] | None,
    seed: int = 0,
    vocab_size: int | None = None,
) -> Feeds:
    ref = _reference_ref(reference)
    if ref is None:
        raise errors.InputError(
            "give inputs=: the reference is not a model file or sample, so the kit cannot make "
            "inputs."
        )
    return inputs_for(ref, batch=batch, dims=dims, seed=seed, vocab_size=vocab_size)


def _is_provider(name: str) -> bool:
    try:
        providers.resolve(name)
    except errors.UnknownProviderError:
        return False
    return True


def _items(candidates: Any) -> list[tuple[str | None, Any]]:
    if isinstance(candidates, Mapping) and not all(
        isinstance(v, np.ndarray) for v in candidates.values()
    ):
        return [(str(k), v) for k, v in candidates.items()]
    if isinstance(candidates, str | os.PathLike) or not isinstance(candidates, Sequence):
        return [(None, candidates)]
    if (
        isinstance(candidates, tuple)
        and len(candidates) == 2
        and isinstance(candidates[1], str)
        and _is_provider(candidates[1])
    ):
        return [(None, candidates)]
    return [(None, c) for c in candidates]


def _named(result: Any, names: list[str] | None, label: str) -> dict[str, np.ndarray]:
    if isinstance(result, dict):
        return result
    if names is None:
        return {f"output_{i}": v for i, v in enumerate(result)}
    if len(result) != len(names):
        raise errors.OutputMismatchError(
            f"{label} returned {len(result)} unnamed output(s) but the reference has "
            f"{len(names)} ({', '.join(names)}); return a dict of named arrays, or one array "
            "per reference output in that order."
        )
    return dict(zip(names, result, strict=True))


def _check_match(
    label: str, ref: dict[str, np.ndarray], cand: dict[str, np.ndarray], strict: bool
) -> None:
    for name, r in ref.items():
        if name not in cand:
            raise errors.OutputMismatchError(
                f"{label} has no output {name!r} (its outputs: {', '.join(cand) or 'none'}; the "
                f"reference's: {', '.join(ref)}). Compare models with the same output names, or "
                "return a dict keyed by the reference's names."
            )
        c = cand[name]
        if np.shape(c) != np.shape(r):
            raise errors.OutputMismatchError(
                f"output {name!r} differs in shape: reference {tuple(np.shape(r))}, "
                f"{label} {tuple(np.shape(c))}."
            )
        rk, ck = np.asarray(r).dtype, np.asarray(c).dtype
        same_kind = rk.kind == ck.kind or {rk.kind, ck.kind} <= {"i", "u"}
        if (strict and rk != ck) or not same_kind:
            raise errors.OutputMismatchError(
                f"output {name!r} differs in dtype: reference {rk}, {label} {ck}"
                + ("" if same_kind else " (a different kind of value: labels against scores?).")
            )


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return np.asarray(parts[0])
    shapes = {np.shape(p)[1:] for p in parts}
    if len(shapes) == 1 and all(np.ndim(p) >= 1 for p in parts):
        return np.concatenate(parts, axis=0)
    return np.concatenate([np.ravel(p) for p in parts])


def outputs(
    reference: Any,
    candidates: Any,
    inputs: Inputs | None = None,
    *,
    tolerances: Mapping[str, Tolerance] | Tolerance | None = None,
    kinds: Mapping[str, str] | None = None,
    precision: Mapping[str, str] | None = None,
    top_k: int = 5,
    batch: int = 8,
    strict_dtypes: bool = False,
    only: Sequence[str] | None = None,
    dims: Mapping[str, int] | None = None,
    vocab_size: int | None = None,
    timeout_s: float | None = None,
) -> Comparison:
    """Run the same inputs through a reference and candidates; compare every output.

    ``candidates``: one candidate, a list, or a dict ``{label: candidate}``.
    ``inputs``: a dict of arrays, or a list of such dicts (their outputs are
    pooled); default: a sample's realistic example inputs (``batch`` rows), else
    inputs made from the reference's input specs. ``kinds`` overrides the guessed
    kind per output name (label, scores, embedding, tensor); ``precision``
    overrides a candidate's precision by label; ``tolerances`` maps a precision
    to a :class:`Tolerance` (or one Tolerance for all). ``only`` limits the
    comparison to some outputs (e.g. a sentence encoder's pooled embedding).
    The verdict judges the outputs that matter: ``only``, else a sample's
    primary outputs (MiniLM's ``sentence_embedding``), else every output; the
    others are reported with ``judged`` False. ``dims`` and ``vocab_size``
    shape the inputs made when none are given (see :mod:`localml_kit.inputs`);
    the dims used are in :attr:`Comparison.dims`. ``timeout_s`` runs ONNX
    models in a child process that is killed past that many seconds, so a
    hanging model raises :class:`~localml_kit.errors.ChildTimeoutError`
    instead of freezing the notebook.

    Bad input: a candidate whose outputs differ in name, shape or dtype kind
    raises :class:`~localml_kit.errors.OutputMismatchError` saying which and how;
    missing inputs raise :class:`~localml_kit.errors.InputError` naming them.

    Example:
        >>> result = outputs("digits-mlp", {"same": "digits-mlp"})
        >>> result.verdicts()
        {'same': True}
    """
    ref_model = _reference_ref(reference)
    ref_runner = as_runner(
        ref_model if ref_model is not None and not isinstance(reference, tuple) else reference,
        timeout_s=timeout_s,
    )
    feeds_list: list[Mapping[str, np.ndarray]]
    used_dims: dict[str, int] = {}
    input_notes: list[str] = []
    if inputs is None:
        inputs = _default_feeds(
            ref_model or reference, batch=batch, dims=dims, vocab_size=vocab_size
        )
    if isinstance(inputs, Feeds):
        feeds_list = [inputs.arrays]
        used_dims = dict(inputs.dims)
        input_notes = list(inputs.notes)
        described = f"{inputs.source}: {inputs.shapes_text()}"
    elif isinstance(inputs, Mapping):
        feeds_list = [inputs]
        described = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in inputs.items())
    else:
        feeds_list = list(inputs)
        described = f"{len(feeds_list)} input sets"
    if not feeds_list:
        raise errors.InputError("inputs is an empty list; give at least one dict of arrays.")
    if not used_dims and ref_model is not None and ref_model.kind in ("onnx", "genai"):
        with contextlib.suppress(errors.LocalMLError):
            used_dims = dims_of(ref_model.io.inputs, feeds_list[0])
    runners = [
        as_runner(cand, label=label, timeout_s=timeout_s) for label, cand in _items(candidates)
    ]
    ref_raw = ref_runner.run(feeds_list)
    ref_names = ref_runner.outputs
    if ref_names is None and not isinstance(ref_raw[0], dict):
        # Python code returns unnamed outputs: take the names of the first ONNX candidate.
        ref_names = next(
            (r.outputs for r in runners if r.outputs and len(r.outputs) == len(ref_raw[0])), None
        )
    ref_out = [_named(r, ref_names, ref_runner.label) for r in ref_raw]
    names = list(ref_out[0])
    all_names = set(names)
    judged = set(names)
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise errors.OutputMismatchError(
                f"the reference has no output {', '.join(map(repr, unknown))}; its outputs: "
                f"{', '.join(names)}.",
                cli=f"the reference has no output {', '.join(map(repr, unknown))} (--only); its "
                f"outputs: {', '.join(names)}.",
            )
        names = list(only)
        judged = set(only)
        ref_out = [{n: o[n] for n in names} for o in ref_out]
    elif ref_model is not None and ref_model.sample:
        primary = [n for n in samples.get(ref_model.sample).primary_outputs if n in all_names]
        if primary:
            judged = set(primary)
    ref_joined = {n: _join([o[n] for o in ref_out]) for n in names}

    rows: list[dict[str, Any]] = []
    notes: dict[str, list[str]] = {}
    abs_errors: dict[str, dict[str, np.ndarray]] = {}
    labels: list[str] = []
    used_tols: dict[str, dict] = {}
    for runner in runners:
        if precision and runner.label in precision:
            runner.precision = precision[runner.label]
        if runner.label in labels:
            runner.label = f"{runner.label} #{len(labels) + 1}"
        labels.append(runner.label)
        raw = runner.run(feeds_list)
        cand_out = [_named(r, names, runner.label) for r in raw]
        for ref_one, cand_one in zip(ref_out, cand_out, strict=True):
            _check_match(runner.label, ref_one, cand_one, strict_dtypes)
        extra = [n for n in cand_out[0] if n not in all_names]
        if extra:
            runner.notes.append(f"outputs not in the reference, not compared: {', '.join(extra)}")
        if isinstance(tolerances, Tolerance):
            tol = tolerances
        else:
            tol = (tolerances or {}).get(runner.precision) or default_tolerance(runner.precision)
        used_tols[runner.label] = tol.to_dict()
        notes[runner.label] = list(runner.notes)
        abs_errors[runner.label] = {}
        for name in names:
            r = ref_joined[name]
            c = _join([o[name] for o in cand_out])
            kind = (kinds or {}).get(name) or guess_kind(name, r)
            stats: dict[str, float] = {}
            if r.dtype.kind in "fiub" and c.dtype.kind in "fiub":
                stats = error_stats(r, c)
                diff = np.abs(c.astype(np.float64) - r.astype(np.float64)).ravel()
                if diff.size > _HIST_SAMPLE:
                    diff = np.random.default_rng(0).choice(diff, _HIST_SAMPLE, replace=False)
                abs_errors[runner.label][name] = diff
            top1 = topk = neighbours = float("nan")
            if kind == "label":
                top1 = label_agreement(r, c)
            elif kind == "scores" and r.ndim >= 1 and r.shape[-1] > 1:
                top1, topk = topk_agreement(r, c, k=top_k)
            elif kind == "embedding":
                neighbours = neighbour_agreement(r, c)
            stats.update({"top1": top1, "topk": topk, "neighbours": neighbours})
            ok, reason = verdict(kind, stats, tol)
            if name not in judged:
                reason = f"not judged ({'; '.join(x for x in [reason] if x) or 'reported only'})"
            rows.append(
                {
                    "candidate": runner.label,
                    "output": name,
                    "kind": kind,
                    "precision": runner.precision,
                    "shape": "x".join(str(d) for d in np.shape(c)),
                    "dtype": str(c.dtype),
                    "max_abs": stats.get("max_abs", np.nan),
                    "mean_abs": stats.get("mean_abs", np.nan),
                    "max_rel": stats.get("max_rel", np.nan),
                    "cosine": stats.get("cosine", np.nan),
                    "cosine_min": stats.get("cosine_min", np.nan),
                    "top1": top1,
                    "topk": topk,
                    "neighbours": neighbours,
                    "passed": ok,
                    "judged": name in judged,
                    "reason": reason,
                }
            )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return Comparison(
        table=table,
        reference=ref_runner.label,
        candidates=labels,
        inputs=described,
        tolerances=used_tols,
        notes=notes,
        abs_errors=abs_errors,
        dims=used_dims,
        input_notes=input_notes,
    )
