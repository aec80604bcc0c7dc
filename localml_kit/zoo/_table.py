"""Model cards as a DataFrame, and fast in-memory filtering and sorting of it.

The frame is the one table behind ``SearchResult.frame()`` and the ZooBrowser:
one row per card, plain columns to filter and sort on, and the card itself in
the ``card`` column so a view can show its details.

Example:
    >>> from localml_kit.zoo._card import ModelCard
    >>> cards = [ModelCard(id="a/tiny", source="hub", format="onnx", size_bytes=10**6),
    ...          ModelCard(id="b/big", source="hub", format="gguf", size_bytes=10**9)]
    >>> list(filter_cards(cards, format="gguf")["id"])
    ['b/big']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from localml_kit import errors, hardware
from localml_kit.zoo._card import ModelCard

__all__ = ["COLUMNS", "HELPER_COLUMNS", "SORT_COLUMNS", "cards_frame", "filter_cards"]

COLUMNS = (
    "id",
    "source",
    "title",
    "task",
    "format",
    "size_bytes",
    "parameters",
    "quantization",
    "license",
    "downloads",
    "likes",
    "memory_bytes",
    "fit",
    "gpu_fit",
    "local",
    "card",
    "_text",
    "_id_rank",
)
# Columns a view may offer to sort on.
SORT_COLUMNS = (
    "downloads",
    "likes",
    "size_bytes",
    "memory_bytes",
    "parameters",
    "id",
    "title",
    "source",
    "task",
    "format",
    "license",
    "fit",
    "gpu_fit",
)
_FIT_ORDER = {"fits": 0, "tight": 1, "does not fit": 2, "unknown": 3}
_NUMERIC = ("size_bytes", "parameters", "downloads", "likes", "memory_bytes")
# Helper column: id, title and tags lower-cased, built once so text search is one scan.
_HAYSTACK = "_text"
# Helper column: each row's place in case-insensitive id order, so sorting by id is numeric.
_ID_RANK = "_id_rank"
# The helper columns, for views that show the frame (``SearchResult.frame()`` drops them).
HELPER_COLUMNS = (_HAYSTACK, _ID_RANK)
_FITTING = ("fits", "tight")


def optional_int(value: object) -> int | None:
    """A frame cell as an int, or None for a missing value (None, NaN, NA)."""
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]


def _fit(needed: int | None, machine: hardware.HardwareReport, on_gpu: bool = False) -> str:
    return "unknown" if needed is None else hardware.fits(needed, machine, on_gpu=on_gpu)


def cards_frame(
    cards: Sequence[ModelCard],
    *,
    context_length: int = 4096,
    machine: hardware.HardwareReport | None = None,
) -> pd.DataFrame:
    """One row per card: its facts, estimated memory, fit on ``machine`` and the card itself.

    Columns: ``COLUMNS``. Numbers are nullable ``Int64``; ``fit`` (against the
    free RAM) and ``gpu_fit`` (against the largest GPU's free memory; missing on
    a machine without a GPU) are ordered categoricals; ``card`` holds the
    ModelCard. Two helper columns make ``filter_cards`` fast: ``_text`` (id,
    title and tags, lower-cased) and ``_id_rank`` (the row's place in
    case-insensitive id order). The machine is read once (``hardware.report()``)
    when not given.

    Example:
        >>> from localml_kit.zoo._card import ModelCard
        >>> frame = cards_frame([ModelCard(id="m", source="local", size_bytes=2**20)])
        >>> frame.loc[0, "fit"], bool(frame.loc[0, "local"])
        ('fits', False)
    """
    cards = list(cards)
    if machine is None and cards:
        machine = hardware.report()
    memory = [c.memory_bytes(context_length) for c in cards]
    data: dict[str, object] = {
        "id": [c.id for c in cards],
        "source": [c.source for c in cards],
        "title": [c.title or c.id for c in cards],
        "task": [c.task for c in cards],
        "format": [c.format for c in cards],
        "size_bytes": [c.size_bytes for c in cards],
        "parameters": [c.parameters for c in cards],
        "quantization": [c.quantization for c in cards],
        "license": [c.license for c in cards],
        "downloads": [c.downloads for c in cards],
        "likes": [c.likes for c in cards],
        "memory_bytes": memory,
        "fit": [_fit(m, machine) for m in memory] if machine is not None else [],
        "gpu_fit": [_fit(m, machine, on_gpu=True) if machine.gpus else None for m in memory]
        if machine is not None
        else [],
        "local": [c.local_path is not None for c in cards],
        "card": cards,
        _HAYSTACK: [_text_of(c) for c in cards],
        _ID_RANK: _text_rank(pd.Series([c.id for c in cards], dtype=object)),
    }
    frame = pd.DataFrame(data, columns=list(COLUMNS))
    for column in _NUMERIC:
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    frame["local"] = frame["local"].astype(bool)
    for column in ("fit", "gpu_fit"):
        frame[column] = pd.Categorical(frame[column], categories=list(_FIT_ORDER), ordered=True)
    return frame


def _text_of(card: ModelCard) -> str:
    return f"{card.id}\n{card.title}\n{' '.join(card.tags)}".lower()


def _text_rank(values: pd.Series) -> np.ndarray:
    """Each value's rank in case-insensitive order (NaN where missing), for a numeric sort.

    Only the distinct values are lower-cased and sorted in Python, so columns
    like source or task with a few values cost one hash pass.
    """
    codes, uniques = pd.factorize(values)
    lowered = [str(u).lower() for u in uniques]
    rank = np.empty(len(lowered), dtype=float)
    rank[sorted(range(len(lowered)), key=lowered.__getitem__)] = np.arange(len(lowered))
    return np.where(codes < 0, np.nan, rank[codes] if len(lowered) else np.nan)


def _haystack(frame: pd.DataFrame) -> pd.Series:
    """The ``_text`` column, rebuilt from the cards for frames made elsewhere."""
    if _HAYSTACK in frame.columns:
        return frame[_HAYSTACK]
    return pd.Series([_text_of(c) for c in frame["card"]], index=frame.index, dtype=object)


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return {value}
    chosen = {v for v in value if v}
    return chosen or None


def filter_cards(
    frame_or_cards: pd.DataFrame | Sequence[ModelCard],
    *,
    text: str | None = None,
    sources: str | Iterable[str] | None = None,
    task: str | Iterable[str] | None = None,
    format: str | Iterable[str] | None = None,
    max_size: int | None = None,
    fits_only: bool = False,
    sort: str | None = "downloads",
    descending: bool = True,
    limit: int | None = None,
) -> pd.DataFrame:
    """Filter and sort cards in memory (no network): a new frame, like ``cards_frame``'s.

    ``text`` matches id, title and tags, case-insensitive, every word anywhere.
    ``sources``/``task``/``format`` take one value or several. ``max_size`` is
    in bytes and drops cards whose size is unknown. ``fits_only`` keeps
    "fits" and "tight", in RAM or on the GPU. Missing values sort last either way.

    Example:
        >>> from localml_kit.zoo._card import ModelCard
        >>> cards = [ModelCard(id="x/Small-Chat", source="hub", size_bytes=10, downloads=5),
        ...          ModelCard(id="y/other", source="hub", size_bytes=None, downloads=9)]
        >>> list(filter_cards(cards, sort="size_bytes", descending=False)["id"])
        ['x/Small-Chat', 'y/other']
        >>> list(filter_cards(cards, text="small chat")["id"])
        ['x/Small-Chat']
    """
    if isinstance(frame_or_cards, pd.DataFrame):
        frame = frame_or_cards
    else:
        frame = cards_frame(list(frame_or_cards))
    mask = np.ones(len(frame), dtype=bool)
    for column, wanted in (("source", sources), ("task", task), ("format", format)):
        chosen = _as_set(wanted)
        if chosen is not None:
            mask &= frame[column].isin(chosen).to_numpy()
    if max_size is not None:
        mask &= frame["size_bytes"].le(max_size).fillna(False).to_numpy(dtype=bool)
    if fits_only:
        fitting = frame["fit"].isin(_FITTING).to_numpy(dtype=bool)
        if "gpu_fit" in frame.columns:
            fitting = fitting | frame["gpu_fit"].isin(_FITTING).to_numpy(dtype=bool)
        mask &= fitting
    words = (text or "").lower().split()
    if words and len(frame):
        haystack = _haystack(frame)
        for word in words:
            # Narrow first: only search the rows still in, a plain substring test.
            rows = np.flatnonzero(mask)
            hits = haystack.iloc[rows].str.contains(word, regex=False).to_numpy(dtype=bool)
            mask[rows[~hits]] = False
    rows = np.flatnonzero(mask)
    if sort:
        rows = rows[_order(frame, rows, sort, descending)]
    if limit is not None:
        rows = rows[: max(limit, 0)]
    return frame.iloc[rows]


def _order(frame: pd.DataFrame, rows: np.ndarray, sort: str, descending: bool) -> np.ndarray:
    """Positions that sort ``frame``'s ``rows`` on ``sort``, missing values last."""
    if sort not in frame.columns or sort in ("card", _HAYSTACK, _ID_RANK):
        raise errors.ConfigError(f"cannot sort on {sort!r}: pick one of {', '.join(SORT_COLUMNS)}.")
    if sort in ("fit", "gpu_fit"):
        fit = frame[sort]
        codes = fit.cat.codes if isinstance(fit.dtype, pd.CategoricalDtype) else fit.map(_FIT_ORDER)
        key = codes.to_numpy(dtype=float, na_value=np.nan)[rows]
        key[key < 0] = np.nan
    elif sort in _NUMERIC or pd.api.types.is_numeric_dtype(frame[sort]):
        key = frame[sort].to_numpy(dtype=float, na_value=np.nan)[rows]
    elif sort == "id" and _ID_RANK in frame.columns:
        key = frame[_ID_RANK].to_numpy(dtype=float)[rows]
    else:
        key = _text_rank(frame[sort].iloc[rows])
    absent = np.isnan(key)
    signed = np.where(absent, 0.0, -key if descending else key)
    # lexsort sorts on the last key first: missing rows go last, then by value (stable).
    return np.lexsort((signed, absent))
