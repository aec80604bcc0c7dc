"""Find models and get them onto this machine: one search over every place models live.

Sources (``SOURCES``): the Hugging Face Hub, the ONNX Model Zoo (on the Hub),
the local Hugging Face cache, Ollama's and LM Studio's stores, folders of
.onnx/.gguf files, and the kit's samples. Every source answers with
``ModelCard`` records: format, size, parameters, quantization, licence, and the
memory a model needs, so "does it fit my RAM" is one column away.

Example:
    >>> from localml_kit import zoo
    >>> result = zoo.search("minilm", sources=["samples"])
    >>> result.cards[0].id
    'all-minilm-l6-v2'
    >>> import os
    >>> os.environ["LOCALML_OFFLINE"] = "1"  # every source but the Hub's
    >>> result = zoo.search("smollm2")
    >>> result.notes
    ['offline mode is on (LOCALML_OFFLINE / HF_HUB_OFFLINE): showing local sources']
    >>> result.frame()[["id", "source", "format", "fit"]]  # here the stores on disk are empty
                          id   source format   fit
    0  smollm2-135m-instruct  samples   onnx  fits
    >>> zoo.fetch(result.cards[0])  # a local card: the path it already has
    PosixPath('.../samples/smollm2-135m-instruct/onnx-gguf')

With the network, the Hub is searched too and ``fetch`` downloads::

    result = zoo.search("smollm2", format="gguf")
    zoo.fetch(result.cards[0], allow_patterns=["*Q4_K_M.gguf"])
"""

from __future__ import annotations

from localml_kit.zoo._card import CardFile, ModelCard, estimate_memory
from localml_kit.zoo._search import SOURCES, SearchResult, card, fetch, search, source
from localml_kit.zoo._source import Source
from localml_kit.zoo._table import cards_frame, filter_cards

__all__ = [
    "SOURCES",
    "CardFile",
    "ModelCard",
    "SearchResult",
    "Source",
    "card",
    "cards_frame",
    "estimate_memory",
    "fetch",
    "filter_cards",
    "search",
    "source",
]
