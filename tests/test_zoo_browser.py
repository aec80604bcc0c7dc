"""ZooBrowser driven headlessly: set values, click buttons, read .results, .result and the HTML."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from localml_kit import hardware, samples
from localml_kit.widgets import GraphViewer, ProfilerPanel, ZooBrowser
from localml_kit.zoo._card import CardFile, ModelCard
from tests.hubserver import model_record, serve_hub
from tests.test_zoo import _tiny_onnx

GB = 10**9
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"

CARDS = [
    ModelCard(
        id="HuggingFaceTB/SmolLM2-135M-Instruct",
        source="hub",
        task="text-generation",
        format="gguf",
        size_bytes=100_000_000,
        downloads=50_000,
        likes=300,
        license="apache-2.0",
        tags=("conversational",),
        files=(CardFile("smollm2-135m-instruct-q8_0.gguf", 145_000_000), CardFile("README.md")),
    ),
    ModelCard(
        id="onnxmodelzoo/resnet50",
        source="onnx-zoo",
        title="ResNet-50",
        task="image-classification",
        format="onnx",
        size_bytes=98_000_000,
        downloads=900,
        extra={"main_file": "onnx/model.onnx"},
    ),
    ModelCard(
        id="giant/too-big",
        source="hub",
        task="text-generation",
        format="safetensors",
        size_bytes=10**13,
        downloads=2_000_000,
    ),
    ModelCard(id="someone/mystery", source="local", format="onnx"),
]


def browser_of(cards: list[ModelCard] = CARDS, **options: Any) -> ZooBrowser:
    return ZooBrowser(cards=cards, netron=False, **options)


def ids(browser: ZooBrowser) -> list[str]:
    return browser.results["id"].tolist()


def table_ids(browser: ZooBrowser) -> list[str]:
    """The model names in the rendered table, top to bottom."""
    return re.findall(r"<tr><td>([^<]*)</td>", browser.table.value)


def test_given_cards_are_shown_sorted_by_downloads() -> None:
    browser = browser_of()
    assert ids(browser) == [
        "giant/too-big",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "onnxmodelzoo/resnet50",
        "someone/mystery",
    ]
    assert table_ids(browser) == ids(browser)
    assert browser.status.value == "4 of 4 models shown"
    assert browser.result is not None and browser.result.id == "giant/too-big"
    assert browser.search_result is None
    assert browser.source.options == ("any", "hub", "local", "onnx-zoo")
    assert browser.task.options == ("any", "image-classification", "text-generation")


def test_filters_run_in_memory() -> None:
    browser = browser_of()
    browser.source.value = "hub"
    assert ids(browser) == ["giant/too-big", "HuggingFaceTB/SmolLM2-135M-Instruct"]
    browser.format.value = "gguf"
    assert ids(browser) == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert browser.status.value == "1 of 1 models shown (3 filtered out)"
    browser.source.value = browser.format.value = "any"
    browser.task.value = "image-classification"
    assert ids(browser) == ["onnxmodelzoo/resnet50"]
    browser.task.value = "any"
    browser.max_size.value = "100 MB"
    assert ids(browser) == ["HuggingFaceTB/SmolLM2-135M-Instruct", "onnxmodelzoo/resnet50"]
    browser.max_size.value = "any"
    browser.fits.value = True
    assert "giant/too-big" not in ids(browser) and "someone/mystery" not in ids(browser)
    browser.query.value = "RESNET"
    assert ids(browser) == ["onnxmodelzoo/resnet50"]
    browser.query.value = "nothing-like-this"
    assert browser.results.empty and browser.result is None
    assert "No models match." in browser.table.value
    assert browser.detail.value == "<p>No model selected.</p>"


def test_sort_and_direction() -> None:
    browser = browser_of()
    browser.sort.value = "size"
    assert table_ids(browser) == [
        "giant/too-big",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "onnxmodelzoo/resnet50",
        "someone/mystery",
    ]
    browser.ascending.value = True
    assert table_ids(browser)[:3] == [
        "onnxmodelzoo/resnet50",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "giant/too-big",
    ]
    assert table_ids(browser)[-1] == "someone/mystery"  # unknown size stays last
    browser.sort.value = "name"
    assert table_ids(browser) == sorted((c.id for c in CARDS), key=str.lower)


def test_picking_a_row_shows_its_card() -> None:
    browser = browser_of()
    smol = next(label for text, label in browser.picker.options if "SmolLM2" in text)
    browser.picker.value = smol
    assert browser.result is CARDS[0]
    detail = browser.detail.value
    assert "apache-2.0" in detail and "smollm2-135m-instruct-q8_0.gguf" in detail
    assert "145.0 MB" in detail and "2 files" in detail and ">fits<" in detail
    assert "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct" in detail
    assert not browser.fetch_button.disabled  # a hub card can be fetched
    assert browser.graph_button.disabled and browser.profile_button.disabled  # not local yet
    # The selection survives a filter that keeps it.
    browser.source.value = "hub"
    assert browser.result is CARDS[0]
    browser.source.value = "local"
    assert browser.result is CARDS[3]
    assert "unknown: check the model card" in browser.detail.value
    assert browser.fetch_button.disabled


def test_select_by_id() -> None:
    browser = browser_of()
    assert browser.select("onnxmodelzoo/resnet50") is CARDS[1]
    assert browser.result is CARDS[1] and "ResNet-50" in browser.detail.value
    assert browser.select("not/there") is None and browser.result is CARDS[1]


def test_context_length_changes_the_memory_estimate() -> None:
    card = ModelCard(
        id="lm",
        source="hub",
        size_bytes=100_000_000,
        config={"num_hidden_layers": 30, "num_key_value_heads": 3, "head_dim": 64},
    )
    browser = browser_of([card])
    before = int(browser.results.loc[0, "memory_bytes"])
    browser.context.value = 32768
    assert int(browser.results.loc[0, "memory_bytes"]) > before
    assert "memory at 32,768 tokens" in browser.detail.value


def test_only_the_first_rows_are_drawn() -> None:
    cards = [ModelCard(id=f"org/m{i}", source="hub", downloads=i) for i in range(1000)]
    browser = browser_of(cards, rows=50)
    assert len(browser.results) == 1000
    assert len(table_ids(browser)) == 50 and len(browser.picker.options) == 50
    assert table_ids(browser)[0] == "org/m999"
    assert browser.status.value == "50 of 1,000 models shown"


def test_strings_from_cards_are_escaped() -> None:
    evil = ModelCard(
        id=f"evil/{IMG}",
        source="hub",
        title=SCRIPT,
        task=SCRIPT,
        format=IMG,
        quantization=SCRIPT,
        license=IMG,
        author=SCRIPT,
        description=f"{SCRIPT} and {IMG}",
        tags=(SCRIPT, IMG),
        last_modified=IMG,
        files=(CardFile(f"{IMG}.onnx", 10), CardFile(SCRIPT)),
        downloads=1,
    )
    browser = browser_of([evil])
    assert browser.result is evil
    pages = (browser.table.value, browser.detail.value)
    for page in pages:
        assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in browser.table.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in browser.detail.value
    # The picker's labels are plain text in the browser, but stay the same text.
    assert browser.picker.options[0][0] == f"evil/{IMG} · hub"
    # The text filter treats markup as plain text too.
    browser.query.value = "<script>"
    assert ids(browser) == [evil.id]


class _HostileHub(BaseHTTPRequestHandler):
    """A Hub that refuses every request with markup in its status line."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(503, SCRIPT)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_errors_and_notes_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        browser = ZooBrowser("x", sources=["hub"], netron=False)
    finally:
        server.shutdown()
        server.server_close()
    assert browser.search_result is not None and browser.search_result.notes
    assert SCRIPT in browser.search_result.notes[0]  # the hub's own words reach the note
    assert "<script" not in browser.notes.value and "&lt;script&gt;" in browser.notes.value
    # A kit error naming what the user typed is escaped too.
    failing = ZooBrowser("x", sources=[f"nowhere{IMG}"], netron=False)
    assert "no model source" in failing.status.value and "&lt;img" in failing.status.value
    assert "<img" not in failing.status.value
    failing.search_button.click()
    assert "<img" not in failing.status.value and failing.search_result is None


