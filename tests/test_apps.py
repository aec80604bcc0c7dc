"""Apps: semantic search, OCR and a classifier; the numpy steps between the models; real samples."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import apps, errors, optimize

# --- OCR steps: detection post-processing ------------------------------------------------


def test_components_are_8_connected_and_separate() -> None:
    mask = np.zeros((6, 10), dtype=bool)
    mask[0, 0:3] = True
    mask[1, 3] = True  # touches the first run diagonally: the same region
    mask[4:6, 6:9] = True  # a second region
    found = apps.components(mask)
    assert len(found) == 2
    first, second = sorted(found, key=lambda p: p[:, 0].min())
    assert first[:, 0].min() == 0 and first[:, 0].max() == 3
    assert set(second[:, 1]) == {4, 5}
    assert apps.components(np.zeros((3, 3), dtype=bool)) == []


def test_min_area_rect_finds_a_rotated_rectangle() -> None:
    angle = np.deg2rad(20)
    u, v = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    grid = [a * u + b * v for a in np.linspace(0, 40, 41) for b in np.linspace(0, 10, 11)]
    box, long, short = apps.min_area_rect(np.array(grid) + 50)
    assert long == pytest.approx(40, abs=1e-6) and short == pytest.approx(10, abs=1e-6)
    edge = box[1] - box[0]
    assert np.degrees(np.arctan2(edge[1], edge[0])) == pytest.approx(20, abs=1e-6)
    # Corners run clockwise on screen from the top-left one.
    assert box[0, 0] < box[1, 0] and box[3, 1] > box[0, 1]


def test_text_boxes_grow_scale_and_keep_confident_regions() -> None:
    prob = np.zeros((40, 80), dtype=np.float32)
    prob[8:14, 10:70] = 0.95  # a confident line
    prob[26:32, 10:40] = 0.35  # above the pixel threshold, below the box threshold
    boxes, scores = apps.text_boxes(prob, (80, 160), dilate=False, unclip_ratio=1.5)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.95, abs=1e-6)
    # The core is 59 x 5 (pixel centres); it grows by area * ratio / perimeter on every side.
    d = 59 * 5 * 1.5 / (2 * (59 + 5))
    (x0, y0), (x1, _), (_, y1) = boxes[0][0], boxes[0][1], boxes[0][2]
    assert x0 == pytest.approx(round((10 - d) * 2), abs=1)
    assert x1 == pytest.approx(round((69 + d) * 2), abs=1)
    assert y0 == pytest.approx(round((8 - d) * 2), abs=1)
    assert y1 == pytest.approx(round((13 + d) * 2), abs=1)
    empty, none = apps.text_boxes(np.zeros((1, 1, 8, 8)), (8, 8))  # the detector's own layout
    assert empty.shape == (0, 4, 2) and none == []
    with pytest.raises(errors.InputError, match="one height x width map"):
        apps.text_boxes(np.zeros((2, 1, 8, 8)), (8, 8))


def test_sort_boxes_reads_lines_top_down_and_left_to_right() -> None:
    def box(x: float, y: float) -> list[list[float]]:
        return [[x, y], [x + 20, y], [x + 20, y + 8], [x, y + 8]]

    boxes = np.array([box(50, 42), box(0, 40), box(60, 3), box(5, 0)], dtype=np.float32)
    assert apps.sort_boxes(boxes) == [3, 2, 1, 0]


# --- OCR steps: images, crops, CTC ----------------------------------------------------------


def test_resize_is_bilinear_with_pixel_centres_aligned() -> None:
    row = np.array([[0, 100, 200, 250]], dtype=np.uint8)
    assert apps.resize(row, 1, 2).tolist() == [[50, 225]]
    up = apps.resize(np.array([[0.0, 10.0]], dtype=np.float32), 1, 4)
    assert up.tolist() == [[0.0, 2.5, 7.5, 10.0]]
    img = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    assert np.array_equal(apps.resize(img, 7, 9), img)
    with pytest.raises(errors.InputError):
        apps.resize(img, 0, 4)


def test_crop_box_straightens_and_turns_tall_crops() -> None:
    img = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    box = np.array([[5, 10], [25, 10], [25, 18], [5, 18]], dtype=np.float32)
    assert np.array_equal(apps.crop_box(img, box), img[10:18, 5:25])
    tall = np.array([[5, 2], [10, 2], [10, 28], [5, 28]], dtype=np.float32)
    assert apps.crop_box(img, tall).shape == (5, 26, 3)


def test_as_rgb_accepts_gray_rgba_float_and_refuses_other_shapes() -> None:
    assert apps.as_rgb(np.zeros((4, 5), dtype=np.uint8)).shape == (4, 5, 3)
    assert apps.as_rgb(np.zeros((4, 5, 4), dtype=np.uint8)).shape == (4, 5, 3)
    assert apps.as_rgb(np.ones((2, 2, 3), dtype=np.float32)).max() == 255
    with pytest.raises(errors.InputError):
        apps.as_rgb(np.zeros((2, 2, 2, 2)))
    with pytest.raises(errors.InputError, match="no image"):
        apps.as_rgb("/nonexistent/page.png")


def test_ctc_greedy_merges_repeats_and_drops_blanks() -> None:
    chars = ["", "a", "b", " "]
    steps = np.eye(4, dtype=np.float32)[[1, 1, 0, 1, 2, 2, 3, 0, 0, 2]] * 0.8
    steps[:, 0] += 0.01  # the blank never wins where another class is at 0.8
    (text, score), (empty, zero) = apps.ctc_greedy(
        np.stack([steps, np.eye(4, dtype=np.float32)[[0] * 10]]), chars
    )
    assert text == "aab b" and score == pytest.approx(0.8, abs=1e-6)
    assert (empty, zero) == ("", 0.0)
    with pytest.raises(errors.InputError, match="classes"):
        apps.ctc_greedy(steps, chars[:3])


def test_recognizer_characters_add_blank_and_space_and_check_the_count() -> None:
    assert apps.recognizer_characters({"character": "x\ny"}, 4) == ["", "x", "y", " "]
    with pytest.raises(errors.ModelFormatError, match="do not belong together"):
        apps.recognizer_characters({"character": "x\ny"}, 7)
    with pytest.raises(errors.ModelFormatError, match="no 'character' list"):
        apps.recognizer_characters({})


def test_render_text_draws_lines_with_a_shipped_font(tmp_path: Path) -> None:
    one = apps.render_text("Hello", size=24)
    two = apps.render_text(["Hello", "world"], size=24, font="serif")
    assert one.dtype == np.uint8 and one.shape[2] == 3
    assert two.shape[0] > one.shape[0]
    assert (one < 128).any() and one[0, 0].tolist() == [255, 255, 255]
    assert apps.font_path("mono").is_file()
    with pytest.raises(errors.InputError, match="no font"):
        apps.render_text("x", font=str(tmp_path / "missing.ttf"))
    with pytest.raises(errors.InputError):
        apps.render_text(["", " "])


# --- sessions, and an index over a tiny encoder built here ----------------------------------

WORDS = ["[PAD]", "[UNK]", "cat", "kitten", "dog", "puppy", "stock", "market", "the"]


def tiny_encoder(folder: Path) -> Path:
    """input_ids, attention_mask [batch, seq] -> token vectors [batch, seq, 3]; a tokenizer.json."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    table = np.zeros((len(WORDS), 3), np.float32)
    table[WORDS.index("cat")] = table[WORDS.index("kitten")] = [1, 0.1, 0]
    table[WORDS.index("dog")] = table[WORDS.index("puppy")] = [0.1, 1, 0]
    table[WORDS.index("stock")] = table[WORDS.index("market")] = [0, 0.1, 1]
    table[WORDS.index("the")] = [0.05, 0.05, 0.05]
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["E", "input_ids"], ["last_hidden_state"]),
            helper.make_node("Identity", ["attention_mask"], ["unused"]),
        ],
        "tiny-encoder",
        [
            helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
            for n in ("input_ids", "attention_mask")
        ],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "seq", 3]
            ),
            helper.make_tensor_value_info("unused", TensorProto.INT64, ["batch", "seq"]),
        ],
        [numpy_helper.from_array(table, "E")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "encoder.onnx"))
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    return folder / "encoder.onnx"


