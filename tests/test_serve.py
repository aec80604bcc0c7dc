"""The app as a local web service, its command line, the load test, and the ship folder.

A tiny encoder built here (a Gather over a word-level vocabulary) makes the
service tests hermetic; the 384-d, neighbour and ship-folder tests use the real
MiniLM sample (``real_home``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import psutil
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import _proc, compare, errors, optimize, serve
from localml_kit.cli import main
from tests.conftest import REPO
from tests.procs import gone

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="dies-with-the-parent is Linux's PR_SET_PDEATHSIG"
)

WORDS = ["[PAD]", "[UNK]", "cat", "kitten", "sofa", "stock", "market", "oven", "bread"]
CORPUS = [
    "A cat sleeps on the sofa.",
    "The stock market fell sharply today.",
    "Preheat the oven before you bake the bread.",
    "The train to the airport leaves every ten minutes.",
]


def tiny_encoder(folder: Path) -> tuple[Path, Path]:
    """An ONNX "encoder" (per-token vectors from a table) and a word-level tokenizer.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    table = np.random.default_rng(0).standard_normal((len(WORDS), 8)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["gathered"]),
            helper.make_node("Identity", ["gathered"], ["last_hidden_state"]),
        ],
        "tiny-encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "seq", 8]
            )
        ],
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, folder / "tiny.onnx")
    return folder / "tiny.onnx", folder / "tokenizer.json"


