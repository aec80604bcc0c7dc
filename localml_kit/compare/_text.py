"""Text inputs for sentence encoders: the kit's sentence corpus and tokenization to model inputs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import errors


def corpus(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Sentences for comparing encoders: the kit's ``data/sentences.txt`` (209 lines).

    A source checkout reads it in ``data/``, an installed kit in the package
    (``localml_kit/_data/``); without either, the sample's 12 built-in sentences
    are returned. Lines starting with ``#`` and blank lines are skipped.

    Example:
        >>> len(corpus()) >= 12
        True
    """
    from localml_kit.samples._inputs import SENTENCES

    package = Path(__file__).resolve().parents[1]
    shipped = [package.parent / "data" / "sentences.txt", package / "_data" / "sentences.txt"]
    file = Path(path) if path is not None else next((f for f in shipped if f.is_file()), shipped[0])
    if not file.is_file():
        if path is not None:
            raise errors.InputError(f"no corpus at {file}: give a text file, one sentence a line.")
        return list(SENTENCES)
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def sentence_tokenizer(model: str = "all-minilm-l6-v2", *, max_length: int = 128) -> Any:
    """A ``tokenizers.Tokenizer`` for a BERT-style encoder: pads to the longest, cuts at ``max_length``.

    ``model`` is a sample name or a folder holding ``tokenizer.json``. Load it
    once and pass it to :func:`sentence_inputs` when tokenizing many batches.

    Example:
        >>> tok = sentence_tokenizer("all-minilm-l6-v2")
        >>> tok.encode("Hello there.").tokens
        ['[CLS]', 'hello', 'there', '.', '[SEP]']
    """
    from tokenizers import Tokenizer

    from localml_kit import samples

    folder = Path(model)
    if not folder.is_dir():
        folder = samples.path(model, "tokenizer").parent
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def sentence_inputs(
    texts: Sequence[str], model: Any = "all-minilm-l6-v2", *, max_length: int = 128
) -> dict[str, np.ndarray]:
    """Tokenize sentences for a BERT-style encoder: input_ids, attention_mask, token_type_ids.

    ``model`` is a sample name, a folder holding ``tokenizer.json``, or a
    tokenizer from :func:`sentence_tokenizer`; padding goes to the longest
    sentence, truncation to ``max_length``.

    Example:
        >>> feeds = sentence_inputs(["Hello there.", "Bye."], "all-minilm-l6-v2")
        >>> feeds["input_ids"].shape
        (2, 5)
        >>> feeds["attention_mask"].tolist()
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    """
    if not texts:
        raise errors.InputError("give at least one sentence.")
    tok = (
        model
        if hasattr(model, "encode_batch")
        else sentence_tokenizer(model, max_length=max_length)
    )
    enc = tok.encode_batch(list(texts))
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }
