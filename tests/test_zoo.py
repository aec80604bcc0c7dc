"""The zoo: every source against real parts (a local Hub server, real stores on disk, the real SmolLM2)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import psutil
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import errors, hardware, samples, zoo
from localml_kit._download import sha256_file
from localml_kit.cli import main
from localml_kit.zoo import _facts
from tests.hubserver import model_record, serve_hub, serve_trickle

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_PARAMETERS = 134_515_008
XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"


def _tiny_onnx() -> bytes:
    """A real ONNX model: y = x @ W + b with 4x3 + 3 = 15 parameters, opset 17."""
    w = numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "W")
    b = numpy_helper.from_array(np.zeros((3,), dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


FILES = {
    "HuggingFaceTB/SmolLM2-135M-Instruct/model.safetensors": b"s" * 2000,
    "HuggingFaceTB/SmolLM2-135M-Instruct/config.json": b"{}",
    "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q4_k_m.gguf": b"g" * 1050,
    "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q8_0.gguf": b"g" * 1450,
    "onnx-community/SmolLM2-135M-ONNX/onnx/model.onnx": b"o" * 5000,
    "onnx-community/SmolLM2-135M-ONNX/onnx/model_q4.onnx": b"o" * 900,
    "sentence-transformers/all-MiniLM-L6-v2/onnx/model.onnx": b"m" * 900,
    "sentence-transformers/all-MiniLM-L6-v2/model.safetensors": b"m" * 880,
    "onnxmodelzoo/resnet50_Opset16/resnet50_Opset16.onnx": b"r" * 1000,
    "org/tiny-onnx/model.onnx": _tiny_onnx(),
    "org/tiny-onnx/config.json": json.dumps(
        {"model_type": "tiny", "num_hidden_layers": 1}
    ).encode(),
    "org/tiny-onnx/README.md": b"# tiny\n",
    "org/tiny-onnx/extra/weights.bin": b"b" * 64,
}
MODELS = [
    model_record(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        downloads=900,
        likes=50,
        pipeline_tag="text-generation",
        library_name="transformers",
        tags=["transformers", "safetensors", "llama", "text-generation", "license:apache-2.0"],
        safetensors={"parameters": {"BF16": SMOLLM2_PARAMETERS}, "total": SMOLLM2_PARAMETERS},
        cardData={"license": "apache-2.0", "language": ["en"]},
        config={"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
    ),
    model_record(
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        downloads=300,
        likes=70,
        pipeline_tag="text-generation",
        library_name="gguf",
        tags=["gguf", "llama", "text-generation", "license:apache-2.0"],
        gguf={"total": SMOLLM2_PARAMETERS, "architecture": "llama", "context_length": 8192},
    ),
    model_record(
        "onnx-community/SmolLM2-135M-ONNX",
        downloads=100,
        likes=5,
        pipeline_tag="text-generation",
        library_name="transformers.js",
        tags=["transformers.js", "onnx", "llama", "license:apache-2.0"],
    ),
    model_record(
        "sentence-transformers/all-MiniLM-L6-v2",
        downloads=5000,
        likes=3000,
        pipeline_tag="sentence-similarity",
        library_name="sentence-transformers",
        tags=["sentence-transformers", "onnx", "safetensors", "license:apache-2.0"],
    ),
    model_record(
        "onnxmodelzoo/resnet50_Opset16",
        downloads=20,
        pipeline_tag="image-classification",
        library_name="onnx",
        tags=["onnx", "vision", "license:apache-2.0"],
    ),
    model_record("org/tiny-onnx", downloads=1, library_name="onnx", tags=["onnx", "license:mit"]),
]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The local Hub with MODELS and FILES; HF_ENDPOINT points at it. Yields the requests seen."""
    with serve_hub(FILES, MODELS) as (endpoint, requests):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        yield requests


def _ids(cards: list[zoo.ModelCard]) -> list[str]:
    return [c.id for c in cards]


def _api_requests(requests: list[str]) -> list[str]:
    return [r for r in requests if r.startswith("GET /api/models")]


# ---- the Hub --------------------------------------------------------------------------------