def read_line(proc: subprocess.Popen, within: float = 60.0) -> str:
    """The next line a child prints on stdout, or a failure after ``within`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], within)
    assert ready, f"no output within {within} s"
    return proc.stdout.readline()


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    return tiny_encoder(tmp_path)


@pytest.fixture
def service(tiny: tuple[Path, Path]):
    model, tokenizer = tiny
    with serve.start(model, tokenizer=tokenizer, corpus=CORPUS, max_texts=4) as running:
        yield running


def test_the_service_listens_on_a_free_port_of_127_0_0_1_only(service: serve.Service) -> None:
    assert service.url.startswith("http://127.0.0.1:") and service.port > 0
    listening = [
        c.laddr for c in psutil.Process(service.pid).net_connections("tcp") if c.status == "LISTEN"
    ]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}
    assert {a.port for a in listening} == {service.port}
    assert service.health()["corpus"] == len(CORPUS)
    assert 0 < service.ready_s <= service.cold_start_s


def test_embed_matches_the_in_process_embedder(
    service: serve.Service, tiny: tuple[Path, Path]
) -> None:
    texts = ["cat sofa", "stock market", "an unknown word"]
    over_http = service.embed(texts)
    local = serve.Embedder(*tiny).embed(texts)
    assert over_http.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(over_http, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(over_http, local, atol=1e-6)


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/embed", b"{not json", 400, "not JSON"),
        ("/embed", [1, 2], 400, "JSON object"),
        ("/embed", {}, 400, 'missing "texts"'),
        ("/embed", {"texts": "cat"}, 400, "list of strings"),
        ("/embed", {"texts": []}, 400, "empty"),
        ("/embed", {"texts": ["cat", 3]}, 400, "texts[1]"),
        ("/embed", {"texts": ["cat"] * 5}, 400, "the limit is 4"),
        ("/embed", {"texts": ["x" * 10_001]}, 400, "characters"),
        ("/embed", {"text": ["cat"]}, 400, "unknown field 'text'"),
        ("/embed", b"x" * ((1 << 20) + 1), 413, "bytes"),
        ("/search", {"query": ""}, 400, "non-empty"),
        ("/search", {"query": "cat", "k": 0}, 400, "from 1 to"),
        ("/search", {"query": "cat", "k": True}, 400, "whole number"),
        ("/nowhere", {}, 404, "Not Found"),
    ],
)
def test_bad_requests_get_a_json_error_not_a_traceback(
    service: serve.Service, path: str, body: object, status: int, needle: str
) -> None:
    answer = service.post(path, body)
    assert answer.status == status, answer
    assert isinstance(answer.body, dict) and needle in answer.error, answer
    assert "Traceback" not in json.dumps(answer.body)
    assert service.alive and service.search("cat", k=1)  # it keeps serving


def test_a_get_on_a_post_endpoint_is_a_json_405(service: serve.Service) -> None:
    answer = serve.request(service.url, "/embed")
    assert answer.status == 405 and answer.error


def test_the_process_is_gone_after_stop(tiny: tuple[Path, Path]) -> None:
    model, tokenizer = tiny
    running = serve.start(model, tokenizer=tokenizer, corpus=False)
    pid = running.pid
    assert psutil.pid_exists(pid)
    assert running.post("/search", {"query": "cat"}).status == 400  # no corpus: said so
    code = running.stop()
    assert code in (0, -signal.SIGTERM)  # it stopped on SIGTERM, not by the SIGKILL after the grace
    assert gone(pid, within=2) and not running.alive
    assert running.stop() == code  # stopping twice is fine
    with pytest.raises(errors.ServiceError, match="is the service running"):
        serve.request(running.url)


def test_the_service_dies_with_its_parent(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    model, tokenizer = tiny
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from localml_kit import serve\n"
        f"s = serve.start({str(model)!r}, tokenizer={str(tokenizer)!r}, corpus=False)\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = _proc.start(
        [sys.executable, "-c", code], what="a parent", stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(read_line(parent))
        assert psutil.pid_exists(child)
        _proc.kill(parent)  # SIGKILL: the parent cannot clean up
        assert gone(child, within=10), f"the service {child} outlived its parent"
    finally:
        _proc.kill(parent)


def test_a_child_that_fails_at_start_says_why(tmp_path: Path, tiny: tuple[Path, Path]) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(errors.ChildProcessFailedError, match="stopped before it was ready"):
        serve.start(bad, tokenizer=tiny[1])
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.onnx").write_bytes(tiny[0].read_bytes())
    with pytest.raises(errors.ModelNotFoundError, match="no tokenizer"):
        serve.start(alone / "model.onnx")  # nothing next to it, no sample to take one from
    with pytest.raises(errors.ConfigError, match="port"):
        serve.start(tiny[0], tokenizer=tiny[1], port=70000)


def test_the_load_test_is_bounded_and_returns_figures(service: serve.Service) -> None:
    result = serve.load_test(service.url, clients=4, requests=40, path="/search")
    assert (result.ok, result.failed, result.cut_short) == (40, 0, False)
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert result.throughput_rps > 0 and len(result.latencies_ms) == 40
    assert list(result.frame()["p99_ms"]) == [result.p99_ms]
    embed = serve.load_test(service.url, clients=2, requests=10, path="/embed", warmup=0)
    assert embed.ok == 10
    with pytest.raises(errors.ConfigError, match="only to services on this machine"):
        serve.load_test("http://192.0.2.1:80", requests=1)
    with pytest.raises(errors.ConfigError, match="requests must be"):
        serve.load_test(service.url, requests=1_000_000)
    with pytest.raises(errors.ConfigError, match="clients must be"):
        serve.load_test(service.url, clients=0)


def test_the_app_command_line_runs_in_a_child(tiny: tuple[Path, Path]) -> None:
    run = serve.run_app(tiny[0], ["search", "kitten", "-k", "1"], tokenizer=tiny[1], corpus=CORPUS)
    assert run.lines()[0].startswith("1  ") and run.seconds > 0
    embedded = serve.run_app(tiny[0], ["embed", "cat", "oven"], tokenizer=tiny[1])
    rows = [json.loads(line) for line in embedded.lines()]
    assert [r["text"] for r in rows] == ["cat", "oven"] and rows[0]["dim"] == 8
    with pytest.raises(errors.ConfigError, match="embed' or 'search"):
        serve.run_app(tiny[0], ["serve"], tokenizer=tiny[1])


# --------------------------------------------------------------------------- the real MiniLM


@pytest.mark.samples
def test_minilm_over_http_gives_384_d_unit_vectors_and_ranks_a_neighbour_first(
    real_home: Path,
) -> None:
    texts = ["A kitten naps on the couch.", "Shares dropped on Wall Street."]
    with serve.start("all-minilm-l6-v2", corpus=CORPUS) as running:
        vectors = running.embed(texts)
        hits = running.search("A kitten is napping on the couch.", k=2)
        bad = running.post("/embed", {"texts": [None]})
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, serve.embedder().embed(texts), atol=1e-5)
    assert hits[0].text == CORPUS[0] and hits[0].score > hits[1].score
    assert bad.status == 400 and "texts[0]" in bad.error


@pytest.fixture
def int8(real_home: Path, tmp_path: Path) -> optimize.Variant:
    """MiniLM int8 per-channel, written under tmp_path (the real cache is only read)."""
    feeds = compare.sentence_inputs(compare.corpus()[:32])
    out = tmp_path / "minilm.int8.onnx"
    return optimize.quantize_int8("all-minilm-l6-v2", out, inputs=feeds)


@pytest.mark.samples
def test_the_ship_folder_has_its_files_and_the_ort_model_loads(
    int8: optimize.Variant, tmp_path: Path
) -> None:
    import onnxruntime as ort

    ship = serve.bundle(int8, tmp_path / "ship", corpus=CORPUS)
    names = {f.name for f in ship.files}
    assert names == {
        "model.onnx",
        "tokenizer.json",
        "corpus.txt",
        "app.py",
        "requirements.txt",
        "model.ort",
        "model.required_operators.config",
        "README.md",
    }
    assert sorted(p.name for p in ship.folder.iterdir()) == sorted([*names, "manifest.json"])
    ship.verify()
    again = serve.ShipManifest.read(ship.folder)
    assert again.files == ship.files and again.license == "Apache-2.0"
    reqs = (ship.folder / "requirements.txt").read_text().split()
    assert [r.split("==")[0] for r in reqs] == [
        "onnxruntime",
        "numpy",
        "tokenizers",
        "starlette",
        "uvicorn",
    ]
    assert ship.memory["run_peak_mb"] > ship.memory["session_mb"] > 0
    assert ship.memory["batch"] == 32 and ship.memory["budget_mb"] > ship.memory["run_peak_mb"]
    assert all(c.done for c in ship.checklist), ship.checklist_frame()
    assert str(tmp_path) not in (ship.folder / "model.required_operators.config").read_text()
    readme = (ship.folder / "README.md").read_text()
    assert "POST /embed" in readme and "Apache-2.0" in readme and "127.0.0.1" in readme

    session = ort.InferenceSession(str(ship.path("model.ort")), providers=["CPUExecutionProvider"])
    from_ort = serve.Embedder(ship.path("model.ort"), ship.path("tokenizer.json"))
    from_onnx = serve.Embedder(ship.path("model.onnx"), ship.path("tokenizer.json"))
    assert "sentence_embedding" in {o.name for o in session.get_outputs()}
    np.testing.assert_allclose(from_ort.embed(CORPUS), from_onnx.embed(CORPUS), atol=1e-4)

    (ship.folder / "corpus.txt").write_text("changed\n")
    with pytest.raises(errors.ChecksumError):
        ship.verify()


@pytest.mark.samples
def test_the_ship_folder_runs_on_its_own(int8: optimize.Variant, tmp_path: Path) -> None:
    ship = serve.bundle(int8, tmp_path / "ship", corpus=CORPUS, memory=False, ort_format=False)
    # The shipped app without localml-kit importable at all: only its requirements.
    code = (
        "import runpy, sys\n"
        "sys.modules['localml_kit'] = None\n"
        f"sys.argv = ['app.py', 'search', 'A kitten naps on the couch.', '-k', '1']\n"
        f"runpy.run_path({str(ship.folder / 'app.py')!r}, run_name='__main__')\n"
    )
    done = _proc.run([sys.executable, "-c", code], what="the shipped app", timeout=120)
    assert done.stdout.split("  ", 2)[2].strip() == CORPUS[0]
    with serve.start(ship) as running:  # the ship folder's own app.py, model and corpus
        assert running.model == int8.label and running.corpus == len(CORPUS)
        assert running.search("Shares fell on Wall Street.", k=1)[0].text == CORPUS[1]
    assert int8.passed
    unchecked = [c.item for c in ship.checklist if not c.done]
    assert unchecked == ["ORT format for minimal and mobile builds", "memory budget measured"]


def test_a_bundle_never_overwrites_a_folder_that_is_not_a_ship(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(errors.ConfigError, match="no ship folder"):
        serve.bundle(tiny[0], mine, tokenizer=tiny[1], memory=False, ort_format=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    ship = serve.bundle(tiny[0], tmp_path / "ship", tokenizer=tiny[1], memory=False)
    licence = next(c for c in ship.checklist if c.item == "licence known")
    assert ship.license == "unknown" and licence.done is False
    again = serve.bundle(tiny[0], tmp_path / "ship", tokenizer=tiny[1], memory=False)
    assert again.folder == ship.folder and (ship.folder / "model.ort").is_file()


# --------------------------------------------------------------------------- the command line


def test_cli_serve_refuses_bad_values(
    capsys: pytest.CaptureFixture[str], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    assert main(["serve", str(tiny[0]), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    argv = ["serve", str(tiny[0]), "--tokenizer", str(tiny[1]), "--bundle", str(tmp_path / "full")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--bundle" in err and len(err.splitlines()) == 1


def test_cli_serve_runs_until_sigterm_and_stops_its_service(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    argv = [sys.executable, "-m", "localml_kit.cli", "serve", str(tiny[0]), "--port", "0"]
    argv += ["--tokenizer", str(tiny[1]), "--corpus", str(corpus)]
    cli = _proc.start(argv, what="localml-kit serve", env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = read_line(cli)
        url = line.split(" at ", 1)[1].split()[0]
        pid = serve.request(url).body["pid"]
        assert serve.request(url, "/search", {"query": "kitten", "k": 1}).ok
        os.kill(cli.pid, signal.SIGTERM)
        assert cli.wait(timeout=30) == 143
        assert gone(pid, within=10), "the CLI left its service running"
    finally:
        _proc.kill(cli)
