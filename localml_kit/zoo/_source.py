"""The one interface every model source follows, and the search helpers they share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from localml_kit import errors
from localml_kit.zoo._card import ModelCard

# Orders a search can ask for; numbers sort high to low, ``id`` A to Z, unknowns last.
SORTS = ("downloads", "likes", "last_modified", "size_bytes", "parameters", "id")


@runtime_checkable
class Source(Protocol):
    """A place models come from: the Hub, a store on disk, the samples.

    ``remote`` sources need the network; the others read this machine only.

    Example:
        >>> from localml_kit import zoo
        >>> isinstance(zoo.source("samples"), Source)
        True
    """

    name: str
    remote: bool

    def search(
        self,
        query: str = "",
        *,
        task: str | None = None,
        format: str | None = None,
        limit: int = 50,
        sort: str | None = None,
    ) -> list[ModelCard]:
        """Cards whose id, title or tags hold every word of ``query``, best ``sort`` first."""
        ...

    def card(self, id: str) -> ModelCard:
        """The card of one model; ModelNotFoundError when the source has no such id."""
        ...

    def fetch(
        self, id: str, *, allow_patterns: Sequence[str] | None = None, progress: bool = True
    ) -> Path:
        """The model's local path, downloading it first where the source is remote."""
        ...


def check_sort(sort: str | None) -> None:
    """ConfigError for a sort the zoo does not know."""
    if sort is not None and sort not in SORTS:
        raise errors.ConfigError(f"cannot sort by {sort!r}; use one of {', '.join(SORTS)}.")


def sort_cards(cards: Sequence[ModelCard], sort: str | None) -> list[ModelCard]:
    """Cards in ``sort`` order (stable; cards without the value last)."""
    check_sort(sort)
    if sort is None:
        return list(cards)
    if sort == "id":
        return sorted(cards, key=lambda c: c.id.lower())
    known = [c for c in cards if getattr(c, sort) is not None]
    unknown = [c for c in cards if getattr(c, sort) is None]
    return sorted(known, key=lambda c: getattr(c, sort), reverse=True) + unknown


def matches(
    card: ModelCard, query: str = "", task: str | None = None, format: str | None = None
) -> bool:
    """True when every word of ``query`` is in the card's id, title or tags and task/format agree."""
    if task and card.task != task:
        return False
    if format and card.format != format:
        return False
    text = f"{card.id}\n{card.title}\n{' '.join(card.tags)}".lower()
    return all(word in text for word in query.lower().split())


class DiskSource:
    """Base of the sources that read this machine: list every card, then filter in memory."""

    name = ""
    remote = False

    def cards(self) -> list[ModelCard]:
        """Every model this source holds."""
        raise NotImplementedError

    def search(
        self,
        query: str = "",
        *,
        task: str | None = None,
        format: str | None = None,
        limit: int = 50,
        sort: str | None = None,
    ) -> list[ModelCard]:
        """Cards matching ``query`` (every word in id, title or tags), ``task`` and ``format``."""
        check_sort(sort)
        found = [c for c in self.cards() if matches(c, query, task, format)]
        return sort_cards(found, sort)[: max(limit, 0)]

    def card(self, id: str) -> ModelCard:
        """The card with this id; ModelNotFoundError listing a few known ids otherwise."""
        cards = self.cards()
        for card in cards:
            if card.id == id:
                return card
        known = ", ".join(c.id for c in cards[:8]) or "none"
        raise errors.ModelNotFoundError(
            f"{self.name}: no model {id!r} ({self.where()}; it holds: {known}). {self.hint(id)}"
        )

    def fetch(
        self, id: str, *, allow_patterns: Sequence[str] | None = None, progress: bool = True
    ) -> Path:
        """The model's path on this machine (nothing to download)."""
        path = self.card(id).local_path
        if path is None:
            raise errors.ModelNotFoundError(
                f"{self.name}: {id!r} has no local files. {self.hint(id)}"
            )
        return path

    def where(self) -> str:
        """Where the source looks, for messages."""
        return "this machine"

    def hint(self, id: str) -> str:
        """What to do when ``id`` is missing."""
        return "Search again to see what is there."