TEXTS = ["the cat", "the dog", "the stock market", "kitten", "puppy"]


@pytest.fixture
def encoder(tmp_path: Path) -> Path:
    return tiny_encoder(tmp_path / "enc")


def test_open_session_sleeps_threads_and_names_missing_providers(encoder: Path) -> None:
    session = apps.open_session(encoder, threads=1)
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(errors.ProviderUnavailableError, match="onnxruntime-gpu"):
        apps.open_session(encoder, provider="cuda")
    bad = encoder.parent / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(errors.ModelFormatError):
        apps.open_session(bad)
    with pytest.raises(errors.ModelNotFoundError):
        apps.open_session(42)


def test_index_mean_pools_token_vectors_and_ranks_by_cosine(encoder: Path) -> None:
    index = apps.SemanticIndex.build(TEXTS, encoder, sources=list("abcde"), batch_size=2)
    assert len(index) == 5 and index.vectors.shape == (5, 3)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1)
    hits = index.search("cat", k=2)
    assert list(hits.columns) == ["rank", "score", "text", "source", "id"]
    assert set(hits["text"]) == {"the cat", "kitten"} and hits["rank"].tolist() == [1, 2]
    assert hits["score"].is_monotonic_decreasing and hits.attrs["ms"] > 0
    assert index.search("market", k=1)["source"].tolist() == ["c"]
    assert len(index.search("puppy", k=50)) == 5  # k is capped at the number of texts
    with pytest.raises(errors.InputError, match="empty one"):
        index.search("  ")
    with pytest.raises(errors.ConfigError):
        index.search("cat", k=0)
    with pytest.raises(errors.InputError, match="one source per text"):
        index.add(["x"], ["a", "b"])


