"""OCR with PP-OCR: detect text lines, turn upside-down lines around, read each line.

Three ONNX models in a row, with the steps between them written out in numpy:
the detector's probability map becomes boxes (:mod:`._detect`), each box is
cropped and straightened (:func:`._image.crop_box`), scaled to the
recognizer's height of 48 pixels, and its per-step probabilities are decoded
to text (:mod:`._ctc`).

Example:
    >>> from localml_kit.apps import render_text
    >>> ocr = OcrPipeline()  # the ppocr-v4 samples
    >>> result = ocr.read(render_text(["Hello, world."]))
    >>> result.texts, sorted(result.ms)
    (['Hello, world.'], ['detect', 'direction', 'recognize', 'total'])
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import errors
from localml_kit.apps._ctc import ctc_greedy, recognizer_characters
from localml_kit.apps._detect import sort_boxes, text_boxes
from localml_kit.apps._image import as_rgb, crop_box, resize
from localml_kit.apps._session import open_session

__all__ = ["STAGES", "OcrPipeline", "OcrResult"]

STAGES = ("detect", "direction", "recognize")
REC_HEIGHT = 48
REC_MIN_WIDTH = 320
CLS_SHAPE = (48, 192)


@dataclass(repr=False)
class OcrResult:
    """What :meth:`OcrPipeline.read` found: one entry per text line, in reading order.

    ``boxes`` are the lines' corners in the image (n x 4 x (x, y): top-left,
    top-right, bottom-right, bottom-left); ``scores`` the recognizer's mean
    character probability; ``angles`` 0 or 180 (a line read upside down);
    ``ms`` the milliseconds per stage (``detect``, ``direction``,
    ``recognize``) and in ``total``; ``image_shape`` the image's height and width.

    Example:
        >>> r = OcrResult(np.zeros((1, 4, 2)), ["hi"], [0.99], [0], {"total": 5.0}, (20, 40))
        >>> r.text, r.frame()["text"].tolist()
        ('hi', ['hi'])
    """

    boxes: np.ndarray
    texts: list[str]
    scores: list[float]
    angles: list[int]
    ms: dict[str, float]
    image_shape: tuple[int, int]
    detector_scores: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The lines, joined with newlines."""
        return "\n".join(self.texts)

    def frame(self) -> pd.DataFrame:
        """One row per line: line, text, score, angle and the box's extent (left, top, right, bottom)."""
        boxes = np.asarray(self.boxes).reshape(-1, 4, 2)
        return pd.DataFrame(
            {
                "line": range(1, len(self.texts) + 1),
                "text": self.texts,
                "score": np.round(self.scores, 4),
                "angle": self.angles,
                "left": boxes[:, :, 0].min(axis=1).astype(int) if len(boxes) else [],
                "top": boxes[:, :, 1].min(axis=1).astype(int) if len(boxes) else [],
                "right": boxes[:, :, 0].max(axis=1).astype(int) if len(boxes) else [],
                "bottom": boxes[:, :, 1].max(axis=1).astype(int) if len(boxes) else [],
            }
        )

    def plot(self, image: Any, *, ax: Any = None, labels: bool = True) -> Any:
        """The image with every box drawn over it (and its text above it); returns the figure.

        Example:
            >>> from localml_kit.apps import render_text
            >>> page = render_text(["Hello, world."])
            >>> result = OcrPipeline().read(page)  # the ppocr-v4 samples
            >>> fig = result.plot(page)
            >>> len(fig.axes[0].patches), fig.axes[0].texts[0].get_text()
            (1, 'Hello, world.')
        """
        import matplotlib.pyplot as plt
        from matplotlib.patches import Polygon

        rgb = as_rgb(image)
        if ax is None:
            h, w = rgb.shape[:2]
            fig, ax = plt.subplots(figsize=(min(12, max(4, w / 80)), min(10, max(2, h / 80))))
        else:
            fig = ax.figure
        ax.imshow(rgb)
        for box, text in zip(np.asarray(self.boxes).reshape(-1, 4, 2), self.texts, strict=True):
            ax.add_patch(Polygon(box, closed=True, fill=False, edgecolor="tab:red", linewidth=1.5))
            if labels:
                ax.text(
                    float(box[0, 0]),
                    float(box[0, 1]) - 3,
                    text,
                    color="tab:red",
                    fontsize=8,
                    va="bottom",
                )
        ax.set_axis_off()
        return fig

    def __repr__(self) -> str:
        stages = ", ".join(f"{k} {v:.1f} ms" for k, v in self.ms.items())
        return f"OcrResult({len(self.texts)} lines {self.texts!r}; {stages})"

    def _repr_html_(self) -> str:
        stages = ", ".join(f"{k} {v:.1f} ms" for k, v in self.ms.items())
        table = self.frame().to_html(index=False, escape=True)
        return f"<p><b>{len(self.texts)} lines</b> ({html.escape(stages)})</p>{table}"


