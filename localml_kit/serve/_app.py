"""A sentence-embedding search app in one file: an embedder, a search index, a web app, a CLI.

This file is the app that a ship folder carries (``serve.bundle`` copies it as
``app.py``), and the program that ``serve.start`` runs in a child process. It
needs only numpy, onnxruntime and tokenizers (plus starlette and uvicorn to
serve over HTTP), never the rest of localml-kit, and by default it finds
``model.onnx``, ``tokenizer.json`` and ``corpus.txt`` next to itself::

    python app.py search "how do I keep my data private?" -k 3
    python app.py embed "first text" "second text"        # one JSON line per text
    python app.py serve --port 8000                       # on 127.0.0.1 only

The web service answers ``POST /embed`` (``{"texts": [...]}`` -> unit vectors),
``POST /search`` (``{"query": "...", "k": 5}`` -> the nearest corpus sentences)
and ``GET /health``. A bad request gets a 400 (413 when too large) with
``{"error": "..."}``; an unexpected failure a 500 with the same shape, never a
traceback. It listens on 127.0.0.1 only and makes no network connection of its
own: texts and vectors stay on the machine.

Example (the MiniLM sample's files; a ship folder has them side by side):
    >>> from localml_kit import samples
    >>> model = samples.path("all-minilm-l6-v2")
    >>> emb = Embedder(model, samples.path("all-minilm-l6-v2", "tokenizer"))
    >>> emb.embed(["Hello there."]).shape
    (1, 384)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from starlette.applications import Starlette

try:  # inside localml-kit: the kit's errors (each also the builtin below)
    from localml_kit.errors import InputError, ModelNotFoundError
except ImportError:  # shipped on its own: the same names, as the builtins they extend

    class InputError(ValueError):  # type: ignore[no-redef]
        """A request or argument the app cannot use."""

    class ModelNotFoundError(FileNotFoundError):  # type: ignore[no-redef]
        """A model or tokenizer file that is not there."""


__all__ = ["HOST", "Embedder", "Hit", "Limits", "SearchIndex", "create_app", "main", "read_corpus"]

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Limits:
    """What one request may ask for: these bound the service's memory (see the ship README).

    Example:
        >>> Limits().max_texts
        32
    """

    max_texts: int = 32
    max_chars: int = 10_000
    max_k: int = 50
    max_body_bytes: int = 1 << 20


@dataclass(frozen=True)
class Hit:
    """One search result: rank (1 = nearest), the corpus line's index, cosine score, text."""

    rank: int
    index: int
    score: float
    text: str


def _check_texts(texts: Any, limit: int | None = None, max_chars: int | None = None) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InputError(
            f"texts must be a list of strings, not {type(texts).__name__}: "
            'send {"texts": ["first text", "second text"]}.'
        )
    if not texts:
        raise InputError("texts is empty: give at least one text.")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InputError(
            f"texts[{bad[0]}] is a {type(texts[bad[0]]).__name__}, not a string: "
            "every text must be a string."
        )
    if limit is not None and len(texts) > limit:
        raise InputError(
            f"{len(texts)} texts in one request; the limit is {limit}: split them into "
            "several requests."
        )
    if max_chars is not None:
        long = [i for i, t in enumerate(texts) if len(t) > max_chars]
        if long:
            raise InputError(
                f"texts[{long[0]}] has {len(texts[long[0]]):,} characters; the limit is "
                f"{max_chars:,} (the model reads only the first 128 tokens anyway)."
            )
    return list(texts)