def test_hub_search_filters_on_the_server(hub: list[str]) -> None:
    result = zoo.search("smollm2", sources=["hub"])
    assert result.notes == [] and result.offline is False
    assert _ids(result.cards) == [
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        "onnx-community/SmolLM2-135M-ONNX",
    ]
    assert _ids(zoo.search("smollm2", sources=["hub"], format="gguf").cards) == [
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    ]
    assert "filter=gguf" in _api_requests(hub)[-1]
    assert _ids(zoo.search(sources=["hub"], task="sentence-similarity").cards) == [
        "sentence-transformers/all-MiniLM-L6-v2"
    ]
    assert "pipeline_tag=sentence-similarity" in _api_requests(hub)[-1]
    assert _ids(zoo.search("smollm2", sources=["hub"], sort="likes", limit=2).cards) == [
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ]
    assert "sort=likes" in _api_requests(hub)[-1] and "limit=2" in _api_requests(hub)[-1]


def test_hub_listing_cards_read_format_quantization_parameters_licence(hub: list[str]) -> None:
    cards = {c.id: c for c in zoo.search("smollm2", sources=["hub"]).cards}
    st = cards["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert (st.format, st.parameters, st.license, st.task) == (
        "safetensors",
        SMOLLM2_PARAMETERS,
        "apache-2.0",
        "text-generation",
    )
    assert st.downloads == 900 and st.likes == 50
    gguf = cards["HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"]
    assert (gguf.format, gguf.quantization, gguf.parameters) == (
        "gguf",
        "Q4_K_M",
        SMOLLM2_PARAMETERS,
    )
    assert gguf.config == {"architecture": "llama", "context_length": 8192}
    assert gguf.extra["main_file"] == "smollm2-135m-instruct-q4_k_m.gguf"
    assert gguf.size_bytes is None  # listings carry no sizes; the card does
    onnx_card = cards["onnx-community/SmolLM2-135M-ONNX"]
    assert (onnx_card.format, onnx_card.extra["main_file"]) == ("onnx", "onnx/model.onnx")
    # A repo with ONNX and safetensors is shown in the format asked for.
    minilm = zoo.search("minilm", sources=["hub"], format="safetensors").cards
    assert [(c.id, c.format) for c in minilm] == [
        ("sentence-transformers/all-MiniLM-L6-v2", "safetensors")
    ]


