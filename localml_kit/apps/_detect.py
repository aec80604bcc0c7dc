"""Text detection post-processing (DB, "differentiable binarization"), in numpy.

The detector outputs a probability of "text" per pixel. Turning that map into
boxes: threshold it, find the connected regions, fit each with its smallest
rotated rectangle, keep the confident ones, and grow each by a margin (the
network is trained to mark a shrunken core of every text line).

Example:
    >>> prob = np.zeros((32, 64), dtype=np.float32)
    >>> prob[10:20, 8:50] = 0.9
    >>> boxes, scores = text_boxes(prob, (32, 64))
    >>> boxes.shape, round(scores[0], 1)
    ((1, 4, 2), 0.8)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from localml_kit import errors

__all__ = [
    "components",
    "convex_hull",
    "min_area_rect",
    "order_corners",
    "polygon_mean",
    "sort_boxes",
    "text_boxes",
]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True: row, first column, column after the last (row-major order)."""
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    step = np.diff(padded, axis=1)
    starts = np.argwhere(step == 1)
    ends = np.argwhere(step == -1)
    return starts[:, 0], starts[:, 1], ends[:, 1]


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected regions of a boolean mask, each as the (x, y) end points of its runs.

    The end points of every horizontal run are enough to know a region's
    outline (its convex hull, its extent), and far fewer than its pixels.

    Example:
        >>> m = np.zeros((4, 8), dtype=bool); m[0, 0:2] = m[1, 2] = m[3, 5:7] = True
        >>> [len(c) for c in components(m)]
        [4, 2]
    """
    rows, starts, ends = _runs(np.asarray(mask, dtype=bool))
    count = len(rows)
    if count == 0:
        return []
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = np.searchsorted(rows, np.arange(rows[-1] + 2))
    for row in range(int(rows[0]) + 1, int(rows[-1]) + 1):
        i, i_end = int(first[row - 1]), int(first[row])
        j, j_end = int(first[row]), int(first[row + 1])
        while i < i_end and j < j_end:
            # 8-connected: the runs overlap or touch diagonally.
            if starts[j] <= ends[i] and starts[i] <= ends[j]:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(i) for i in range(count)])
    order = np.argsort(roots, kind="stable")
    cuts = np.flatnonzero(np.diff(roots[order])) + 1
    out = []
    for group in np.split(order, cuts):
        xs = np.concatenate([starts[group], ends[group] - 1])
        ys = np.concatenate([rows[group], rows[group]])
        out.append(np.stack([xs, ys], axis=1).astype(np.float64))
    return out


def convex_hull(points: np.ndarray) -> np.ndarray:
    """The convex hull of 2-D points, counter-clockwise (Andrew's monotone chain).

    Example:
        >>> convex_hull(np.array([[0, 0], [2, 0], [1, 1], [2, 2], [0, 2]])).tolist()
        [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]
    """
    pts = np.unique(np.asarray(points, dtype=np.float64).reshape(-1, 2), axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2:
                (ax, ay), (bx, by) = chain[-2], chain[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def order_corners(box: np.ndarray) -> np.ndarray:
    """Four corners as top-left, top-right, bottom-right, bottom-left (image y grows downwards).

    Example:
        >>> order_corners(np.array([[5, 5], [0, 0], [5, 0], [0, 5]])).tolist()
        [[0.0, 0.0], [5.0, 0.0], [5.0, 5.0], [0.0, 5.0]]
    """
    pts = np.asarray(box, dtype=np.float64).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]])


def min_area_rect(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The smallest rectangle, at any angle, around the points: its corners (ordered), long and short side.

    Example:
        >>> box, long, short = min_area_rect(np.array([[0, 0], [10, 0], [10, 2], [0, 2]]))
        >>> long, short
        (10.0, 2.0)
    """
    hull = convex_hull(points)
    if len(hull) < 3:
        lo, hi = hull.min(axis=0), hull.max(axis=0)
        box = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
        sides = sorted((float(hi[0] - lo[0]), float(hi[1] - lo[1])))
        return box, sides[1], sides[0]
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    axis_u = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (E, 2)
    axis_v = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
    pu, pv = hull @ axis_u.T, hull @ axis_v.T  # (N, E)
    extent_u = pu.max(axis=0) - pu.min(axis=0)
    extent_v = pv.max(axis=0) - pv.min(axis=0)
    best = int(np.argmin(extent_u * extent_v))
    u, v = axis_u[best], axis_v[best]
    u0, u1 = pu[:, best].min(), pu[:, best].max()
    v0, v1 = pv[:, best].min(), pv[:, best].max()
    corners = np.array([u0 * u + v0 * v, u1 * u + v0 * v, u1 * u + v1 * v, u0 * u + v1 * v])
    long, short = sorted((float(u1 - u0), float(v1 - v0)), reverse=True)
    return order_corners(corners), long, short


def polygon_mean(values: np.ndarray, polygon: np.ndarray) -> float:
    """The mean of a 2-D map over the pixels inside a convex polygon (edges included).

    Example:
        >>> polygon_mean(np.ones((5, 5)), np.array([[1, 1], [3, 1], [3, 3], [1, 3]]))
        1.0
    """
    h, w = values.shape
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x0 = int(np.clip(np.floor(poly[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(poly[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(poly[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(poly[:, 1].max()), 0, h - 1))
    ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    inside = np.ones(xs.shape, dtype=bool)
    area2 = 0.0
    for k in range(len(poly)):
        a, b = poly[k], poly[(k + 1) % len(poly)]
        area2 += a[0] * b[1] - b[0] * a[1]
    sign = 1.0 if area2 >= 0 else -1.0
    for k in range(len(poly)):
        a, b = poly[k], poly[(k + 1) % len(poly)]
        cross = (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])
        inside &= sign * cross >= -0.5 * np.hypot(b[0] - a[0], b[1] - a[1])
    patch = values[y0 : y1 + 1, x0 : x1 + 1]
    return float(patch[inside].mean()) if inside.any() else 0.0


def _dilate(mask: np.ndarray) -> np.ndarray:
    """Grow a mask by one pixel down and to the right (a 2x2 dilation)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:, 1:] |= mask[:, :-1]
    out[1:, 1:] |= mask[:-1, :-1]
    return out


def text_boxes(
    prob: np.ndarray,
    image_shape: Sequence[int],
    *,
    thresh: float = 0.3,
    box_thresh: float = 0.5,
    unclip_ratio: float = 1.6,
    dilate: bool = True,
    max_candidates: int = 1000,
    min_size: float = 3.0,
) -> tuple[np.ndarray, list[float]]:
    """Boxes of text from a DB probability map, in the coordinates of an image of ``image_shape``.

    Pixels above ``thresh`` are text; each connected region becomes its
    smallest rotated rectangle, kept when the mean probability inside reaches
    ``box_thresh``, then grown on every side by ``area * unclip_ratio /
    perimeter`` and scaled from the map's size to the image's. Returns the
    boxes (n x 4 corners x (x, y), top-left first, clockwise) and their scores.

    Example:
        >>> text_boxes(np.zeros((8, 8)), (16, 16))[0].shape
        (0, 4, 2)
    """
    arr = np.asarray(prob, dtype=np.float32)
    if arr.ndim < 2 or arr.size != arr.shape[-2] * arr.shape[-1]:
        raise errors.InputError(
            f"a DB probability map is one height x width map (any leading dims of 1); got shape "
            f"{arr.shape}."
        )
    map_h, map_w = int(arr.shape[-2]), int(arr.shape[-1])
    pmap = arr.reshape(map_h, map_w)
    mask = pmap > thresh
    if dilate:
        mask = _dilate(mask)
    img_h, img_w = int(image_shape[0]), int(image_shape[1])
    boxes: list[np.ndarray] = []
    scores: list[float] = []
    for points in components(mask)[:max_candidates]:
        box, _, short = min_area_rect(points)
        if short < min_size:
            continue
        score = polygon_mean(pmap, box)
        if score < box_thresh:
            continue
        long_side = float(np.linalg.norm(box[1] - box[0]))
        short_side = float(np.linalg.norm(box[3] - box[0]))
        distance = long_side * short_side * unclip_ratio / (2 * (long_side + short_side))
        u = (box[1] - box[0]) / max(long_side, 1e-9)
        v = (box[3] - box[0]) / max(short_side, 1e-9)
        grown = box + distance * np.array([-u - v, u - v, u + v, -u + v])
        if min(long_side, short_side) + 2 * distance < min_size + 2:
            continue
        grown[:, 0] = np.clip(np.round(grown[:, 0] / map_w * img_w), 0, img_w - 1)
        grown[:, 1] = np.clip(np.round(grown[:, 1] / map_h * img_h), 0, img_h - 1)
        grown = order_corners(grown)
        if np.linalg.norm(grown[0] - grown[1]) <= 3 or np.linalg.norm(grown[0] - grown[3]) <= 3:
            continue
        boxes.append(grown)
        scores.append(score)
    if not boxes:
        return np.zeros((0, 4, 2), dtype=np.float32), []
    return np.array(boxes, dtype=np.float32), scores


def sort_boxes(boxes: np.ndarray, *, same_line: float = 10.0) -> list[int]:
    """Reading order: top to bottom, and left to right within a line (tops within ``same_line`` px).

    Example:
        >>> b = np.array([[[50, 2], [90, 2], [90, 9], [50, 9]], [[0, 0], [40, 0], [40, 9], [0, 9]]])
        >>> sort_boxes(b)
        [1, 0]
    """
    order = sorted(range(len(boxes)), key=lambda i: (float(boxes[i][0][1]), float(boxes[i][0][0])))
    for i in range(len(order) - 1):
        for j in range(i, -1, -1):
            a, b = boxes[order[j]][0], boxes[order[j + 1]][0]
            if abs(float(b[1]) - float(a[1])) < same_line and float(b[0]) < float(a[0]):
                order[j], order[j + 1] = order[j + 1], order[j]
            else:
                break
    return order