class Embedder:
    """Text in, unit-length sentence vectors out: a tokenizer and an ONNX Runtime session.

    ``model`` is an ``.onnx`` (or ``.ort``) sentence encoder with BERT-style
    inputs (``input_ids``, ``attention_mask``, optionally ``token_type_ids``)
    whose output is either a pooled embedding (``sentence_embedding``: used as
    is) or per-token states (mean-pooled over the mask here). ``tokenizer`` is a
    ``tokenizer.json``; sentences are padded to the longest in the batch and cut
    at ``max_length`` tokens. ``threads`` is ONNX Runtime's intra-op thread count
    (spinning off, so idle threads do not burn a core). Thread-safe: a web
    service calls :meth:`embed` from several threads at once.

    Example:
        >>> from localml_kit import samples
        >>> tokenizer = samples.path("all-minilm-l6-v2", "tokenizer")
        >>> emb = Embedder(samples.path("all-minilm-l6-v2"), tokenizer, threads=1)
        >>> vectors = emb.embed(["a cat", "a dog", "a tax return"])
        >>> vectors.shape, vectors.dtype, emb.dim
        ((3, 384), dtype('float32'), 384)
        >>> cat_dog, cat_tax = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
        >>> bool(cat_dog > cat_tax), round(float(np.linalg.norm(vectors[0])), 4)
        (True, 1.0)
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        tokenizer: str | os.PathLike[str],
        *,
        threads: int = 1,
        max_length: int = 128,
        batch_size: int = 32,
        label: str | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_path = Path(model)
        self.tokenizer_path = Path(tokenizer)
        for path, what in ((self.model_path, "model"), (self.tokenizer_path, "tokenizer")):
            if not path.is_file():
                raise ModelNotFoundError(
                    f"no {what} file at {path}: pass the {what}'s path (--{what} in the app)."
                )
        if threads < 1 or max_length < 2 or batch_size < 1:
            raise InputError(
                f"threads ({threads}) and batch_size ({batch_size}) must be >= 1 and "
                f"max_length ({max_length}) >= 2."
            )
        self.label = label or self.model_path.name
        self.threads = threads
        self.max_length = max_length
        self.batch_size = batch_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self._inputs:
            raise InputError(
                f"{self.model_path.name} takes {sorted(self._inputs)}; the embedder needs a "
                "BERT-style encoder with input_ids and attention_mask."
            )
        outputs = self.session.get_outputs()
        names = [o.name for o in outputs]
        self.output = "sentence_embedding" if "sentence_embedding" in names else names[0]
        width = outputs[names.index(self.output)].shape[-1]
        self._tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        padding = self._tokenizer.padding or {}
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.enable_padding(
            pad_id=int(padding.get("pad_id", 0)), pad_token=str(padding.get("pad_token", "[PAD]"))
        )
        self.dim = (
            width if isinstance(width, int) else int(self.embed(["dimension probe"]).shape[1])
        )

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The model's inputs for ``texts``: int64 ids, mask (and token types when it takes them)."""
        enc = self._tokenizer.encode_batch(_check_texts(texts))
        feeds = {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        }
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
        return feeds

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length float32 row per text, in ``batch_size`` pieces.

        Example:
            >>> from localml_kit import samples
            >>> tokenizer = samples.path("all-minilm-l6-v2", "tokenizer")
            >>> emb = Embedder(samples.path("all-minilm-l6-v2"), tokenizer, batch_size=2)
            >>> emb.embed(["hi", "hello", "good morning"]).shape  # two batches
            (3, 384)
        """
        texts = _check_texts(texts)
        parts = []
        for start in range(0, len(texts), self.batch_size):
            feeds = self.tokenize(texts[start : start + self.batch_size])
            out = np.asarray(self.session.run([self.output], feeds)[0], dtype=np.float32)
            if out.ndim == 3:  # per-token states: mean over the real tokens
                mask = feeds["attention_mask"][..., None].astype(np.float32)
                out = (out * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            parts.append(out / np.maximum(norms, 1e-12))
        return np.concatenate(parts).astype(np.float32, copy=False)


class SearchIndex:
    """Sentences embedded once; :meth:`search` ranks them by cosine to a query.

    Example:
        >>> from localml_kit import serve
        >>> emb = serve.embedder("all-minilm-l6-v2")
        >>> index = SearchIndex(emb, ["A cat sleeps.", "Stocks fell."])
        >>> hit = index.search("kitten", k=1)[0]
        >>> hit.rank, hit.index, hit.text
        (1, 0, 'A cat sleeps.')
    """

    def __init__(self, embedder: Embedder, texts: Sequence[str]) -> None:
        self.embedder = embedder
        self.texts = _check_texts(texts)
        self.vectors = embedder.embed(self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` nearest sentences to ``query``, nearest first."""
        if not isinstance(query, str):
            raise InputError(f"query must be a string, not {type(query).__name__}.")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a whole number >= 1, not {k!r}.")
        scores = self.vectors @ self.embedder.embed([query])[0]
        order = np.argsort(-scores, kind="stable")[: min(k, len(self.texts))]
        return [
            Hit(rank + 1, int(i), round(float(scores[i]), 6), self.texts[i])
            for rank, i in enumerate(order)
        ]


