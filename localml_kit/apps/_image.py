"""Images for the OCR app: any image as RGB pixels, bilinear resizing, cropping a box, rendering text.

numpy only, except :func:`load_image` and :func:`render_text`, which use Pillow
(the ``notebooks`` extra).

Example:
    >>> img = np.zeros((4, 6, 3), dtype=np.uint8)
    >>> resize(img, 2, 3).shape
    (2, 3, 3)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import errors

__all__ = ["FONTS", "as_rgb", "crop_box", "font_path", "load_image", "render_text", "resize"]

# Fonts that render_text finds by name: matplotlib ships them (DejaVu, free licence).
FONTS = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "serif": "DejaVuSerif.ttf",
    "mono": "DejaVuSansMono.ttf",
}


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow comes with matplotlib
        raise errors.OptionalDependencyError(
            'reading image files and rendering text need Pillow: pip install "localml-kit[notebooks]".'
        ) from exc
    return Image


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as RGB pixels (``uint8``, height x width x 3).

    Example:
        >>> from PIL import Image
        >>> Image.new("L", (64, 48), color=255).save("page.png")  # a grey-scale file
        >>> load_image("page.png").shape
        (48, 64, 3)
    """
    image_mod = _pil()
    file = Path(path).expanduser()
    if not file.is_file():
        raise errors.InputError(f"no image at {file}: give an image file or an array of pixels.")
    try:
        with image_mod.open(file) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as exc:
        raise errors.InputError(f"{file} is not an image Pillow can read ({exc}).") from exc


def as_rgb(image: Any) -> np.ndarray:
    """Pixels as ``uint8`` RGB, height x width x 3, from an array (gray, RGB, RGBA), a PIL image or a path.

    Float arrays are read as 0-1 values.

    Example:
        >>> as_rgb(np.zeros((2, 3), dtype=np.uint8)).shape
        (2, 3, 3)
    """
    if isinstance(image, str | os.PathLike):
        return load_image(image)
    if hasattr(image, "convert") and hasattr(image, "size"):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype.kind == "f":
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise errors.InputError(
            f"an image must be height x width (gray) or height x width x 3 (RGB) pixels; "
            f"got shape {arr.shape}."
        )
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def _axis(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights for one axis, pixel centres aligned (as OpenCV's INTER_LINEAR)."""
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0, src - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a height x width (x channels) array; ``uint8`` in, ``uint8`` out.

    Example:
        >>> resize(np.arange(4, dtype=np.float32).reshape(1, 4), 1, 2).tolist()
        [[0.5, 2.5]]
    """
    if height < 1 or width < 1:
        raise errors.InputError(f"cannot resize to {height} x {width}: both sides must be >= 1.")
    arr = np.asarray(image)
    src = arr.astype(np.float32)
    y0, y1, wy = _axis(arr.shape[0], int(height))
    x0, x1, wx = _axis(arr.shape[1], int(width))
    extra = (1,) * (arr.ndim - 2)
    wy = wy.reshape(-1, 1, *extra)
    wx = wx.reshape(1, -1, *extra)
    rows = src[y0] * (1 - wy) + src[y1] * wy
    out = rows[:, x0] * (1 - wx) + rows[:, x1] * wx
    if arr.dtype == np.uint8:
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return out.astype(arr.dtype)


def crop_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The pixels inside a rectangle given by its corners (top-left, top-right, bottom-right,
    bottom-left, possibly rotated), straightened; a crop much taller than wide is turned to lie flat.

    Example:
        >>> img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
        >>> crop_box(img, np.array([[1, 1], [3, 1], [3, 3], [1, 3]], dtype=np.float32)).shape
        (2, 2, 3)
    """
    pts = np.asarray(box, dtype=np.float64).reshape(4, 2)
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    width, height = max(width, 1), max(height, 1)
    # An affine map from the crop's grid to the image: corner 0 + u * edge 0->1 + v * edge 0->3.
    u = np.arange(width, dtype=np.float64) / width
    v = np.arange(height, dtype=np.float64) / height
    ex, ey = pts[1] - pts[0], pts[3] - pts[0]
    xs = pts[0, 0] + u[None, :] * ex[0] + v[:, None] * ey[0]
    ys = pts[0, 1] + u[None, :] * ex[1] + v[:, None] * ey[1]
    h, w = image.shape[:2]
    xs = np.clip(xs, 0, w - 1)
    ys = np.clip(ys, 0, h - 1)
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (xs - x0)[..., None].astype(np.float32)
    fy = (ys - y0)[..., None].astype(np.float32)
    src = image.astype(np.float32)
    top = src[y0, x0] * (1 - fx) + src[y0, x1] * fx
    bottom = src[y1, x0] * (1 - fx) + src[y1, x1] * fx
    out = np.clip(top * (1 - fy) + bottom * fy + 0.5, 0, 255).astype(np.uint8)
    if height / width >= 1.5:
        out = np.rot90(out)
    return np.ascontiguousarray(out)


def font_path(font: str | os.PathLike[str] = "sans") -> Path:
    """A TrueType font file: one of :data:`FONTS` by name (matplotlib ships them), or a path.

    Example:
        >>> font_path("mono").name
        'DejaVuSansMono.ttf'
    """
    text = os.fspath(font)
    if text in FONTS:
        try:
            import matplotlib
        except ImportError as exc:  # pragma: no cover - the notebooks extra brings it
            raise errors.OptionalDependencyError(
                f'the font {text!r} comes with matplotlib: pip install "localml-kit[notebooks]", '
                "or give a path to a .ttf file."
            ) from exc
        return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[text]
    path = Path(text).expanduser()
    if not path.is_file():
        raise errors.InputError(
            f"no font {text!r}: name one of {', '.join(FONTS)} or give a path to a .ttf file."
        )
    return path


def render_text(
    lines: str | Sequence[str],
    *,
    font: str | os.PathLike[str] = "sans",
    size: int = 32,
    margin: int = 24,
    spacing: float = 0.6,
    color: tuple[int, int, int] = (20, 20, 20),
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Text drawn on a plain page, one line per item: RGB pixels (``uint8``, height x width x 3).

    ``font`` names a font of :data:`FONTS` or a ``.ttf`` path; ``size`` is in
    pixels; ``spacing`` is the gap between lines as a share of ``size``.

    Example:
        >>> page = render_text(["Hello, world.", "Second line"], size=28)
        >>> page.dtype, page.ndim, page.shape[2]
        (dtype('uint8'), 3, 3)
        >>> bool(page.shape[0] > 2 * 28), bool(page.min() < 128 < page.max())  # two dark lines
        (True, True)
    """
    image_mod = _pil()
    from PIL import ImageDraw, ImageFont

    items = [lines] if isinstance(lines, str) else list(lines)
    if not items or not any(line.strip() for line in items):
        raise errors.InputError("give at least one line of text to render.")
    if size < 6:
        raise errors.InputError(f"size={size} is too small to read; use 6 pixels or more.")
    face = ImageFont.truetype(str(font_path(font)), size)
    boxes = [face.getbbox(line or " ") for line in items]
    step = round(size * (1 + spacing))
    width = max(b[2] for b in boxes) + 2 * margin
    height = step * (len(items) - 1) + max(b[3] for b in boxes) + 2 * margin
    page = image_mod.new("RGB", (int(width), int(height)), background)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(items):
        draw.text((margin, margin + i * step), line, font=face, fill=color)
    return np.asarray(page)