def test_threads_share_one_session_and_agree_with_serial_search(encoder: Path) -> None:
    index = apps.SemanticIndex.build(TEXTS * 4, encoder)
    queries = ["cat", "dog", "market", "kitten puppy"] * 5
    serial = index.search_many(queries, k=3)
    calls: list[str] = []
    real_run = index.session.run

    def counting_run(*args: object, **kwargs: object) -> object:
        calls.append(threading.current_thread().name)
        return real_run(*args, **kwargs)

    index.session = type("Spy", (), {"run": staticmethod(counting_run)})()
    threaded = index.search_many(queries, k=3, workers=4)
    assert [f["id"].tolist() for f in threaded] == [f["id"].tolist() for f in serial]
    assert len(calls) == len(queries) and len(set(calls)) > 1


def test_index_saves_and_loads_and_refuses_another_width(encoder: Path, tmp_path: Path) -> None:
    index = apps.SemanticIndex.build(TEXTS, encoder, sources=list("abcde"))
    path = index.to_npz(tmp_path / "index.npz")
    again = apps.SemanticIndex.from_npz(path, encoder)
    assert again.texts == index.texts and again.sources == index.sources
    assert again.search("dog", k=2)["id"].tolist() == index.search("dog", k=2)["id"].tolist()
    np.savez(tmp_path / "wide.npz", vectors=np.zeros((1, 7), np.float32), texts=["x"], sources=[""])
    with pytest.raises(errors.InputError, match="7-d vectors"):
        apps.SemanticIndex.from_npz(tmp_path / "wide.npz", encoder)


def test_agreement_of_an_index_with_itself_is_complete(encoder: Path) -> None:
    a = apps.SemanticIndex.build(TEXTS, encoder)
    b = apps.SemanticIndex.build(TEXTS, encoder)
    table = apps.topk_agreement(a, b, ["cat", "dog", "market"], k=2)
    assert table["overlap"].tolist() == [1.0, 1.0, 1.0] and table["same_top1"].all()
    with pytest.raises(errors.InputError, match="different texts"):
        apps.topk_agreement(a, apps.SemanticIndex.build(TEXTS[:2], encoder), ["cat"])


def test_an_encoder_without_a_tokenizer_says_what_to_give(tmp_path: Path, encoder: Path) -> None:
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "model.onnx").write_bytes(encoder.read_bytes())
    with pytest.raises(errors.InputError, match="tokenizer="):
        apps.SemanticIndex(lone / "model.onnx")
    assert (
        len(apps.SemanticIndex.build(["cat"], lone / "model.onnx", tokenizer=encoder.parent)) == 1
    )


def test_python_docs_is_a_corpus_of_prose_paragraphs() -> None:
    docs = apps.python_docs()
    assert list(docs.columns) == ["topic", "text"] and len(docs) > 100
    assert {"for", "try", "lambda"} <= set(docs["topic"])
    assert docs.groupby("topic").size().max() <= 3
    assert not docs["text"].str.contains("\n").any()
    assert len(apps.EXAMPLE_QUERIES) == 20


# --- the real samples ---------------------------------------------------------------------------

# Lines rendered with the fonts matplotlib ships; each read exactly on this kind of machine
# with unclip ratios from 1.8 to 2.5 (the pipeline's default is 2.0), so not a borderline case.
OCR_PAGES = [
    (["Hello, world."], "sans", 32),
    (["Paid by card on 2026-03-14", "Total: 12.50 EUR"], "sans", 24),
    (["ONNX Runtime runs models on your own machine.", "No cloud service is needed."], "serif", 28),
    (["def read(image): return text"], "mono", 28),
    (["Invoice No. 4711", "Due date: 30 April 2026", "Amount due: $1,234.00"], "sans-bold", 36),
    (["small print at sixteen pixels"], "sans", 16),
]


@pytest.fixture(scope="module")
def ocr() -> apps.OcrPipeline:
    return apps.OcrPipeline()