def test_hub_card_has_every_file_with_its_size(hub: list[str]) -> None:
    card = zoo.card("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
    assert {f.name: f.size for f in card.files} == {
        "smollm2-135m-instruct-q4_k_m.gguf": 1050,
        "smollm2-135m-instruct-q8_0.gguf": 1450,
    }
    assert card.size_bytes == 1050 and card.quantization == "Q4_K_M"
    assert (card.memory_bytes(2048) or 0) > 1050
    assert "GET /api/models/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF?blobs=true" in hub
    st = zoo.card("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert st.size_bytes == 2000 and st.license == "apache-2.0"
    assert st.config == {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}


def test_hub_fetch_with_patterns_lands_in_the_cache_source(hub: list[str]) -> None:
    folder = zoo.fetch("org/tiny-onnx", allow_patterns=["*.onnx", "*.json"], progress=False)
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["config.json", "model.onnx"]
    assert (folder / "model.onnx").read_bytes() == FILES["org/tiny-onnx/model.onnx"]
    assert folder.is_relative_to(Path(os.environ["HF_HOME"]) / "hub")
    cached = zoo.search("tiny", sources=["cache"]).cards
    assert _ids(cached) == ["org/tiny-onnx"]
    card = cached[0]
    assert card.local_path == folder and card.format == "onnx"
    assert card.parameters == 15 and card.extra["main_file"] == "model.onnx"
    assert card.config == {"model_type": "tiny", "num_hidden_layers": 1}
    assert zoo.fetch(card) == folder  # a cache card is already here
    with pytest.raises(errors.ModelNotFoundError, match="no file of org/tiny-onnx matches"):
        zoo.fetch("org/tiny-onnx", allow_patterns=["*.gguf"], progress=False)


def test_hub_fetch_offline_returns_the_cached_copy_without_a_request(
    hub: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = zoo.fetch("org/tiny-onnx", allow_patterns=["*.onnx"], progress=False)
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    before = len(hub)
    assert zoo.fetch("org/tiny-onnx", allow_patterns=["*.onnx"], progress=False) == folder
    with pytest.raises(errors.OfflineError, match="offline mode is on"):
        zoo.fetch("HuggingFaceTB/SmolLM2-135M-Instruct", progress=False)
    assert len(hub) == before


def test_onnx_zoo_lists_the_onnxmodelzoo_organisation(hub: list[str]) -> None:
    cards = zoo.search(sources=["onnx-zoo"]).cards
    assert [(c.id, c.source, c.format) for c in cards] == [
        ("onnxmodelzoo/resnet50_Opset16", "onnx-zoo", "onnx")
    ]
    assert "author=onnxmodelzoo" in _api_requests(hub)[-1]
    assert zoo.search("resnet", sources=["onnx-zoo"], format="gguf").cards == []


def test_offline_mode_shows_local_sources_and_sends_nothing(
    hub: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    result = zoo.search("digits")
    assert result.offline is True
    assert len(result.notes) == 1 and result.notes[0].startswith("offline mode is on")
    assert result.notes[0].endswith("showing local sources")
    assert {c.source for c in result.cards} == {"samples"}
    with pytest.raises(errors.OfflineError):
        zoo.card("org/tiny-onnx")
    assert hub == []


def test_unreachable_hub_is_one_quick_note() -> None:
    start = time.perf_counter()
    result = zoo.search("digits", sources=["hub", "onnx-zoo", "samples"])
    assert time.perf_counter() - start < 5
    assert result.offline is True
    assert result.notes == [
        "Hub unreachable (127.0.0.1:9 unreachable (Connection refused)): showing local sources"
    ]
    assert _ids(result.cards) == ["digits-mlp", "digits-forest"]
    with pytest.raises(errors.DownloadError, match="unreachable"):
        zoo.card("org/tiny-onnx")
    with pytest.raises(errors.DownloadError, match="not in the HF cache"):
        zoo.fetch("org/tiny-onnx", progress=False)


def test_a_hub_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        start = time.perf_counter()
        with pytest.raises(
            errors.HubTimeoutError, match=r"did not answer the search within 0\.5 s"
        ):
            zoo.source("hub", timeout=0.5).search("x")
        with pytest.raises(errors.HubTimeoutError, match="did not send the card of org/x within"):
            zoo.source("hub", timeout=0.5).card("org/x")
        with pytest.raises(TimeoutError, match=r"did not send the card of org/x within 0\.5 s"):
            zoo.source("hub", timeout=0.5).fetch("org/x", progress=False)
        assert time.perf_counter() - start < 6


class _StallsOnFiles(BaseHTTPRequestHandler):
    """Answers the model's card at once, then never answers a file request."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if not self.path.startswith("/api/models/org/x"):
            time.sleep(30)
            return
        if "/tree/" in self.path:
            answer: object = [{"type": "file", "path": "model.onnx", "size": 10, "oid": "0" * 40}]
        else:
            answer = model_record("org/x", siblings=[{"rfilename": "model.onnx"}])
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


def test_the_hub_deadline_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert zoo.source("hub").deadline_s == 20.0
    monkeypatch.setenv("LOCALML_HUB_TIMEOUT", "2.5")
    assert zoo.source("hub").deadline_s == 2.5 and zoo.source("onnx-zoo").deadline_s == 2.5
    assert zoo.source("hub", timeout=7).deadline_s == 7
    for bad in ("soon", "0", "-3", "nan", "inf"):
        monkeypatch.setenv("LOCALML_HUB_TIMEOUT", bad)
        with pytest.raises(errors.ConfigError, match="LOCALML_HUB_TIMEOUT"):
            zoo.source("hub").deadline_s  # noqa: B018


def _kit_threads(before: set[threading.Thread]) -> list[str]:
    """Threads alive now that were not before, other than the test servers' request handlers."""
    return [
        t.name
        for t in threading.enumerate()
        if t not in before and not t.name.endswith("(process_request_thread)")
    ]


def _children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.is_running()]


def test_a_hub_that_stalls_mid_fetch_times_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fetch whose file requests stall (and would retry for minutes) gives up after stall_s.

    huggingface_hub's download threads used to outlive this (and, once the server
    was gone, log "Connection refused ... Retrying" into a closed stream after the
    test run, and hold the interpreter's exit for ~45 s). Now nothing of the fetch
    is left: no thread, no child process, no log line afterwards.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StallsOnFiles)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    before = set(threading.enumerate())
    children = _children()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        start = time.perf_counter()
        with pytest.raises(errors.HubTimeoutError, match="stopped answering: nothing arrived"):
            zoo.source("hub", timeout=3, stall_s=2).fetch("org/x", progress=False)
        assert time.perf_counter() - start < 6
        assert _kit_threads(before) == []
        assert _children() == children
    finally:
        server.shutdown()
        server.server_close()
    with caplog.at_level("DEBUG"):
        time.sleep(1.2)  # past huggingface_hub's first retry wait, with the server gone
    assert [r for r in caplog.records if r.name.startswith("huggingface_hub")] == []
    assert _kit_threads(before) == []


def test_a_fetch_leaves_no_thread_or_process_behind(hub: list[str]) -> None:
    before = set(threading.enumerate())
    children = _children()
    folder = zoo.fetch("org/tiny-onnx", allow_patterns=["*.onnx"], progress=False)
    assert (folder / "model.onnx").is_file()
    with pytest.raises(errors.ModelNotFoundError):
        zoo.fetch("org/missing", progress=False)
    assert _kit_threads(before) == [] and _children() == children
    assert [t.name for t in threading.enumerate() if not t.daemon] == ["MainThread"]


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_a_trickling_hub_is_given_up_on_at_the_deadline(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hub sending a byte every 0.2 s never trips a per-read timeout; the total deadline stops it.

    search then shows the local sources with one note (the onnx-zoo source, the same
    Hub, is not asked again), as for an unreachable Hub; card and fetch raise.
    """
    monkeypatch.setenv("LOCALML_HUB_TIMEOUT", "1.5")
    before = set(threading.enumerate())
    children = _children()
    with serve_trickle(mode, interval_s=0.2) as (endpoint, requests):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        start = time.perf_counter()
        result = zoo.search("digits", sources=["hub", "onnx-zoo", "samples"])
        took = time.perf_counter() - start
        assert took < 1.5 + 1.0, f"search took {took:.1f} s"
        assert _ids(result.cards) == ["digits-mlp", "digits-forest"]
        assert result.notes == ["Hub unreachable (no answer within 1.5 s): showing local sources"]
        assert result.offline is True
        assert len(requests) == 1 and requests[0].startswith("GET /api/models?")
        for call in (lambda: zoo.card("org/x"), lambda: zoo.fetch("org/x", progress=False)):
            start = time.perf_counter()
            with pytest.raises(errors.HubTimeoutError, match=r"within 1\.5 s"):
                call()
            assert time.perf_counter() - start < 1.5 + 1.0
    assert _kit_threads(before) == [] and _children() == children


class _Unavailable(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_failing_source_is_a_note_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        result = zoo.search("digits", sources=["hub", "samples"])
    finally:
        server.shutdown()
        server.server_close()
    assert _ids(result.cards) == ["digits-mlp", "digits-forest"]
    assert result.offline is False and len(result.notes) == 1
    assert result.notes[0].startswith("hub: the Hub at http://127.0.0.1:")
    assert "did not answer the search (HTTP 503 Service Unavailable)" in result.notes[0]


def test_a_damaged_store_entry_still_lists_with_its_reason() -> None:
    root = Path(os.environ["OLLAMA_MODELS"])
    manifest = root / "manifests/registry.ollama.ai/library/ghost/latest"
    manifest.parent.mkdir(parents=True)
    layer = {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "0" * 64}
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [{**layer, "size": 10}]}))
    result = zoo.search("ghost", sources=["ollama"])
    assert _ids(result.cards) == ["ghost:latest"] and result.notes == []
    assert "is missing" in result.cards[0].extra["error"]


def test_unknown_hub_id_is_a_kit_error(hub: list[str]) -> None:
    with pytest.raises(
        errors.ModelNotFoundError, match="no model 'org/missing' on the Hub"
    ) as info:
        zoo.card("org/missing")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(errors.ModelNotFoundError):
        zoo.fetch("org/missing", progress=False)


# ---- stores on disk, with the real SmolLM2 --------------------------------------------------


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        try:
            dest.symlink_to(src)
        except OSError:
            shutil.copyfile(src, dest)


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / f"sha256-{digest}").write_bytes(data)
    return f"sha256:{digest}"


def _ollama_store(root: Path, gguf: Path) -> Path:
    """An Ollama store as `ollama pull smollm2:135m` leaves it, holding the real GGUF."""
    model_digest = f"sha256:{sha256_file(gguf)}"
    _link(gguf, root / "blobs" / model_digest.replace(":", "-"))
    license_digest = _blob(
        root, b"\n                                 Apache License\nVersion 2.0\n"
    )
    image = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"]}
    image |= {"model_type": "135M", "file_type": "Q4_1"}
    config_bytes = json.dumps(image).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": _blob(root, config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": model_digest,
                "size": gguf.stat().st_size,
            },
            {
                "mediaType": "application/vnd.ollama.image.license",
                "digest": license_digest,
                "size": 60,
            },
        ],
    }
    path = root / "manifests/registry.ollama.ai/library/smollm2/135m"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest))
    other = root / "manifests/registry.ollama.ai/someone/smol-copy/q4"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps(manifest))
    return root / "blobs" / model_digest.replace(":", "-")


def _machine(free: int) -> hardware.HardwareReport:
    return dataclasses.replace(hardware.report(), ram_available_bytes=free)


def _assert_real_smollm2(card: zoo.ModelCard) -> None:
    assert card.format == "gguf" and card.task == "text-generation"
    assert card.quantization == "Q4_1"
    assert card.parameters == SMOLLM2_PARAMETERS
    assert card.size_bytes == 98_362_432
    assert card.config["architecture"] == "llama"
    assert card.config["context_length"] == 8192
    assert (
        card.config["block_count"],
        card.config["head_count"],
        card.config["head_count_kv"],
    ) == (
        30,
        9,
        3,
    )
    assert card.config["embedding_length"] == 576
    # weights x 1.2 + 64 MiB, plus fp16 keys and values: 2 x 30 layers x 3 kv heads x 64 x 4096 x 2 B.
    kv = 2 * 30 * 3 * (576 // 9) * 4096 * 2
    assert card.memory_bytes(4096) == int(98_362_432 * 1.2 + 64 * 2**20) + kv
    assert card.memory_bytes(16384) == int(98_362_432 * 1.2 + 64 * 2**20) + kv * 2  # capped at 8192
    assert card.fit(4096, _machine(2**30)) == "fits"
    assert card.fit(4096, _machine(400 * 10**6)) == "tight"
    assert card.fit(4096, _machine(200 * 10**6)) == "does not fit"


def test_ollama_store_reads_the_real_smollm2(real_home: Path) -> None:
    root = Path(os.environ["OLLAMA_MODELS"])
    blob = _ollama_store(root, samples.path(SMOLLM2, "gguf"))
    cards = zoo.search("smol", sources=["ollama"]).cards
    assert _ids(cards) == ["smollm2:135m", "someone/smol-copy:q4"]
    card = cards[0]
    _assert_real_smollm2(card)
    assert card.local_path == blob and card.license == "Apache License"
    assert card.tags == ("llama",) and card.extra["parameter_size"] == "135M"
    assert zoo.fetch("smollm2:135m", source="ollama") == blob
    assert zoo.card("someone/smol-copy:q4", source="ollama").local_path == blob
    with pytest.raises(errors.ModelNotFoundError, match="ollama pull qwen3:latest"):
        zoo.fetch("qwen3", source="ollama")


def test_lmstudio_folder_reads_the_real_smollm2(real_home: Path) -> None:
    root = Path(os.environ["LOCALML_LMSTUDIO_MODELS"])
    repo = root / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF"
    _link(samples.path(SMOLLM2, "gguf"), repo / "SmolLM2-135M-Instruct.Q4_1.gguf")
    (repo / "mmproj-model-f16.gguf").write_bytes(b"GGUF")  # a projector: not a model card
    cards = zoo.search(sources=["lmstudio"], format="gguf").cards
    assert _ids(cards) == [
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf"
    ]
    card = cards[0]
    _assert_real_smollm2(card)
    assert card.author == "HuggingFaceTB" and card.license == "apache-2.0"
    assert card.local_path == repo / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert zoo.search("instruct", sources=["lmstudio"], task="feature-extraction").cards == []


def test_local_folders_summarise_onnx_and_gguf(real_home: Path, tmp_path: Path) -> None:
    models = Path(os.environ["LOCALML_MODEL_DIRS"])
    (models / "nested").mkdir(parents=True)
    (models / "nested" / "tiny.onnx").write_bytes(_tiny_onnx())
    (models / ".hidden").mkdir()
    (models / ".hidden" / "skipped.onnx").write_bytes(_tiny_onnx())
    _link(samples.path(SMOLLM2, "gguf"), models / "smol.gguf")
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")  # truncated header
    cards = {Path(c.id).name: c for c in zoo.search(sources=["local"]).cards}
    assert sorted(cards) == ["broken.gguf", "smol.gguf", "tiny.onnx"]
    tiny = cards["tiny.onnx"]
    assert (tiny.format, tiny.parameters, tiny.quantization) == ("onnx", 15, "fp32")
    assert tiny.extra["opsets"] == {"ai.onnx": 17} and tiny.extra["inputs"] == ["x"]
    _assert_real_smollm2(cards["smol.gguf"])
    assert "truncated" in cards["broken.gguf"].extra["error"]
    outside = tmp_path / "elsewhere" / "one.onnx"
    outside.parent.mkdir()
    outside.write_bytes(_tiny_onnx())
    assert zoo.card(str(outside), source="local").parameters == 15
    assert zoo.fetch(str(outside), source="local") == outside.resolve()


def test_samples_source_without_and_with_the_built_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = zoo.search("digits", sources=["samples"]).cards
    assert _ids(fresh) == ["digits-mlp", "digits-forest"]
    assert all(c.local_path is None and c.extra["ready"] is False for c in fresh)
    assert fresh[0].task == "tabular-classification" and fresh[0].license == "BSD-3-Clause"


def test_samples_source_ready_ones_carry_their_path(real_home: Path) -> None:
    card = zoo.card(SMOLLM2, source="samples")
    assert card.local_path == samples.path(SMOLLM2)
    assert (card.format, card.quantization) == ("onnx", "Q4_1")  # the GGUF blocks, carried
    assert card.config["num_hidden_layers"] == 30 and card.config["num_key_value_heads"] == 3
    assert (card.memory_bytes(4096) or 0) > (card.memory_bytes(128) or 0)  # the KV cache counts
    assert zoo.fetch(card) == samples.path(SMOLLM2)


# ---- the API's edges ------------------------------------------------------------------------


def test_unknown_source_and_sort_are_kit_errors() -> None:
    with pytest.raises(errors.UnknownSourceError, match="hub, onnx-zoo, cache, ollama") as info:
        zoo.source("nowhere")
    assert isinstance(info.value, ValueError)
    with pytest.raises(errors.ConfigError, match="cannot sort by 'stars'"):
        zoo.search(sources=["samples"], sort="stars")
    with pytest.raises(errors.ConfigError, match="does not take these options"):
        zoo.source("samples", root="/x")
    assert isinstance(zoo.source("hub"), zoo.Source)


def test_html_escapes_what_the_hub_says(monkeypatch: pytest.MonkeyPatch) -> None:
    from localml_kit.widgets import ZooBrowser

    evil = model_record(
        f"org/{XSS}",
        downloads=10,
        pipeline_tag=SCRIPT,
        tags=[SCRIPT, f"license:{XSS}"],
        cardData={"license": XSS, "description": SCRIPT},
    )
    # A valid id whose card (model_info) holds both in its description and licence.
    described = model_record(
        "org/described",
        downloads=5,
        tags=[f"license:{XSS}"],
        cardData={"license": XSS, "description": f"{SCRIPT} and {XSS}"},
    )
    with serve_hub({"org/described/model.onnx": b"o"}, [evil, described]) as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        result = zoo.search("org", sources=["hub"])
        full = zoo.card("org/described")
    card = result.cards[0]
    assert card.id == f"org/{XSS}" and SCRIPT in card.tags
    assert [c.id for c in result.cards] == [f"org/{XSS}", "org/described"]
    for page in (result._repr_html_(), card._repr_html_()):
        assert "<script" not in page and "<img" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;" in result._repr_html_()
    # The same cards in the ZooBrowser: table, detail pane (with the description) and status.
    assert full.description == f"{SCRIPT} and {XSS}" and full.license == XSS
    browser = ZooBrowser(cards=[card, full], netron=False)
    pages = [browser.table.value]
    for shown in (card, full):
        assert browser.select(shown.id) is shown
        pages += [browser.detail.value, browser.status.value]
    for page in pages:
        assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in browser.table.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and &lt;img" in browser.detail.value
    browser.close()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("qwen2.5-0.5b-instruct-q4_k_m.gguf", "Q4_K_M"),
        ("Llama-3.2-1B-Instruct-IQ4_XS.gguf", "IQ4_XS"),
        ("phi-3-mini-4k-instruct-fp16.gguf", "F16"),
        ("notes-v2.gguf", None),
        ("model-f16.gguf", "F16"),
        ("big-Q8_0-00001-of-00003.gguf", "Q8_0"),
        ("onnx/model_q4f16.onnx", "int4"),
        ("onnx/model_quantized.onnx", "int8"),
        ("onnx/model.onnx", None),
        ("model.safetensors", None),
    ],
)
def test_quantization_from_file_names(name: str, expected: str | None) -> None:
    assert _facts.quantization_of(name) == expected


def test_weights_pick_one_variant_and_its_external_data() -> None:
    files = [
        zoo.CardFile("onnx/model.onnx", 100),
        zoo.CardFile("onnx/model.onnx_data", 4000),
        zoo.CardFile("onnx/model_fp16.onnx", 2100),
    ]
    assert _facts.weights(files, "onnx") == (4100, None, "onnx/model.onnx")
    shards = [zoo.CardFile(f"m-Q8_0-0000{i}-of-00002.gguf", 10) for i in (1, 2)]
    assert _facts.weights(shards, "gguf") == (20, "Q8_0", "m-Q8_0-00001-of-00002.gguf")
    assert _facts.weights([zoo.CardFile("a.gguf", None)], "gguf") == (None, None, "a.gguf")
    assert _facts.formats_of(["training_args.bin", "README.md"], ["pytorch"]) == ("pytorch",)


# ---- the command line -----------------------------------------------------------------------


def test_cli_search_json_and_table(hub: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["zoo", "search", "smollm2", "--source", "hub", "--source", "samples", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["notes"] == [] and data["offline"] is False
    assert [c["id"] for c in data["cards"]] == [
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        "onnx-community/SmolLM2-135M-ONNX",
        "smollm2-135m-instruct",
    ]
    first = data["cards"][0]
    assert first["fit"] in {"fits", "tight", "does not fit", "unknown"} and first["memory_bytes"]
    assert main(["zoo", "search", "smollm2", "--source", "hub", "--format", "gguf"]) == 0
    out = capsys.readouterr().out
    assert out.split("\n")[0].split() == [
        "id",
        "source",
        "format",
        "size",
        "params",
        "quant",
        "fit",
    ]
    assert "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF" in out and "Q4_K_M" in out and "134.5M" in out


def test_cli_search_prints_notes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "search", "digits-mlp"]) == 0
    out = capsys.readouterr().out
    assert "digits-mlp" in out
    assert "note: Hub unreachable (127.0.0.1:9" in out


def test_cli_fetch_prints_the_path(hub: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["zoo", "fetch", "org/tiny-onnx", "--include", "*.onnx", "README.md", "--quiet"]) == 0
    )
    folder = Path(capsys.readouterr().out.strip())
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.onnx"]
    assert main(["zoo", "fetch", "org/missing", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model 'org/missing'") and err.count("\n") == 1


def test_cli_unknown_source_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "search", "x", "--source", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model source 'nowhere'") and "onnx-zoo" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_json_cards_carry_every_card_field_and_both_fits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["zoo", "search", "digits-mlp", "--source", "samples", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"cards", "notes", "offline"}
    fields = {f.name for f in dataclasses.fields(zoo.ModelCard)}
    assert [set(c) for c in data["cards"]] == [fields | {"memory_bytes", "fit", "gpu_fit"}]
    card = data["cards"][0]
    assert card["id"] == "digits-mlp" and card["source"] == "samples"
    assert card["fit"] in {"fits", "tight", "does not fit", "unknown"}
    gpus = hardware.report().gpus
    assert (card["gpu_fit"] is None) == (not gpus)  # null on a machine without a GPU


def test_cli_fetch_of_an_unknown_id_offline_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    start = time.perf_counter()
    assert main(["zoo", "fetch", "org/missing", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: org/missing is not in the HF cache")
    assert "offline mode is on" in err and "localml-kit zoo fetch org/missing" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    monkeypatch.delenv("LOCALML_OFFLINE")  # online, but the Hub is a closed port
    assert main(["zoo", "fetch", "org/missing", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not in the HF cache" in err and "unreachable" in err and err.count("\n") == 1
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zoo", "search", "--sort", "stars"], "error: cannot sort by 'stars'"),
        (["zoo", "search", "--limit", "0"], "error: argument --limit: the value must be between 1"),
        (["zoo", "fetch", "x", "--source", "nowhere"], "error: no model source 'nowhere'"),
        (["zoo", "fetch", "ghost", "--source", "ollama"], "error: ollama: no model 'ghost:latest'"),
    ],
)
def test_cli_bad_arguments_are_one_error_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
