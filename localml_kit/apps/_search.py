"""Semantic search: embed texts once with a sentence encoder, then find the nearest ones to a query.

Example:
    >>> index = SemanticIndex.build(["A cat sat on the mat.", "Stocks fell today."])  # the MiniLM sample
    >>> index.search("kitten", k=1)["text"].tolist()
    ['A cat sat on the mat.']
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import compare, errors, models, samples
from localml_kit.apps._session import open_session

__all__ = ["EXAMPLE_QUERIES", "SemanticIndex", "python_docs", "topk_agreement"]

# Twenty questions about Python, for searching the Python documentation (python_docs()).
EXAMPLE_QUERIES = (
    "How do I catch an exception and handle the error?",
    "loop over the items of a list",
    "What does the yield keyword do in a function?",
    "format a number with two decimal places",
    "compare two objects to see if they are equal",
    "remove a key from a dictionary",
    "give a function default values for its arguments",
    "write my own context manager for the with statement",
    "import a module from a package",
    "a small anonymous function written in one line",
    "change a global variable from inside a function",
    "bitwise operations on integers",
    "take a slice of a sequence from the end",
    "convert a string to upper case",
    "raise my own error when the input is wrong",
    "stop a while loop early",
    "run coroutines with async and await",
    "which operator binds more tightly than unary minus?",
    "when is an empty list considered false?",
    "complex numbers with an imaginary part",
)


def python_docs(per_topic: int = 3, *, min_chars: int = 60) -> pd.DataFrame:
    """A real corpus that ships with Python: paragraphs of the language reference's help topics.

    ``pydoc_data.topics`` (part of the standard library; ``help("if")`` reads it)
    holds the documentation of keywords, statements and types. Returns up to
    ``per_topic`` prose paragraphs of each topic (code and lists skipped),
    whitespace collapsed: a DataFrame with ``topic`` and ``text``.

    Example:
        >>> docs = python_docs()
        >>> list(docs.columns), len(docs) > 100
        (['topic', 'text'], True)
    """
    from pydoc_data.topics import topics

    if per_topic < 1:
        raise errors.ConfigError(f"per_topic={per_topic}: use 1 or more.")
    rows = []
    for topic in sorted(topics):
        kept = 0
        for para in re.split(r"\n\s*\n", topics[topic]):
            text = " ".join(para.split())
            if len(text) < min_chars or not text[0].isalpha() or text.endswith(":"):
                continue
            rows.append((topic, text))
            kept += 1
            if kept == per_topic:
                break
    return pd.DataFrame(rows, columns=["topic", "text"])


def _tokenizer_folder(model: Any, ref: models.ModelRef) -> Path | None:
    """Where the encoder's tokenizer.json is: its sample's, beside it, or beside its source."""
    if ref.sample is not None and "tokenizer" in samples.get(ref.sample).files:
        return samples.path(ref.sample, "tokenizer").parent
    if (ref.folder / "tokenizer.json").is_file():
        return ref.folder
    source = getattr(model, "source", None)  # an optimize Variant: the model it was made from
    if isinstance(source, str | os.PathLike) and (Path(source).parent / "tokenizer.json").is_file():
        return Path(source).parent
    return None


class SemanticIndex:
    """Texts embedded with a sentence encoder (MiniLM by default), searchable by meaning.

    ``model`` is any model reference (a sample, a path, a ModelRef, an optimize
    ``Variant``); its tokenizer is found next to it (or next to the model a
    variant was made from), else give ``tokenizer`` (a folder holding
    ``tokenizer.json``, or a sample name). One session serves every call,
    from any number of threads. Embeddings are L2-normalised, so the score is
    the cosine similarity.

    Example:
        >>> docs = python_docs(per_topic=2)
        >>> docs = docs[docs["topic"].isin(["try", "exceptions", "dict", "lambda"])]
        >>> index = SemanticIndex.build(docs["text"], sources=docs["topic"])  # the MiniLM sample
        >>> index
        SemanticIndex(all-minilm-l6-v2, 7 texts)
        >>> index.search("catch an exception", k=2)[["rank", "source"]]
           rank      source
        0     1  exceptions
        1     2         try
        >>> index.vectors.shape, index.to_npz("docs.npz").name
        ((7, 384), 'docs.npz')
        >>> SemanticIndex.from_npz("docs.npz").search("a dict", k=1)["source"].tolist()
        ['dict']
    """

    def __init__(
        self,
        model: Any = "all-minilm-l6-v2",
        *,
        tokenizer: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        max_length: int = 128,
        batch_size: int = 32,
    ) -> None:
        ref = models.as_ref(model)
        if ref is None:
            raise errors.ModelNotFoundError(
                f"{model!r} does not name a model: give a sample name, a path or a ModelRef."
            )
        self.model = ref.require_onnx("semantic search")
        folder = Path(tokenizer) if tokenizer is not None else _tokenizer_folder(model, ref)
        if folder is None:
            raise errors.InputError(
                f"no tokenizer.json next to {ref.path}: give tokenizer= (a folder holding "
                "tokenizer.json, or a sample name such as 'all-minilm-l6-v2')."
            )
        if batch_size < 1 or max_length < 2:
            raise errors.ConfigError(
                f"batch_size={batch_size}, max_length={max_length}: use batch_size >= 1 and "
                "max_length >= 2."
            )
        self.tokenizer = compare.sentence_tokenizer(os.fspath(folder), max_length=max_length)
        self.session = open_session(model, threads=threads)
        self.batch_size = int(batch_size)
        self._input_names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        self._output = "sentence_embedding" if "sentence_embedding" in outputs else outputs[0]
        self.texts: list[str] = []
        self.sources: list[str] = []
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.build_s = 0.0

    @classmethod
    def build(
        cls,
        texts: Sequence[str] | pd.Series,
        model: Any = "all-minilm-l6-v2",
        *,
        sources: Sequence[str] | pd.Series | None = None,
        **options: Any,
    ) -> SemanticIndex:
        """A new index of ``texts`` (``sources``: a label per text, e.g. the topic it comes from).

        ``options`` go to the constructor (``tokenizer``, ``threads``, ``max_length``,
        ``batch_size``).
        """
        index = cls(model, **options)
        index.add(texts, sources)
        return index

    def __len__(self) -> int:
        return len(self.texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings (n x dims, float32) of ``texts``, batched by length.

        Texts of similar length go into one batch, so little padding is computed.
        """
        items = [str(t) for t in texts]
        if not items:
            raise errors.InputError("give at least one text to embed.")
        if self.session is None:
            raise errors.ConfigError(
                f"this index over {self.model.label} was closed (close() released its session); "
                "build it again, or load it with SemanticIndex.from_npz(...), to search."
            )
        lengths = [sum(e.attention_mask) for e in self.tokenizer.encode_batch(items)]
        order = np.argsort(lengths, kind="stable")
        chunks = []
        for start in range(0, len(items), self.batch_size):
            part = [items[i] for i in order[start : start + self.batch_size]]
            feeds = compare.sentence_inputs(part, self.tokenizer)
            feeds = {name: feeds[name] for name in self._input_names if name in feeds}
            (out,) = self.session.run([self._output], feeds)
            if out.ndim == 3:  # token vectors: mean over the real tokens
                mask = feeds["attention_mask"][:, :, None].astype(np.float32)
                out = (out * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            chunks.append(out.astype(np.float32))
        vectors = np.empty((len(items), chunks[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(chunks)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def add(
        self, texts: Sequence[str] | pd.Series, sources: Sequence[str] | pd.Series | None = None
    ) -> None:
        """Embed ``texts`` and add them to the index (``sources`` labels each; default empty)."""
        items = [str(t) for t in texts]
        labels = [""] * len(items) if sources is None else [str(s) for s in sources]
        if len(labels) != len(items):
            raise errors.InputError(
                f"{len(items)} texts but {len(labels)} sources: give one source per text."
            )
        started = time.perf_counter()
        vectors = self.embed(items)
        self.build_s += time.perf_counter() - started
        self.vectors = vectors if not len(self.texts) else np.concatenate([self.vectors, vectors])
        self.texts += items
        self.sources += labels

    def search(self, query: str, k: int = 5) -> pd.DataFrame:
        """The ``k`` texts nearest to ``query``: rank, score (cosine), text, source.

        The time the query took (embedding it and ranking every text) is in
        ``frame.attrs["ms"]``.

        Example:
            >>> index = SemanticIndex.build(["A cat sat on the mat.", "Stocks fell today."])
            >>> found = index.search("kitten", k=2)  # the MiniLM sample
            >>> found[["rank", "text", "id"]]
               rank                   text  id
            0     1  A cat sat on the mat.   0
            1     2     Stocks fell today.   1
            >>> bool(found["score"].iloc[0] > found["score"].iloc[1]), found.attrs["ms"] > 0
            (True, True)
        """
        if not query or not str(query).strip():
            raise errors.InputError("type a query: an empty one matches nothing.")
        if not self.texts:
            raise errors.InputError("the index is empty: add texts first (SemanticIndex.build).")
        if k < 1:
            raise errors.ConfigError(f"k={k}: ask for 1 result or more.")
        started = time.perf_counter()
        (vector,) = self.embed([str(query)])
        scores = self.vectors @ vector
        k = min(int(k), len(self.texts))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        ms = (time.perf_counter() - started) * 1000
        frame = pd.DataFrame(
            {
                "rank": np.arange(1, k + 1),
                "score": scores[top].astype(float).round(4),
                "text": [self.texts[i] for i in top],
                "source": [self.sources[i] for i in top],
                "id": top,
            }
        )
        frame.attrs["ms"] = round(ms, 3)
        return frame

    def search_many(
        self, queries: Sequence[str], k: int = 5, *, workers: int = 1
    ) -> list[pd.DataFrame]:
        """:meth:`search` for each query; ``workers`` threads share this index's one session.

        ONNX Runtime's ``InferenceSession.run`` may be called from several
        threads at once, so an app needs one session per model, not one per
        thread.
        """
        if workers < 1:
            raise errors.ConfigError(f"workers={workers}: use 1 or more.")
        if workers == 1:
            return [self.search(q, k) for q in queries]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda q: self.search(q, k), queries))

    def to_npz(self, path: str | os.PathLike[str]) -> Path:
        """Save the texts, sources and vectors (not the model) to an ``.npz`` file."""
        out = Path(path).expanduser()
        np.savez_compressed(
            out,
            vectors=self.vectors,
            texts=np.array(self.texts, dtype=object).astype(str),
            sources=np.array(self.sources, dtype=object).astype(str),
            model=np.array(str(self.model.path)),
        )
        return out if out.suffix == ".npz" else out.with_name(out.name + ".npz")

    @classmethod
    def from_npz(
        cls, path: str | os.PathLike[str], model: Any = "all-minilm-l6-v2", **options: Any
    ) -> SemanticIndex:
        """An index saved by :meth:`to_npz`, searched with ``model`` (the one that built it)."""
        index = cls(model, **options)
        with np.load(Path(path).expanduser(), allow_pickle=False) as data:
            vectors = data["vectors"]
            texts, sources = data["texts"].tolist(), data["sources"].tolist()
        dims = index.session.get_outputs()
        width = next((o.shape[-1] for o in dims if o.name == index._output), None)
        if isinstance(width, int) and vectors.ndim == 2 and vectors.shape[1] != width:
            raise errors.InputError(
                f"{path} holds {vectors.shape[1]}-d vectors but {index.model.label} makes "
                f"{width}-d ones: load it with the model that built it."
            )
        index.vectors, index.texts, index.sources = vectors.astype(np.float32), texts, sources
        return index

    def close(self) -> None:
        """Release the session (and the memory of its model); the texts and vectors stay."""
        self.session = None

    def __repr__(self) -> str:
        return f"SemanticIndex({self.model.label}, {len(self)} texts)"


def topk_agreement(
    reference: SemanticIndex, candidate: SemanticIndex, queries: Sequence[str], k: int = 5
) -> pd.DataFrame:
    """How far two indexes of the same texts agree: per query, the share of the top ``k`` they share.

    Columns: query, overlap (0-1: shared results over ``k``), same_top1, and
    each side's ms. The mean of ``overlap`` is the top-k agreement.

    Example (the same encoder, once reading only the first 8 tokens of each text):
        >>> from localml_kit import compare
        >>> texts = compare.corpus()  # 209 short sentences
        >>> full = SemanticIndex.build(texts)  # the MiniLM sample
        >>> short = SemanticIndex.build(texts, max_length=8)
        >>> queries = ["a kitten", "a language model on a laptop", "keep my data private"]
        >>> agree = topk_agreement(full, short, queries)
        >>> list(agree.columns), len(agree)
        (['query', 'overlap', 'same_top1', 'reference_ms', 'candidate_ms'], 3)
        >>> bool(0 < agree["overlap"].mean() < 1)  # cut texts rank differently
        True

    An int8 variant against its fp32 source, over the Python docs (about 0.92 with
    ``python_docs()`` and :data:`EXAMPLE_QUERIES`)::

        from localml_kit import optimize
        docs = python_docs()
        int8 = optimize.quantize_int8("all-minilm-l6-v2")
        fp32, q8 = SemanticIndex.build(docs["text"]), SemanticIndex.build(docs["text"], int8)
        topk_agreement(fp32, q8, EXAMPLE_QUERIES)["overlap"].mean()
    """
    if reference.texts != candidate.texts:
        raise errors.InputError(
            "the two indexes hold different texts: build both from the same texts to compare them."
        )
    rows = []
    for query in queries:
        a, b = reference.search(query, k), candidate.search(query, k)
        rows.append(
            {
                "query": query,
                "overlap": len(set(a["id"]) & set(b["id"])) / len(a),
                "same_top1": bool(a["id"].iloc[0] == b["id"].iloc[0]),
                "reference_ms": a.attrs["ms"],
                "candidate_ms": b.attrs["ms"],
            }
        )
    return pd.DataFrame(rows)
