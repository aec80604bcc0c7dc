"""ONNX Runtime GenAI, one way: load a model, teacher-forced logits, greedy and sampled tokens.

The kit's one home for ``onnxruntime_genai`` calls that ``slm`` (chat, fidelity,
bench) and ``compare`` (language models) share. It sits below both and imports
neither: it takes folders and token ids and returns models, arrays and ids.

Example:
    >>> from localml_kit import _genai, samples
    >>> folder = samples.path("smollm2-135m-instruct")  # its ONNX Runtime GenAI int4 folder
    >>> model = _genai.load_model(folder, threads=2)
    >>> tok = _genai.tokenizer(model)
    >>> ids = _genai.chat_prompt_ids(tok, "Hi")
    >>> _genai.logits(model, ids).shape
    (31, 49152)
    >>> print(tok.decode(_genai.greedy_ids(model, ids, 8)))
    Hello...
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import numpy as np

from localml_kit import errors

__all__ = [
    "chat_prompt_ids",
    "greedy_ids",
    "load_model",
    "logits",
    "require",
    "session_options",
    "tokenizer",
    "tokens",
]


def require() -> Any:
    """The ``onnxruntime_genai`` module, or an OptionalDependencyError that says how to get it."""
    try:
        import onnxruntime_genai as og
    except ImportError as exc:
        raise errors.OptionalDependencyError(
            "ONNX Runtime GenAI models need onnxruntime-genai: pip install onnxruntime-genai"
        ) from exc
    return og


def session_options(
    threads: int, *, spinning: bool = False, log_severity: int | None = None
) -> dict[str, Any]:
    """The decoder's session options: ``threads`` intra-op threads, spinning on or off.

    Keys GenAI does not know are passed to ONNX Runtime as session config entries
    (``session.intra_op.allow_spinning``). Spinning threads wait for work without
    sleeping, as llama.cpp's do; off, they sleep between operators.

    Example:
        >>> session_options(2)["session.intra_op.allow_spinning"]
        '0'
    """
    options: dict[str, Any] = {
        "intra_op_num_threads": int(threads),
        "session.intra_op.allow_spinning": "1" if spinning else "0",
    }
    if log_severity is not None:
        options["log_severity_level"] = int(log_severity)
    return options


def load_model(
    folder: str | os.PathLike[str],
    *,
    threads: int,
    spinning: bool = False,
    log_severity: int | None = None,
) -> Any:
    """An ``onnxruntime_genai.Model`` of an ONNX Runtime GenAI folder, on ``threads`` threads.

    Example:
        >>> from localml_kit import samples
        >>> model = load_model(samples.path("smollm2-135m-instruct"), threads=2, spinning=True)
        >>> type(model).__name__
        'Model'
    """
    og = require()
    config = og.Config(os.fspath(folder))
    options = session_options(threads, spinning=spinning, log_severity=log_severity)
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    return og.Model(config)


def tokenizer(model: Any) -> Any:
    """The model's own tokenizer (``onnxruntime_genai.Tokenizer``)."""
    return require().Tokenizer(model)


def chat_prompt_ids(
    tok: Any, prompt: str | Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True
) -> list[int]:
    """Token ids of a chat (a prompt, or messages with role and content) in the model's template.

    Example:
        >>> from localml_kit import samples
        >>> model = load_model(samples.path("smollm2-135m-instruct"), threads=2)
        >>> tok = tokenizer(model)
        >>> ids = chat_prompt_ids(tok, [{"role": "user", "content": "Hi"}])
        >>> tok.decode(ids)
        'system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face\\nuser\\nHi\\nassistant\\n'
    """
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    text = tok.apply_chat_template(
        json.dumps([dict(m) for m in messages]), add_generation_prompt=add_generation_prompt
    )
    return [int(t) for t in tok.encode(text)]


# Models seen to give the last position's logits only (a carried GGUF build).
_LAST_POSITION_ONLY: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def logits(model: Any, token_ids: Sequence[int]) -> np.ndarray:
    """Teacher-forced logits at every position of ``token_ids``: float32 [len, vocab].

    Row ``i`` is the model's next-token distribution after ``token_ids[: i + 1]``.
    One forward pass, or one step per token for a model whose ``logits`` hold the
    last position only (the kit's carried GGUF builds, as llama.cpp computes them).

    Example:
        >>> from localml_kit import samples
        >>> model = load_model(samples.path("smollm2-135m-instruct"), threads=2)
        >>> logits(model, [1, 2, 3]).shape
        (3, 49152)
    """
    og = require()
    ids = [int(t) for t in token_ids]
    if not ids:
        raise errors.InputError("teacher-forced logits need at least one token.")
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 1, do_sample=False)
    if model not in _LAST_POSITION_ONLY:
        generator = og.Generator(model, params)
        try:
            generator.append_tokens(np.asarray(ids, dtype=np.int32))
            out = np.asarray(generator.get_output("logits"), dtype=np.float32)
        finally:
            del generator
        rows = out.reshape(-1, out.shape[-1])
        if len(rows) >= len(ids):
            return rows[-len(ids) :].copy()
        _LAST_POSITION_ONLY[model] = True  # the next call steps at once
    # One token at a time: each step's logits are that position's.
    generator = og.Generator(model, params)
    try:
        steps = []
        for token in ids:
            generator.append_tokens(np.asarray([token], dtype=np.int32))
            step = np.asarray(generator.get_output("logits"), dtype=np.float32)
            steps.append(step.reshape(-1, step.shape[-1])[-1])
        return np.stack(steps)
    finally:
        del generator


def tokens(
    model: Any, token_ids: Sequence[int], max_new_tokens: int, **search: Any
) -> Generator[int, None, None]:
    """Generate after ``token_ids``, yielding each new token id as it comes (greedy by default).

    ``search`` holds more search options (``do_sample=True``, ``temperature``,
    ``top_p``, ``top_k``, ``random_seed``). The generation ends at the model's
    end-of-sequence token (yielded) or after ``max_new_tokens``; closing the
    iterator early frees the generator.

    Example:
        >>> from localml_kit import samples
        >>> model = load_model(samples.path("smollm2-135m-instruct"), threads=2)
        >>> tok = tokenizer(model)
        >>> ids = chat_prompt_ids(tok, "Hi")
        >>> print(tok.decode(list(tokens(model, ids, 8))))
        Hello...
        >>> len(list(tokens(model, ids, 4, do_sample=True, top_k=5, random_seed=1)))
        4
    """
    og = require()
    ids = [int(t) for t in token_ids]
    params = og.GeneratorParams(model)
    options: dict[str, Any] = {"do_sample": False, **search}
    params.set_search_options(max_length=len(ids) + max_new_tokens, **options)
    generator = og.Generator(model, params)
    try:
        generator.append_tokens(np.asarray(ids, dtype=np.int32))
        while not generator.is_done():
            generator.generate_next_token()
            yield int(generator.get_next_tokens()[0])
    finally:
        del generator


def greedy_ids(model: Any, token_ids: Sequence[int], max_new_tokens: int) -> list[int]:
    """The greedy continuation of ``token_ids``: up to ``max_new_tokens`` ids (an EOS included).

    Example:
        >>> from localml_kit import samples
        >>> model = load_model(samples.path("smollm2-135m-instruct"), threads=2)
        >>> ids = chat_prompt_ids(tokenizer(model), "Hi")
        >>> out = greedy_ids(model, ids, 8)
        >>> len(out), out == greedy_ids(model, ids, 8)
        (8, True)
    """
    return list(tokens(model, token_ids, max_new_tokens))
