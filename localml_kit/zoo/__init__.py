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
    >>> result = zoo.search("smollm2", format="gguf")  # doctest: +SKIP
    >>> result.frame()[["id", "source", "size_bytes", "fit"]]  # doctest: +SKIP
    >>> zoo.fetch(result.cards[0], allow_patterns=["*Q4_K_M.gguf"])  # doctest: +SKIP
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
