"""cards_frame and filter_cards: the in-memory table behind search results and the ZooBrowser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from localml_kit import errors, hardware
from localml_kit.zoo._card import ModelCard
from localml_kit.zoo._table import COLUMNS, cards_frame, filter_cards

GB = 10**9


def machine(free: int = 8 * GB, gpu_free: int | None = None) -> hardware.HardwareReport:
    """A fixed machine so fits do not depend on this one's free RAM; a GPU when ``gpu_free``."""
    gpus = ()
    if gpu_free is not None:
        gpus = (hardware.GPU(0, "test GPU", 2 * gpu_free, gpu_free, "0"),)
    return dataclasses.replace(hardware.report(), ram_available_bytes=free, gpus=gpus)


CARDS = (
    ModelCard(
        id="HuggingFaceTB/SmolLM2-135M-Instruct",
        source="hub",
        task="text-generation",
        format="gguf",
        size_bytes=100_000_000,
        downloads=50_000,
        likes=300,
        tags=("conversational", "llama"),
        license="apache-2.0",
    ),
    ModelCard(
        id="onnxmodelzoo/resnet50",
        source="onnx-zoo",
        title="ResNet-50",
        task="image-classification",
        format="onnx",
        size_bytes=100_000_000,
        downloads=900,
        likes=None,
    ),
    ModelCard(
        id="meta-llama/Llama-3.1-70B",
        source="hub",
        task="text-generation",
        format="safetensors",
        size_bytes=140 * GB,
        downloads=2_000_000,
        likes=9_000,
    ),
    ModelCard(
        id="someone/mystery",
        source="local",
        format="onnx",
        size_bytes=None,
        downloads=None,
        local_path=Path("/tmp/mystery"),
    ),
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return cards_frame(CARDS, machine=machine())


def test_frame_has_one_row_per_card_with_its_facts(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(COLUMNS)
    assert frame["id"].tolist() == [c.id for c in CARDS]
    assert frame["card"].tolist() == list(CARDS)
    assert frame["title"].tolist()[:2] == ["HuggingFaceTB/SmolLM2-135M-Instruct", "ResNet-50"]
    assert frame["local"].tolist() == [False, False, False, True]
    assert frame["fit"].tolist() == ["fits", "fits", "does not fit", "unknown"]
    assert frame.loc[0, "memory_bytes"] == CARDS[0].memory_bytes()
    assert frame["size_bytes"].isna().tolist() == [False, False, False, True]


def test_context_length_changes_the_memory_of_language_models() -> None:
    card = dataclasses.replace(
        CARDS[0],
        config={"num_hidden_layers": 30, "num_key_value_heads": 3, "head_dim": 64},
    )
    short = cards_frame([card], context_length=512, machine=machine()).loc[0, "memory_bytes"]
    long = cards_frame([card], context_length=8192, machine=machine()).loc[0, "memory_bytes"]
    assert long - short == 2 * 30 * 3 * 64 * (8192 - 512) * 2


def test_empty_frame_keeps_its_columns() -> None:
    empty = cards_frame([])
    assert list(empty.columns) == list(COLUMNS) and empty.empty
    assert filter_cards(empty, text="x", fits_only=True).empty


def test_text_matches_id_title_and_tags_case_insensitively(frame: pd.DataFrame) -> None:
    assert filter_cards(frame, text="SMOLLM2")["id"].tolist() == [CARDS[0].id]
    assert filter_cards(frame, text="resnet-50")["id"].tolist() == [CARDS[1].id]
    assert filter_cards(frame, text="Conversational")["id"].tolist() == [CARDS[0].id]
    # Every word must match, anywhere; regex characters are plain text.
    assert filter_cards(frame, text="llama instruct")["id"].tolist() == [CARDS[0].id]
    assert filter_cards(frame, text="llama 70b")["id"].tolist() == [CARDS[2].id]
    assert filter_cards(frame, text="(.*")["id"].tolist() == []


def test_filters_on_source_task_format_size_and_fit(frame: pd.DataFrame) -> None:
    assert set(filter_cards(frame, sources="hub")["id"]) == {CARDS[0].id, CARDS[2].id}
    assert set(filter_cards(frame, sources=["onnx-zoo", "local"])["id"]) == {
        CARDS[1].id,
        CARDS[3].id,
    }
    assert filter_cards(frame, task="image-classification")["id"].tolist() == [CARDS[1].id]
    assert set(filter_cards(frame, format="onnx")["id"]) == {CARDS[1].id, CARDS[3].id}
    # Unknown sizes are dropped by a size limit.
    assert set(filter_cards(frame, max_size=GB)["id"]) == {CARDS[0].id, CARDS[1].id}
    assert set(filter_cards(frame, fits_only=True)["id"]) == {CARDS[0].id, CARDS[1].id}
    both = filter_cards(frame, sources="hub", format="gguf", max_size=GB, fits_only=True)
    assert both["id"].tolist() == [CARDS[0].id]


def test_sort_puts_missing_values_last_both_ways(frame: pd.DataFrame) -> None:
    down = filter_cards(frame, sort="downloads")["id"].tolist()
    up = filter_cards(frame, sort="downloads", descending=False)["id"].tolist()
    assert down == [CARDS[2].id, CARDS[0].id, CARDS[1].id, CARDS[3].id]
    assert up == [CARDS[1].id, CARDS[0].id, CARDS[2].id, CARDS[3].id]
    # Ties keep their order (stable); missing sizes last.
    by_size = filter_cards(frame, sort="size_bytes", descending=False)["id"].tolist()
    assert by_size == [CARDS[0].id, CARDS[1].id, CARDS[2].id, CARDS[3].id]
    assert filter_cards(frame, sort="likes")["id"].tolist()[-2:] == [CARDS[1].id, CARDS[3].id]


def test_sort_on_text_and_fit(frame: pd.DataFrame) -> None:
    names = filter_cards(frame, sort="id", descending=False)["id"].tolist()
    assert names == sorted((c.id for c in CARDS), key=str.lower)
    fits = filter_cards(frame, sort="fit", descending=False)["fit"].tolist()
    assert fits == ["fits", "fits", "does not fit", "unknown"]
    tasks = filter_cards(frame, sort="task", descending=True)["task"].tolist()
    assert tasks[:3] == ["text-generation", "text-generation", "image-classification"]
    assert pd.isna(tasks[3])
    titles = filter_cards(frame, sort="title", descending=False)["title"].tolist()
    assert titles == sorted(titles, key=str.lower) and titles[-1] == "someone/mystery"


def test_limit_and_a_list_of_cards(frame: pd.DataFrame) -> None:
    assert len(filter_cards(frame, limit=2)) == 2
    assert filter_cards(list(CARDS), text="mystery")["id"].tolist() == [CARDS[3].id]


def test_filtering_leaves_the_frame_alone(frame: pd.DataFrame) -> None:
    before = frame.copy()
    out = filter_cards(frame, sort="id")
    out.loc[out.index[0], "id"] = "changed"
    pd.testing.assert_frame_equal(frame, before)


def test_unknown_sort_column_says_what_to_use(frame: pd.DataFrame) -> None:
    with pytest.raises(errors.ConfigError, match="pick one of downloads") as info:
        filter_cards(frame, sort="stars")
    assert isinstance(info.value, ValueError)


def test_machine_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hardware.report

    def counting() -> hardware.HardwareReport:
        calls.append(1)
        return real()

    monkeypatch.setattr(hardware, "report", counting)
    cards_frame(CARDS * 10)
    assert len(calls) == 1


def test_gpu_fit_is_judged_against_the_gpus_free_memory() -> None:
    # Needs about 24 GB: too much for 8 GB of RAM, fine on a GPU with 48 GB free.
    big = ModelCard(id="org/twenty-gb", source="hub", size_bytes=20 * GB)
    cards = (*CARDS, big)
    no_gpu = cards_frame(cards, machine=machine())
    assert no_gpu["gpu_fit"].isna().all()
    assert big.gpu_fit(machine=machine()) is None
    assert big.id not in set(filter_cards(no_gpu, fits_only=True)["id"])
    gpu = cards_frame(cards, machine=machine(gpu_free=48 * GB))
    assert gpu["fit"].tolist() == ["fits", "fits", "does not fit", "unknown", "does not fit"]
    assert gpu["gpu_fit"].tolist() == ["fits", "fits", "does not fit", "unknown", "fits"]
    assert big.fit(machine=machine(gpu_free=48 * GB)) == "does not fit"
    assert big.gpu_fit(machine=machine(gpu_free=48 * GB)) == "fits"
    # "Fits my machine": in RAM or on the GPU.
    assert set(filter_cards(gpu, fits_only=True)["id"]) == {CARDS[0].id, CARDS[1].id, big.id}
    by_gpu = filter_cards(gpu, sort="gpu_fit", descending=False)["gpu_fit"].tolist()
    assert by_gpu == ["fits", "fits", "fits", "does not fit", "unknown"]


def test_search_result_frame_hides_the_helper_columns() -> None:
    from localml_kit.zoo import SearchResult

    result = SearchResult(cards=list(CARDS))
    shown = result.frame(machine=machine())
    assert "_text" not in shown.columns and "_id_rank" not in shown.columns
    assert list(shown.columns) == [c for c in COLUMNS if not c.startswith("_")]
    page = result._repr_html_()
    assert "_text" not in page and "_id_rank" not in page and "fit in RAM" in page
    # The frame still filters and sorts (the helpers are rebuilt when missing).
    assert filter_cards(shown, text="resnet", sort="id")["id"].tolist() == [CARDS[1].id]