HUB_FILES = {
    "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q4_k_m.gguf": b"g" * 100,
    "someone/smol-giant/model.safetensors": b"s" * 100,
    "onnx-community/SmolVLM-256M/onnx/model.onnx": b"o" * 100,
    "other/unrelated/model.onnx": b"u" * 100,
    "onnxmodelzoo/resnet50/onnx/model.onnx": _tiny_onnx(),
    "onnxmodelzoo/resnet50/onnx/model_fp16.onnx": b"f" * 100,
    "onnxmodelzoo/resnet50/config.json": b"{}",
    "onnxmodelzoo/resnet50/README.md": b"# resnet50\n",
}
HUB_MODELS = [
    model_record(
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        downloads=50_000,
        likes=300,
        pipeline_tag="text-generation",
        library_name="gguf",
        tags=["gguf", "text-generation", "license:apache-2.0"],
        gguf={"total": 134_515_008, "architecture": "llama", "context_length": 8192},
    ),
    model_record(
        "someone/smol-giant",
        downloads=2_000_000,
        likes=10,
        pipeline_tag="text-generation",
        library_name="transformers",
        tags=["safetensors"],
        safetensors={"parameters": {"F32": 10**13}, "total": 10**13},
    ),
    model_record(
        "onnx-community/SmolVLM-256M",
        downloads=900,
        likes=400,
        pipeline_tag="image-text-to-text",
        library_name="transformers.js",
        tags=["onnx"],
    ),
    model_record("other/unrelated", downloads=5, library_name="onnx", tags=["onnx"]),
    model_record("onnxmodelzoo/resnet50", downloads=900, library_name="onnx", tags=["onnx"]),
]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The local Hub (tests/hubserver.py) at HF_ENDPOINT; yields the requests it saw."""
    with serve_hub(HUB_FILES, HUB_MODELS) as (endpoint, requests):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        yield requests


def _searches(requests: list[str]) -> int:
    """Searches the Hub answered: each browser search asks once for ``hub``, once for ``onnx-zoo``."""
    listings = [r for r in requests if r.startswith("GET /api/models?")]
    assert len(listings) % 2 == 0 and sum("author=onnxmodelzoo" in r for r in listings) * 2 == len(
        listings
    )
    return len(listings) // 2


def test_search_then_filter_without_a_new_search(hub: list[str]) -> None:
    browser = ZooBrowser(netron=False)
    assert hub == [] and browser.results.empty  # no query, no sources: waits for Search
    browser.query.value = "smol"  # Enter
    assert _searches(hub) == 1 and all("search=smol" in r for r in hub)
    assert browser.search_result is not None and browser.search_result.offline is False
    assert ids(browser) == [
        "someone/smol-giant",
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        "onnx-community/SmolVLM-256M",
        "smollm2-135m-instruct",  # the sample: no downloads, so last
    ]
    assert "hub" in browser.source.options and "samples" in browser.source.options
    browser.source.value = "hub"
    browser.sort.value = "likes"
    assert ids(browser) == [
        "onnx-community/SmolVLM-256M",
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        "someone/smol-giant",
    ]
    browser.fits.value = True  # the giant does not fit; the VLM's size is unknown
    browser.context.value = 8192
    assert ids(browser) == ["HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"]
    assert _searches(hub) == 1  # filters, sort and context ran in memory
    browser.search_button.click()  # the button searches again on purpose
    assert _searches(hub) == 2
    assert browser.source.value == "hub" and browser.fits.value  # filters survive a new search
    assert ids(browser) == ["HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"]

    samples_only = ZooBrowser("digits", sources=["samples"], netron=False)
    assert samples_only.search_result is not None
    assert ids(samples_only) == ["digits-mlp", "digits-forest"] and _searches(hub) == 2


def _fetched(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_fetch_updates_the_card_and_enables_the_viewers(hub: list[str]) -> None:
    browser = browser_of()
    browser.source.value = "onnx-zoo"
    assert browser.result is CARDS[1] and browser.graph_button.disabled
    assert "onnx/model.onnx" in browser.detail.value  # the weights file it will fetch
    browser.fetch_button.click()
    card = browser.result
    assert card is not None and card.local_path is not None, browser.status.value
    folder = card.local_path
    assert folder.is_relative_to(Path(os.environ["HF_HOME"]) / "hub")  # the HF cache
    # Only the weights shown (with their external data) and small files, not the whole repo.
    assert _fetched(folder) == ["config.json", "onnx/model.onnx"]
    assert (folder / "onnx" / "model.onnx").read_bytes() == HUB_FILES[
        "onnxmodelzoo/resnet50/onnx/model.onnx"
    ]
    assert browser.results["local"].tolist() == [True]
    assert "✓" in browser.table.value and "Fetched onnxmodelzoo/resnet50" in browser.status.value
    assert not browser.graph_button.disabled and not browser.profile_button.disabled
    assert browser.file.options[0][0] == "onnx/model.onnx"
    browser.all_files.value = True
    browser.fetch_button.click()
    assert _fetched(folder) == [
        "README.md",
        "config.json",
        "onnx/model.onnx",
        "onnx/model_fp16.onnx",
    ]
    assert [label for label, _ in browser.file.options] == [
        "onnx/model.onnx",
        "onnx/model_fp16.onnx",
    ]
    viewer = browser.open_graph()  # the real file, read by the GraphViewer
    assert isinstance(viewer, GraphViewer) and viewer.result is not None
    assert viewer.result.parameter_count == 15
    browser.close()


def test_fetch_error_is_shown() -> None:
    # HF_ENDPOINT is a closed port (conftest): the real fetch fails fast, with a kit error.
    browser = browser_of()
    assert browser.result is CARDS[2]
    browser.fetch_button.click()
    assert "not in the HF cache" in browser.status.value
    assert "unreachable" in browser.status.value and "localml-error" in browser.status.value
    assert browser.result is CARDS[2] and browser.result.local_path is None


def test_fit_on_the_gpu_is_shown_where_there_is_one() -> None:
    big = ModelCard(id="org/twenty-gb", source="hub", format="gguf", size_bytes=20 * GB)
    base = hardware.report()
    gpu = hardware.GPU(0, "test GPU", 80 * GB, 48 * GB, "0")
    with_gpu = dataclasses.replace(base, ram_available_bytes=8 * GB, gpus=(gpu,))
    browser = browser_of([*CARDS, big], machine=with_gpu)
    assert "<th>GPU fit</th>" in browser.table.value
    assert browser.select(big.id) is big
    assert "fit in RAM" in browser.detail.value and "fit on GPU" in browser.detail.value
    assert browser.results.loc[browser.results["id"] == big.id, "gpu_fit"].tolist() == ["fits"]
    browser.fits.value = True  # in RAM or on the GPU
    assert big.id in ids(browser) and "giant/too-big" not in ids(browser)
    browser.fits.value = False
    browser.sort.value = "GPU fit"
    browser.ascending.value = True
    assert ids(browser)[-2:] == ["giant/too-big", "someone/mystery"]  # unknown last
    assert big.id in ids(browser)[:3]
    no_gpu = dataclasses.replace(with_gpu, gpus=())
    plain = browser_of([*CARDS, big], machine=no_gpu)
    assert "GPU fit" not in plain.table.value
    assert plain.select(big.id) is big and "fit on GPU" not in plain.detail.value
    plain.fits.value = True
    assert big.id not in ids(plain)


def test_open_viewer_without_a_local_file_says_fetch_first() -> None:
    browser = browser_of()
    assert browser.open_graph() is None
    assert "fetch it first" in browser.status.value


@pytest.mark.samples
def test_open_a_local_sample_in_graph_viewer_and_profiler(real_home: Path) -> None:
    card = ModelCard(id="digits-mlp", source="samples", local_path=samples.path("digits-mlp"))
    browser = browser_of([card])
    assert not browser.graph_button.disabled and not browser.profile_button.disabled
    browser.graph_button.click()
    viewer = browser.viewer
    assert isinstance(viewer, GraphViewer) and viewer.result is not None
    assert viewer.result.node_count > 0 and browser.opened.children == (viewer,)
    browser.profile_button.click()
    panel = browser.viewer
    assert isinstance(panel, ProfilerPanel) and panel.model.value.endswith("model.onnx")
    browser.close()


@pytest.mark.samples
def test_a_language_model_folder_lists_its_files_but_is_not_profiled(real_home: Path) -> None:
    folder = samples.path("smollm2-135m-instruct", "onnx-int4").parent
    card = ModelCard(id="smollm2", source="samples", local_path=folder)
    browser = browser_of([card])
    names = [label for label, _ in browser.file.options]
    assert any(n.endswith(".gguf") for n in names) and "onnx-int4/model.onnx" in names
    assert browser.profile_button.disabled  # GenAI decoders are profiled with slm
    browser.file.value = next(p for label, p in browser.file.options if label.endswith(".gguf"))
    viewer = browser.open_graph()
    assert isinstance(viewer, GraphViewer) and viewer.result is not None
    assert viewer.result.format == "gguf"
    browser.close()


@pytest.mark.samples
def test_search_the_samples_offline(real_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    browser = ZooBrowser("digits", sources=["samples"], netron=False)
    assert browser.search_result is not None
    found = ids(browser)
    assert found and all("digits" in i.lower() for i in found)
    assert set(browser.results["source"]) == {"samples"}
    assert browser.result is not None and browser.result.is_local
    assert not browser.graph_button.disabled
    # Every source offline: the Hub is skipped and a note says so.
    everything = ZooBrowser("", sources=None, netron=False)
    everything.search_button.click()
    assert everything.search_result.offline
    assert "offline" in everything.notes.value.lower()
    assert "samples" in set(everything.results["source"])


def test_a_clicked_table_row_selects_its_model_and_the_list_moves_the_highlight() -> None:
    browser = browser_of()
    assert browser.table.selected == 0  # the first row is picked at the start
    browser.table.selected = 2  # what a click on the third row sends
    assert browser.result is not None and browser.result.id == table_ids(browser)[2]
    assert browser.picker.value == browser.results.index[2]
    assert browser.result.id in browser.detail.value
    browser.picker.value = browser.results.index[1]  # picking in the list moves the highlight
    assert browser.table.selected == 1
    browser.query.value = "no such model anywhere"
    assert browser.result is None and browser.table.selected == -1
