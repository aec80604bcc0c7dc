"""Search every source at once; fetch a model from the source it came from."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from localml_kit import errors, hardware
from localml_kit.zoo import _hub
from localml_kit.zoo._card import ModelCard, _human
from localml_kit.zoo._local import CacheSource, LocalSource, SamplesSource
from localml_kit.zoo._source import Source, check_sort, sort_cards
from localml_kit.zoo._stores import LMStudioSource, OllamaSource
from localml_kit.zoo._table import HELPER_COLUMNS, cards_frame, optional_int

SOURCES: tuple[str, ...] = ("hub", "onnx-zoo", "cache", "ollama", "lmstudio", "local", "samples")


def _factories() -> dict[str, Callable[..., Source]]:
    return {
        "hub": _hub.HubSource,
        "onnx-zoo": _hub.OnnxZooSource,
        "cache": CacheSource,
        "ollama": OllamaSource,
        "lmstudio": LMStudioSource,
        "local": LocalSource,
        "samples": SamplesSource,
    }


def source(name: str, **options: Any) -> Source:
    """The source called ``name`` (one of ``SOURCES``), built with its options.

    Options: ``hub``/``onnx-zoo``: ``endpoint``, ``timeout`` (seconds a call may take in
    all), ``stall_s``; ``cache``:
    ``cache_dir``; ``ollama``/``lmstudio``: ``root``; ``local``: ``folders``, ``depth``.

    Example:
        >>> source("ollama", root="/tmp/ollama").name
        'ollama'
    """
    factory = _factories().get(name)
    if factory is None:
        raise errors.UnknownSourceError(
            f"no model source {name!r}; the sources are: {', '.join(SOURCES)}."
        )
    try:
        return factory(**options)
    except TypeError as exc:
        raise errors.ConfigError(f"source {name!r} does not take these options: {exc}.") from exc


@dataclass
class SearchResult:
    """Cards found across sources, best first, and one line per source that could not answer.

    ``offline`` is True when the Hub was skipped (offline mode, unreachable, or too slow).

    Example:
        >>> result = SearchResult(cards=[ModelCard(id="m", source="local", size_bytes=10)])
        >>> list(result.frame()["id"])
        ['m']
    """

    cards: list[ModelCard] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    offline: bool = False

    def __len__(self) -> int:
        return len(self.cards)

    def frame(
        self, context_length: int = 4096, machine: hardware.HardwareReport | None = None
    ) -> pd.DataFrame:
        """One row per card with its memory estimate and fit on this machine (RAM and GPU).

        The columns of ``cards_frame`` without its two search helpers (``_text``, ``_id_rank``).
        """
        frame = cards_frame(self.cards, context_length=context_length, machine=machine)
        return frame.drop(columns=list(HELPER_COLUMNS))

    def _repr_html_(self) -> str:
        e = html.escape
        notes = "".join(f"<p><i>{e(n)}</i></p>" for n in self.notes)
        if not self.cards:
            return f"{notes}<p>No models found.</p>"
        frame = self.frame()
        gpu = bool(frame["gpu_fit"].notna().any())
        head = ["model", "source", "task", "format", "size", "parameters", "quant", "licence"]
        head += ["downloads", "memory", "fit in RAM"] + (["fit on GPU"] if gpu else [])
        rows = []
        for row in frame.itertuples(index=False):
            cells = [
                row.id,
                row.source,
                row.task,
                row.format,
                _human(optional_int(row.size_bytes)),
                f"{optional_int(row.parameters):,}" if optional_int(row.parameters) else None,
                row.quantization,
                row.license,
                f"{optional_int(row.downloads):,}"
                if optional_int(row.downloads) is not None
                else None,
                _human(optional_int(row.memory_bytes)),
                row.fit,
            ]
            if gpu:
                cells.append(row.gpu_fit if isinstance(row.gpu_fit, str) else None)
            rows.append(
                "<tr>"
                + "".join(f"<td>{e(str(c)) if c is not None else ''}</td>" for c in cells)
                + "</tr>"
            )
        header = "".join(f"<th>{e(h)}</th>" for h in head)
        return (
            f"{notes}<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )


def search(
    query: str = "",
    *,
    sources: Sequence[str] | None = None,
    task: str | None = None,
    format: str | None = None,
    limit: int = 50,
    sort: str = "downloads",
) -> SearchResult:
    """Search models across ``sources`` (default: all of ``SOURCES``), at most ``limit`` per source.

    Offline (``LOCALML_OFFLINE``), with the Hub unreachable, or once it has not
    answered within its deadline (``LOCALML_HUB_TIMEOUT``), remote sources are
    skipped and one note says so; a source that fails adds a note instead of
    failing the search. ``sort`` is one of downloads, likes, last_modified,
    size_bytes, parameters, id.

    Example:
        >>> result = search("smollm2", sources=["samples"])
        >>> [c.id for c in result.cards]
        ['smollm2-135m-instruct']
    """
    check_sort(sort)
    if limit < 1:
        raise errors.ConfigError(f"limit must be 1 or more (got {limit}): it caps each source.")
    chosen = [source(name) for name in dict.fromkeys(SOURCES if sources is None else sources)]
    notes: list[str] = []
    remote = [s for s in chosen if s.remote]
    skipped = False
    if remote:
        endpoint = getattr(remote[0], "endpoint", "")
        problem = _hub.hub_problem(endpoint)
        if problem is not None:
            skipped = True
            what = problem if problem.startswith("offline") else f"Hub unreachable ({problem})"
            notes.append(f"{what}: showing local sources")
    cards: list[ModelCard] = []
    for src in chosen:
        if src.remote and skipped:
            continue
        try:
            cards.extend(src.search(query, task=task, format=format, limit=limit, sort=sort))
        except errors.HubTimeoutError:
            # The other remote sources ask the same Hub: skip them rather than wait again.
            skipped = True
            late = getattr(src, "deadline_s", None)
            within = f" within {late:g} s" if isinstance(late, int | float) else ""
            notes.append(f"Hub unreachable (no answer{within}): showing local sources")
        except Exception as exc:  # one failing source must not fail the search
            text = str(exc).strip().splitlines()
            detail = text[0] if text else type(exc).__name__
            if not isinstance(exc, errors.LocalMLError):
                detail = f"{type(exc).__name__}: {detail}"
            notes.append(detail if detail.startswith(f"{src.name}:") else f"{src.name}: {detail}")
    return SearchResult(cards=sort_cards(cards, sort), notes=notes, offline=skipped)


def card(id: str, *, source: str = "hub") -> ModelCard:
    """The full card of one model from one source (the Hub by default: files with sizes).

    Example:
        >>> card("digits-mlp", source="samples").task
        'tabular-classification'
    """
    return _named(source).card(id)


def fetch(
    card_or_id: ModelCard | str,
    *,
    source: str | None = None,
    allow_patterns: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Get a model onto this machine; returns its local path (a file or a folder).

    A card is fetched from its own source; an id from ``source`` (default: the
    Hub, into the Hugging Face cache). ``allow_patterns`` picks files, e.g.
    ``["*Q4_K_M.gguf"]``. Local sources return the path they already have.

    Example:
        >>> fetch("digits-mlp", source="samples")
        PosixPath('.../samples/digits-mlp/model.onnx')

    From the Hub (the network; into the Hugging Face cache)::

        fetch("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", allow_patterns=["*q4_k_m.gguf"])
        # PosixPath('.../snapshots/...')
    """
    if isinstance(card_or_id, ModelCard):
        name, id = source or card_or_id.source, card_or_id.id
    else:
        name, id = source or "hub", card_or_id
    return _named(name).fetch(id, allow_patterns=allow_patterns, progress=progress)


def _named(name: str) -> Source:
    return source(name)