def _bgr(rgb: np.ndarray) -> np.ndarray:
    """PaddleOCR's models were trained on OpenCV's BGR channel order."""
    return rgb[:, :, ::-1]


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 CHW in [-1, 1], as PaddleOCR normalises."""
    return ((pixels.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


def _side(value: float) -> int:
    return max(32, int(round(value / 32) * 32))


class OcrPipeline:
    """Read text in an image with PP-OCR: detection, direction and recognition, one session each.

    ``detector``, ``direction`` and ``recognizer`` are model references (the
    ``ppocr-v4-*`` samples by default); ``direction=None`` skips the direction
    step. The detector sees the image scaled so that its longest side is at
    most ``limit_side_len`` (``limit_type="max"``; ``"min"`` scales the
    shortest side up to it instead), each side a multiple of 32. ``thresh``,
    ``box_thresh`` and ``unclip_ratio`` drive the box finding
    (:func:`text_boxes`); lines read with a score under ``min_score`` are
    dropped. ``threads`` is per session (one by default: the three models run
    one after another).

    Example:
        >>> from PIL import Image
        >>> from localml_kit.apps import render_text
        >>> Image.fromarray(render_text(["Coffee 3.20", "Total 12.50"])).save("receipt.png")
        >>> ocr = OcrPipeline()  # the ppocr-v4 samples
        >>> print(ocr.read("receipt.png").text)
        Coffee 3.20
        Total 12.50
        >>> ocr.read("receipt.png").frame()[["line", "text", "angle"]]
           line         text  angle
        0     1  Coffee 3.20      0
        1     2  Total 12.50      0
    """

    def __init__(
        self,
        detector: Any = "ppocr-v4-det",
        recognizer: Any = "ppocr-v4-rec",
        direction: Any = "ppocr-v4-cls",
        *,
        threads: int | None = 1,
        limit_side_len: int = 960,
        limit_type: str = "max",
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip_ratio: float = 2.0,
        min_score: float = 0.5,
        batch: int = 6,
    ) -> None:
        if limit_type not in ("max", "min"):
            raise errors.ConfigError(f"limit_type={limit_type!r}: use 'max' or 'min'.")
        if limit_side_len < 32:
            raise errors.ConfigError(f"limit_side_len={limit_side_len}: use 32 or more.")
        if batch < 1:
            raise errors.ConfigError(f"batch={batch}: use 1 or more.")
        self.detector = open_session(detector, threads=threads)
        self.recognizer = open_session(recognizer, threads=threads)
        self.direction = open_session(direction, threads=threads) if direction is not None else None
        classes = self.recognizer.get_outputs()[0].shape[-1]
        self.characters = recognizer_characters(
            self.recognizer.get_modelmeta().custom_metadata_map,
            classes if isinstance(classes, int) else None,
        )
        self.limit_side_len = int(limit_side_len)
        self.limit_type = limit_type
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip_ratio = unclip_ratio
        self.min_score = min_score
        self.batch = int(batch)

    # -- stages -------------------------------------------------------------------------------

    def detector_input(self, rgb: np.ndarray) -> np.ndarray:
        """The detector's input for an RGB image: scaled by the limit, sides multiples of 32."""
        h, w = rgb.shape[:2]
        if self.limit_type == "max":
            ratio = min(1.0, self.limit_side_len / max(h, w))
        else:
            ratio = max(1.0, self.limit_side_len / min(h, w))
        size = (_side(int(h * ratio)), _side(int(w * ratio)))
        return _normalise(resize(_bgr(rgb), *size))[None]

    def detect(self, image: Any) -> tuple[np.ndarray, list[float]]:
        """Text boxes in the image (n x 4 x 2, reading order) and the detector's score for each."""
        rgb = as_rgb(image)
        page, top = self._letterbox(rgb)
        feed = self.detector_input(page)
        (prob,) = self.detector.run(None, {self.detector.get_inputs()[0].name: feed})
        boxes, scores = text_boxes(
            prob[0, 0],
            page.shape[:2],
            thresh=self.thresh,
            box_thresh=self.box_thresh,
            unclip_ratio=self.unclip_ratio,
        )
        if top:
            boxes[:, :, 1] = np.clip(boxes[:, :, 1] - top, 0, rgb.shape[0] - 1)
        order = sort_boxes(boxes)
        return boxes[order] if len(order) else boxes, [scores[i] for i in order]

    @staticmethod
    def _letterbox(rgb: np.ndarray) -> tuple[np.ndarray, int]:
        """A short or very wide image gets a band of its own background above and below."""
        h, w = rgb.shape[:2]
        if h > 30 and w / h <= 8:
            return rgb, 0
        pad = int(abs(max(int(w / 8), 30) * 2 - h) / 2)
        edge = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        colour = np.median(edge, axis=0).astype(np.uint8)
        band = np.broadcast_to(colour, (pad, w, 3))
        return np.concatenate([band, rgb, band]), pad

    def turn(self, crops: list[np.ndarray], *, threshold: float = 0.9) -> list[int]:
        """Turn crops the direction model finds upside down (in place); returns each one's angle."""
        if self.direction is None or not crops:
            return [0] * len(crops)
        name = self.direction.get_inputs()[0].name
        angles = [0] * len(crops)
        for start in range(0, len(crops), self.batch):
            chunk = list(range(start, min(len(crops), start + self.batch)))
            feed = np.stack([self._padded(crops[i], *CLS_SHAPE) for i in chunk])
            (probs,) = self.direction.run(None, {name: feed})
            for i, p in zip(chunk, probs, strict=True):
                if int(np.argmax(p)) == 1 and float(p[1]) > threshold:
                    crops[i] = np.ascontiguousarray(crops[i][::-1, ::-1])
                    angles[i] = 180
        return angles

    @staticmethod
    def _padded(crop: np.ndarray, height: int, width: int) -> np.ndarray:
        """A crop scaled to ``height`` (its width kept in proportion, at most ``width``), padded."""
        h, w = crop.shape[:2]
        scaled = min(width, math.ceil(height * w / h))
        out = np.zeros((3, height, width), dtype=np.float32)
        out[:, :, :scaled] = _normalise(resize(_bgr(crop), height, scaled))
        return out

    def recognizer_input(self, crops: list[np.ndarray]) -> np.ndarray:
        """The recognizer's input for crops of text lines (RGB pixels), as one batch.

        Each crop is scaled to the recognizer's height of 48 pixels (its width in
        proportion) and padded to the widest of them (at least 320 pixels).
        """
        widest = max(REC_MIN_WIDTH / REC_HEIGHT, *(c.shape[1] / c.shape[0] for c in crops))
        width = int(REC_HEIGHT * widest)
        return np.stack([self._padded(c, REC_HEIGHT, width) for c in crops])

    def recognize(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Read each crop (one text line, RGB pixels): ``(text, score)`` per crop.

        Crops of similar width share a batch (at most ``batch`` of them), so little
        padding is computed; the per-step probabilities are decoded with
        :func:`ctc_greedy` over the model's own character list.
        """
        if not crops:
            return []
        name = self.recognizer.get_inputs()[0].name
        order = np.argsort([c.shape[1] / c.shape[0] for c in crops], kind="stable")
        out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for start in range(0, len(crops), self.batch):
            chunk = [int(i) for i in order[start : start + self.batch]]
            feed = self.recognizer_input([crops[i] for i in chunk])
            (probs,) = self.recognizer.run(None, {name: feed})
            for i, decoded in zip(chunk, ctc_greedy(probs, self.characters), strict=True):
                out[i] = decoded
        return out

    def read(self, image: Any) -> OcrResult:
        """Find and read every text line of an image (an RGB array, a PIL image or a file path).

        Example:
            >>> from localml_kit.apps import render_text
            >>> OcrPipeline().read(render_text("Total: 12.50 EUR")).texts  # the ppocr-v4 samples
            ['Total: 12.50 EUR']
        """
        rgb = as_rgb(image)
        ms: dict[str, float] = {}
        started = time.perf_counter()
        boxes, det_scores = self.detect(rgb)
        ms["detect"] = (time.perf_counter() - started) * 1000
        crops = [crop_box(rgb, box) for box in boxes]
        mark = time.perf_counter()
        angles = self.turn(crops)
        ms["direction"] = (time.perf_counter() - mark) * 1000
        mark = time.perf_counter()
        read = self.recognize(crops)
        ms["recognize"] = (time.perf_counter() - mark) * 1000
        ms["total"] = (time.perf_counter() - started) * 1000
        keep = [i for i, (_, score) in enumerate(read) if score >= self.min_score]
        return OcrResult(
            boxes=boxes[keep] if len(keep) else np.zeros((0, 4, 2), dtype=np.float32),
            texts=[read[i][0] for i in keep],
            scores=[round(read[i][1], 4) for i in keep],
            angles=[angles[i] for i in keep],
            ms={k: round(v, 2) for k, v in ms.items()},
            image_shape=(int(rgb.shape[0]), int(rgb.shape[1])),
            detector_scores=[round(det_scores[i], 4) for i in keep],
        )

    def close(self) -> None:
        """Release the three sessions (and the memory of their models)."""
        self.detector = self.recognizer = self.direction = None
