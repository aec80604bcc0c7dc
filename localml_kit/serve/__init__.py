"""Ship a model: the optimized encoder in a small app, a local web service, and a ship folder.

* :class:`Embedder` and :class:`SearchIndex`: the plain core (a tokenizer and an
  ONNX Runtime session; sentences ranked by cosine); :func:`embedder` makes one
  from any model reference (a sample, a path, an optimize ``Variant``).
* :func:`create_app`: the Starlette app (``POST /embed``, ``POST /search``,
  ``GET /health``; JSON errors, never a traceback).
* :func:`start`: the app on uvicorn in a child process on 127.0.0.1, which dies
  with this process; a :class:`Service` (url, pid, cold start, ``stop()``, a
  context manager). :func:`request` sends one request over real HTTP.
* :func:`load_test`: a bounded load from a few client threads: p50 / p99,
  throughput (:class:`LoadTest`).
* :func:`run_app`: the app's command line (``embed``, ``search``) in a child process.
* :func:`bundle`: a ship folder (model, external data, tokenizer, ORT format,
  ``app.py``, pinned ``requirements.txt``, README, manifest with sha256, memory
  budget, licence, checklist): a :class:`ShipManifest`.

The app itself is one file (``_app.py``, shipped as ``app.py``) that needs only
numpy, onnxruntime and tokenizers, plus starlette and uvicorn (the ``serve``
extra) to serve over HTTP.

Example (the MiniLM sample, served on a free port for the length of the block):
    >>> from localml_kit import serve
    >>> with serve.start("all-minilm-l6-v2") as service:  # about a second
    ...     hit = service.search("a kitten", k=1)[0]
    ...     load = serve.load_test(service.url, clients=2, requests=20)
    >>> hit.text
    'The kitten chased a ball of yarn under the sofa.'
    >>> load.ok, load.failed, bool(load.p99_ms >= load.p50_ms > 0)
    (20, 0, True)
    >>> service.alive, service.exit_code
    (False, -15)

An optimized variant is served the same way, and a real load test sends more
requests (p50 / p99 over a few hundred, a few seconds)::

    v = optimize.quantize_int8("all-minilm-l6-v2")
    with serve.start(v) as service:
        serve.load_test(service.url, clients=4, requests=200).p99_ms
"""

from __future__ import annotations

import os
from typing import Any

from localml_kit.serve._app import HOST, Embedder, Hit, Limits, SearchIndex, create_app
from localml_kit.serve._bundle import (
    ChecklistItem,
    ShipManifest,
    ShippedFile,
    bundle,
    requirements,
)
from localml_kit.serve._load import LoadTest, load_test
from localml_kit.serve._resolve import DEFAULT_MODEL, AppModel, app_model
from localml_kit.serve._service import AppRun, Response, Service, request, run_app, start

__all__ = [
    "DEFAULT_MODEL",
    "HOST",
    "AppModel",
    "AppRun",
    "ChecklistItem",
    "Embedder",
    "Hit",
    "Limits",
    "LoadTest",
    "Response",
    "SearchIndex",
    "Service",
    "ShipManifest",
    "ShippedFile",
    "app_model",
    "bundle",
    "create_app",
    "embedder",
    "load_test",
    "request",
    "requirements",
    "run_app",
    "start",
]


def embedder(
    model: Any = DEFAULT_MODEL,
    *,
    tokenizer: str | os.PathLike[str] | None = None,
    threads: int = 1,
    max_length: int = 128,
) -> Embedder:
    """An in-process :class:`Embedder` for a model reference (its tokenizer found as for :func:`start`).

    Example:
        >>> emb = embedder("all-minilm-l6-v2")
        >>> emb.embed(["Hello there."]).shape, emb.label, emb.tokenizer_path.name
        ((1, 384), 'all-minilm-l6-v2', 'tokenizer.json')
    """
    resolved = app_model(model, tokenizer)
    return Embedder(
        resolved.path,
        resolved.tokenizer,
        threads=threads,
        max_length=max_length,
        label=resolved.label,
    )
