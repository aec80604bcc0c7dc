"""Apps on local models: semantic search (MiniLM), OCR (PP-OCR), a classic-ML classifier.

Plain cores that return DataFrames and dataclasses; the widgets
(``localml_kit.widgets.SearchBox``) sit on top. Each app holds one ONNX Runtime
session per model, opened by :func:`open_session` (threads sleep instead of
spinning), and shares it across calls and threads.

Example:
    >>> from localml_kit import apps
    >>> docs = apps.python_docs()  # the Python docs' help topics: a real offline corpus
    >>> docs = docs[docs["topic"].isin(["try", "exceptions", "dict", "typesmapping", "lambda"])]
    >>> index = apps.SemanticIndex.build(docs["text"], sources=docs["topic"])  # the MiniLM sample
    >>> index.search("catch an exception", k=3)["source"].tolist()
    ['exceptions', 'try', 'try']
    >>> apps.OcrPipeline().read(apps.render_text(["Total: 12.50"])).texts  # the ppocr-v4 samples
    ['Total: 12.50']
"""

from __future__ import annotations

from localml_kit.apps._classify import Classifier, Evaluation
from localml_kit.apps._ctc import ctc_greedy, recognizer_characters
from localml_kit.apps._detect import (
    components,
    convex_hull,
    min_area_rect,
    order_corners,
    polygon_mean,
    sort_boxes,
    text_boxes,
)
from localml_kit.apps._image import (
    FONTS,
    as_rgb,
    crop_box,
    font_path,
    load_image,
    render_text,
    resize,
)
from localml_kit.apps._ocr import STAGES, OcrPipeline, OcrResult
from localml_kit.apps._search import EXAMPLE_QUERIES, SemanticIndex, python_docs, topk_agreement
from localml_kit.apps._session import open_session

__all__ = [
    "EXAMPLE_QUERIES",
    "FONTS",
    "STAGES",
    "Classifier",
    "Evaluation",
    "OcrPipeline",
    "OcrResult",
    "SemanticIndex",
    "as_rgb",
    "components",
    "convex_hull",
    "crop_box",
    "ctc_greedy",
    "font_path",
    "load_image",
    "min_area_rect",
    "open_session",
    "order_corners",
    "polygon_mean",
    "python_docs",
    "recognizer_characters",
    "render_text",
    "resize",
    "sort_boxes",
    "text_boxes",
    "topk_agreement",
]
