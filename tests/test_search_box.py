"""SearchBox driven headlessly: type a query, press Search, read .result."""

from __future__ import annotations

from pathlib import Path

import pytest

from localml_kit import apps
from localml_kit.widgets import SearchBox
from tests.test_apps import TEXTS, tiny_encoder


@pytest.fixture
def index(tmp_path: Path) -> apps.SemanticIndex:
    return apps.SemanticIndex.build(TEXTS, tiny_encoder(tmp_path / "enc"), sources=list("abcde"))


def test_typing_a_query_searches_and_shows_ranked_results(index: apps.SemanticIndex) -> None:
    box = SearchBox(index, k=2)
    assert box.result is None and "5 texts" in box.status.value
    box.query.value = "cat"  # what pressing Enter in the box does
    assert box.result is not None and set(box.result["text"]) == {"the cat", "kitten"}
    assert box.ms is not None and box.ms > 0 and f"{box.ms:.1f} ms" in box.status.value
    assert box.results.value.count("<td>the cat</td>") == 1 and box.results.value.count("<tr") == 3
    box.k.value = 3
    box.search_button.click()
    assert len(box.result) == 3
    again = box.search("market")
    assert again is box.result and box.query.value == "market"
    assert box.result["source"].iloc[0] == "c"


def test_results_are_escaped_and_errors_shown(tmp_path: Path) -> None:
    index = apps.SemanticIndex.build(["<b>cat</b> & dog"], tiny_encoder(tmp_path / "enc"))
    box = SearchBox(index, query="cat")
    assert "&lt;b&gt;cat&lt;/b&gt; &amp; dog" in box.results.value
    assert "<b>cat</b>" not in box.results.value
    assert "source" not in box.results.value  # no sources given: no empty column
    box.search("   ")
    assert box.result is None and box.results.value == ""
    assert "localml-error" in box.status.value and "empty one" in box.status.value


def test_fallback_carries_the_results_for_static_frontends(index: apps.SemanticIndex) -> None:
    box = SearchBox(index)
    assert box._repr_mimebundle_()["text/plain"] == "SearchBox: 5 texts; no search yet"
    box.search("puppy")
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("SearchBox: 'puppy': 5 results in ")
    assert "puppy" in bundle["text/html"] and "<table" in bundle["text/html"]