@pytest.mark.samples
@pytest.mark.parametrize(("lines", "font", "size"), OCR_PAGES, ids=lambda v: str(v)[:20])
def test_ocr_reads_rendered_text_exactly(
    real_home: Path, ocr: apps.OcrPipeline, lines: list[str], font: str, size: int
) -> None:
    page = apps.render_text(lines, font=font, size=size)
    result = ocr.read(page)
    assert result.texts == lines, result.frame()
    assert result.boxes.shape == (len(lines), 4, 2) and result.angles == [0] * len(lines)
    assert set(result.ms) == {"detect", "direction", "recognize", "total"}
    assert all(s > 0.8 for s in result.scores)
    # Every box lies on the page, lines top to bottom.
    assert (result.boxes >= 0).all() and (result.boxes[:, :, 0] < page.shape[1]).all()
    assert np.all(np.diff(result.boxes[:, 0, 1]) > 0)


@pytest.mark.samples
def test_ocr_turns_an_upside_down_page_and_reads_files(
    real_home: Path, ocr: apps.OcrPipeline, tmp_path: Path
) -> None:
    from PIL import Image

    lines = ["Upside down is fine too."]
    page = apps.render_text(lines, size=32)
    result = ocr.read(np.ascontiguousarray(page[::-1, ::-1]))
    assert result.texts == lines and result.angles == [180]
    Image.fromarray(page).save(tmp_path / "page.png")
    assert ocr.read(tmp_path / "page.png").texts == lines
    assert ocr.read(np.full((64, 64, 3), 255, np.uint8)).texts == []
    frame = result.frame()
    assert frame.columns.tolist() == [
        "line",
        "text",
        "score",
        "angle",
        "left",
        "top",
        "right",
        "bottom",
    ]
    fig = result.plot(page)
    assert len(fig.axes[0].patches) == 1
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.samples
def test_ocr_refuses_bad_settings(real_home: Path) -> None:
    with pytest.raises(errors.ConfigError, match="limit_type"):
        apps.OcrPipeline(limit_type="middle")
    with pytest.raises(errors.ConfigError, match="limit_side_len"):
        apps.OcrPipeline(limit_side_len=8)


@pytest.fixture(scope="module")
def docs() -> pd.DataFrame:
    return apps.python_docs()


@pytest.mark.samples
def test_semantic_search_over_python_docs_finds_sensible_neighbours(
    real_home: Path, docs: pd.DataFrame
) -> None:
    index = apps.SemanticIndex.build(docs["text"], sources=docs["topic"], threads=1)
    expected = {
        "write my own context manager for the with statement": {"context-managers", "with"},
        "What does the yield keyword do in a function?": {"yield"},
        "import a module from a package": {"import"},
        "remove a key from a dictionary": {"typesmapping", "dict"},
        "run coroutines with async and await": {"async", "await"},
        "stop a while loop early": {"break", "while", "continue"},
    }
    for query, topics in expected.items():
        hits = index.search(query, k=3)
        assert set(hits["source"]) & topics, (query, hits[["source", "text"]])
        assert hits["score"].iloc[0] > 0.4


@pytest.mark.samples
def test_int8_index_agrees_with_fp32_on_top5(real_home: Path, docs: pd.DataFrame) -> None:
    fp32 = apps.SemanticIndex.build(docs["text"], threads=1)
    variant = optimize.quantize_int8("all-minilm-l6-v2", per_channel=True)
    int8 = apps.SemanticIndex.build(docs["text"], variant, threads=1)
    table = apps.topk_agreement(fp32, int8, apps.EXAMPLE_QUERIES, k=5)
    assert len(table) == 20
    # Measured on this kind of machine: 0.92 top-5 agreement, 80% the same first result.
    assert table["overlap"].mean() >= 0.8, table
    assert table["same_top1"].mean() >= 0.6, table


@pytest.mark.samples
@pytest.mark.parametrize("name", ["digits-mlp", "digits-forest"])
def test_digits_classifier_serves_the_test_set(real_home: Path, name: str) -> None:
    clf = apps.Classifier(name)
    x, y = clf.test_set()
    result = clf.evaluate(x, y)
    assert result.rows == 450 and result.accuracy > 0.9
    assert result.confusion.to_numpy().sum() == 450 and result.ms_per_row > 0
    one = clf.predict(x[0].reshape(8, 8))
    assert one["label"].tolist() == [int(y[0])] or one["score"].iloc[0] < 0.9
    assert len(clf.predict(x[:5])) == 5
    with pytest.raises(errors.InputError, match="rows of 64"):
        clf.predict(np.zeros((2, 10)))