def read_corpus(path: str | os.PathLike[str]) -> list[str]:
    """One sentence a line; blank lines and lines starting with ``#`` are skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# ---------------------------------------------------------------------------- the web app


def create_app(
    embedder: Embedder, index: SearchIndex | None = None, limits: Limits | None = None
) -> Starlette:
    """A Starlette app: ``POST /embed``, ``POST /search``, ``GET /health`` (and ``GET /``).

    Every error answer is JSON (``{"error": "..."}``): 400 for a bad request,
    413 for one over the limits' size, 404/405 for a wrong path or method, 500
    (the traceback goes to the log, not the client) for anything unexpected.

    Example (serve it with uvicorn, as ``app.py serve`` and ``serve.start`` do):
        >>> from localml_kit import serve
        >>> app = create_app(serve.embedder("all-minilm-l6-v2"))
        >>> [(route.path, sorted(route.methods)) for route in app.routes]
        [('/', ['GET', 'HEAD']), ('/health', ['GET', 'HEAD']), ('/embed', ['POST']), ('/search', ['POST'])]
    """
    import traceback

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lim = limits or Limits()

    def info() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": embedder.label,
            "dim": embedder.dim,
            "corpus": len(index) if index is not None else 0,
            "threads": embedder.threads,
            "limits": asdict(lim),
            "pid": os.getpid(),
            "endpoints": ["POST /embed", "POST /search", "GET /health"],
        }

    async def body(request: Request, fields: set[str]) -> dict[str, Any]:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > lim.max_body_bytes:
            raise HTTPException(413, f"the body is over {lim.max_body_bytes:,} bytes.")
        raw = await request.body()
        if len(raw) > lim.max_body_bytes:
            raise HTTPException(413, f"the body is over {lim.max_body_bytes:,} bytes.")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "the body is not JSON: send a JSON object.") from None
        if not isinstance(data, dict):
            raise HTTPException(400, f"send a JSON object, not a {type(data).__name__}.")
        unknown = sorted(set(data) - fields)
        if unknown:
            raise HTTPException(
                400, f"unknown field {unknown[0]!r}; this endpoint takes {sorted(fields)}."
            )
        return data

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(info())

    async def embed(request: Request) -> JSONResponse:
        data = await body(request, {"texts"})
        if "texts" not in data:
            raise HTTPException(400, 'missing "texts": send {"texts": ["a text", ...]}.')
        started = time.perf_counter()
        try:
            texts = _check_texts(data["texts"], lim.max_texts, lim.max_chars)
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        vectors = await run_in_threadpool(embedder.embed, texts)
        return JSONResponse(
            {
                "model": embedder.label,
                "dim": int(vectors.shape[1]),
                "vectors": vectors.tolist(),
                "ms": round((time.perf_counter() - started) * 1e3, 3),
            }
        )

    async def search(request: Request) -> JSONResponse:
        data = await body(request, {"query", "k"})
        if index is None:
            raise HTTPException(400, "this service has no corpus: start it with --corpus FILE.")
        query, k = data.get("query"), data.get("k", 5)
        if not isinstance(query, str) or not query.strip():
            raise HTTPException(400, 'send {"query": "a non-empty string", "k": 5}.')
        if len(query) > lim.max_chars:
            raise HTTPException(400, f"the query is over {lim.max_chars:,} characters.")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= lim.max_k:
            raise HTTPException(400, f"k must be a whole number from 1 to {lim.max_k}.")
        started = time.perf_counter()
        hits = await run_in_threadpool(index.search, query, k)
        return JSONResponse(
            {
                "query": query,
                "hits": [asdict(h) for h in hits],
                "ms": round((time.perf_counter() - started) * 1e3, 3),
            }
        )

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 400)
        return JSONResponse({"error": str(getattr(exc, "detail", exc))}, status_code=status)

    async def failed(request: Request, exc: Exception) -> JSONResponse:
        traceback.print_exception(exc, file=sys.stderr)
        return JSONResponse(
            {"error": f"internal error ({type(exc).__name__}); the service's log has the details."},
            status_code=500,
        )

    return Starlette(
        routes=[
            Route("/", health, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/embed", embed, methods=["POST"]),
            Route("/search", search, methods=["POST"]),
        ],
        exception_handlers={HTTPException: refused, Exception: failed},
    )


# ---------------------------------------------------------------------------- the command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py", description="Sentence embeddings and semantic search, on this machine."
    )
    parser.add_argument("--model", default=str(HERE / "model.onnx"), help="the .onnx/.ort model")
    parser.add_argument("--tokenizer", default=str(HERE / "tokenizer.json"))
    parser.add_argument("--corpus", default=str(HERE / "corpus.txt"), help="one sentence a line")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--label", default=None, help="the model's name in answers")
    sub = parser.add_subparsers(dest="command", required=True)
    embed = sub.add_parser("embed", help="print one JSON line per text: its vector")
    embed.add_argument("texts", nargs="+", metavar="TEXT")
    search = sub.add_parser("search", help="the corpus sentences nearest to a query")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("-k", type=int, default=5, help="how many results")
    search.add_argument("--json", action="store_true", help="print JSON")
    serve = sub.add_parser("serve", help="a web service on 127.0.0.1 (POST /embed, /search)")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--port-file", default=None, help="write {port, pid} here once ready")
    serve.add_argument("--max-texts", type=int, default=Limits.max_texts)
    return parser


def _serve(args: argparse.Namespace, embedder: Embedder, index: SearchIndex | None) -> None:
    import socket

    import uvicorn

    app = create_app(embedder, index, Limits(max_texts=args.max_texts))
    # IPPROTO_TCP named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that
    # say they are TCP; with Nagle on, every keep-alive answer waited ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((HOST, args.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
    )
    if args.port_file:  # written whole, then renamed: a reader never sees half of it
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
        tmp.replace(args.port_file)
    print(f"serving {embedder.label} on http://{HOST}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> int:
    """The app's command line (``embed``, ``search``, ``serve``); returns the exit status.

    Example (run here, in this process; ``python app.py ...`` is the same):
        >>> from pathlib import Path
        >>> from localml_kit import samples
        >>> _ = Path("corpus.txt").write_text("A cat sleeps on the sofa.\\nStocks fell today.\\n")
        >>> files = ["--model", str(samples.path("all-minilm-l6-v2")),
        ...          "--tokenizer", str(samples.path("all-minilm-l6-v2", "tokenizer"))]
        >>> main([*files, "--corpus", "corpus.txt", "search", "a kitten", "-k", "1"])
        1  0.508  A cat sleeps on the sofa.
        0
        >>> main([*files, "--corpus", "missing.txt", "search", "a kitten"])
        2
    """
    args = _parser().parse_args(argv)
    try:
        embedder = Embedder(args.model, args.tokenizer, threads=args.threads, label=args.label)
        corpus = Path(args.corpus)
        if args.command == "embed":
            for text, vector in zip(args.texts, embedder.embed(args.texts), strict=True):
                print(json.dumps({"text": text, "dim": len(vector), "vector": vector.tolist()}))
            return 0
        if args.command == "search" and not corpus.is_file():
            raise ModelNotFoundError(f"no corpus at {corpus}: pass --corpus FILE.")
        index = SearchIndex(embedder, read_corpus(corpus)) if corpus.is_file() else None
        if args.command == "search":
            assert index is not None
            hits = index.search(args.query, args.k)
            for hit in hits:
                print(
                    json.dumps(asdict(hit))
                    if args.json
                    else f"{hit.rank}  {hit.score:.3f}  {hit.text}"
                )
            return 0
        _serve(args, embedder, index)
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the app's one error boundary: one line, no traceback
        print(f"error: {' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
