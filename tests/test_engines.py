"""Engines other than ONNX Runtime for the same ONNX file: tract, and onnxruntime-web in Chromium.

Each engine runs a tiny model built here with onnx.helper (floats, int64 ids, a
bool output) and MiniLM from the samples; outputs are compared with ONNX
Runtime's CPU provider (the max abs differences are printed: ``pytest -s``).
The unavailable paths (tract not installed, no npm and no onnxruntime-web
files, no Chromium, a software-only WebGPU adapter) each give one kit error that
says what to do. The npm build step is tested with a fake ``npm`` and a made-up
tarball, so no test touches the network.

The web tests need Chromium (``LOCALML_CHROMIUM``, else ``/usr/bin/chromium``):
without it they skip with the reason (and fail under ``CI=true``). They use the
onnxruntime-web files ``make samples`` put in the real kit cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import psutil
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import compare, config, engines, errors, models, profile, providers
from localml_kit.engines import __main__ as engines_main
from localml_kit.engines import tract, web
from tests.conftest import IN_CI, REAL_HOME

# What an engine may differ from ORT's CPU provider by, in float32 (measured here: tiny model
# 0 to 1e-6; MiniLM's embeddings 1e-7 to 3e-7, its last hidden state 4e-6 (web) to 3e-5 (tract)).
TOLERANCE = {"tiny": 1e-5, "sentence_embedding": 1e-5, "last_hidden_state": 2e-4}


def tiny_model(path: Path) -> Path:
    """x[n, 4] float, ids[n] int64 -> y = Relu(x @ W), z = Softmax(x @ W), big = y > 1 (bool),
    total = ReduceSum(ids) (int64)."""
    w = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5) / 4
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Relu", ["m"], ["y"]),
        helper.make_node("Softmax", ["m"], ["z"], axis=-1),
        helper.make_node("Greater", ["y", "one"], ["big"]),
        helper.make_node("ReduceSum", ["ids"], ["total"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("big", TensorProto.BOOL, ["n", 3]),
            helper.make_tensor_value_info("total", TensorProto.INT64, [1]),
        ],
        initializer=[
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return path


def tiny_feeds(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(rows)
    return {
        "x": rng.normal(size=(rows, 4)).astype(np.float32),
        "ids": rng.integers(0, 1000, size=rows).astype(np.int64),
    }


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "tiny.onnx")


def ort_cpu(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def check_tiny(engine: str, tiny: Path) -> None:
    sets = [tiny_feeds(5), tiny_feeds(1)]  # two shapes: tract plans each one
    got = engines.run(f"{tiny}@{engine}", sets)
    for feeds, out in zip(sets, got, strict=True):
        want = ort_cpu(tiny, feeds)
        assert list(out) == ["y", "z", "big", "total"]
        for name, ref in want.items():
            assert out[name].dtype == ref.dtype and out[name].shape == ref.shape, name
        diff = max(float(np.abs(out[n] - want[n]).max()) for n in ("y", "z"))
        print(f"\n{engine} tiny model, {len(feeds['x'])} rows: max abs diff vs ORT CPU {diff:.3g}")
        assert diff <= TOLERANCE["tiny"]
        np.testing.assert_array_equal(out["big"], want["big"])
        np.testing.assert_array_equal(out["total"], want["total"])


def check_minilm(engine: str) -> None:
    result = compare.outputs("all-minilm-l6-v2", {engine: f"all-minilm-l6-v2@{engine}"}, batch=4)
    for row in result.table.itertuples():
        print(f"\n{engine} MiniLM {row.output}: max abs diff vs ORT CPU {row.max_abs:.3g}")
        assert row.max_abs <= TOLERANCE[str(row.output)], row
    assert result.verdicts() == {engine: True}


# ---- names: engines are named where providers are ----------------------------------------------


def test_engines_resolve_like_providers(tiny: Path) -> None:
    assert providers.resolve("tract") == providers.TRACT
    assert providers.resolve("web") == providers.resolve("ort-web") == providers.WEB
    assert providers.is_engine("web") and not providers.is_engine("openvino")
    assert providers.short_name(providers.WEB) == "web"
    ref = models.resolve(f"{tiny}@tract")
    assert ref.provider == providers.TRACT and ref.label == "tiny.onnx@tract"
    assert models.resolve(f"{tiny}@ort-web").label == "tiny.onnx@web"
    with pytest.raises(errors.UnknownProviderError, match="not an engine"):
        engines.status("cpu")
    table = engines.table().set_index("name")
    assert table.loc["tract", "kind"] == "engine"
    assert table.loc["CPUExecutionProvider", "kind"] == "provider"
    assert bool(table.loc["CPUExecutionProvider", "available"])


# ---- tract --------------------------------------------------------------------------------------


def test_tract_matches_ort_cpu_on_a_tiny_model(tiny: Path) -> None:
    check_tiny("tract", tiny)


def test_tract_in_a_child_process_and_in_compare(tiny: Path) -> None:
    feeds = tiny_feeds(3)
    (child,) = engines.run(tiny, feeds, engine="tract", timeout_s=120)
    np.testing.assert_allclose(child["y"], ort_cpu(tiny, feeds)["y"], atol=1e-6)
    result = compare.outputs(tiny, [f"{tiny}@tract"], feeds)
    assert result.verdicts() == {"tiny.onnx@tract": True}


@pytest.mark.samples
def test_tract_matches_ort_cpu_on_minilm(real_home: Path) -> None:
    check_minilm("tract")


def test_profile_measures_tract_and_says_it_has_one_thread(tiny: Path) -> None:
    plan = profile.Plan(
        tiny,
        providers=["tract"],
        threads=[2],
        batches=[4],
        vocab_size=1000,
        min_iterations=5,
        min_seconds=0,
    )
    row = profile.run(plan, progress=False).table.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["onnxruntime"].startswith("tract ") and row["p50_ms"] > 0
    assert "1 thread(s), not 2" in row["fallback"]


def test_tract_not_installed_is_one_clear_error(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tract, "version", lambda: "")
    with pytest.raises(errors.ProviderUnavailableError, match=r"pip install .*engines") as info:
        engines.run(tiny, tiny_feeds(2), engine="tract")
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(errors.ProviderUnavailableError, match="tract package is not installed"):
        compare.outputs(tiny, [f"{tiny}@tract"], tiny_feeds(2))
    row = profile.run(
        profile.Plan(tiny, providers=["tract"], batches=[2], vocab_size=1000), progress=False
    ).table
    assert row.loc[0, "status"] == "unavailable"
    assert "not installed" in row.loc[0, "error"] and row.loc[0, "package"].startswith("tract")


def test_tract_refusing_a_model_is_a_model_format_error(tmp_path: Path) -> None:
    node = helper.make_node("MyOp", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
        ir_version=8,
    )
    onnx.save(model, tmp_path / "custom.onnx")
    with pytest.raises(errors.ModelFormatError, match="tract") as info:
        engines.run(tmp_path / "custom.onnx", {"x": np.ones((1, 4), np.float32)}, engine="tract")
    assert "Stack backtrace" not in str(info.value) and "\n" not in str(info.value)


# ---- the web engine's build step (no network: a fake npm, a made-up tarball) -------------------


def fake_tarball(path: Path, skip: str = "") -> str:
    with tarfile.open(path, "w:gz") as archive:
        for member in web.FILES:
            if member == skip:
                continue
            data = f"content of {member}".encode()
            info = tarfile.TarInfo(f"package/{member}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_web_setup_unpacks_a_verified_tarball(monkeypatch: pytest.MonkeyPatch) -> None:
    downloads = config.downloads_dir()
    downloads.mkdir(parents=True)
    monkeypatch.setattr(web, "SHA256", fake_tarball(downloads / web.TARBALL))
    monkeypatch.setenv("LOCALML_OFFLINE", "1")  # the cached tarball only: no npm, no network
    assert not web.ready()
    folder = web.setup()
    assert web.ready() and folder == web.folder()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(Path(f).name for f in web.FILES), "manifest.json"]
    )
    (folder / "ort.wasm.min.js").write_text("changed size")
    assert not web.ready()


def test_web_setup_refuses_a_tarball_without_a_member(monkeypatch: pytest.MonkeyPatch) -> None:
    downloads = config.downloads_dir()
    downloads.mkdir(parents=True)
    sha = fake_tarball(downloads / web.TARBALL, skip="dist/ort-wasm-simd-threaded.wasm")
    monkeypatch.setattr(web, "SHA256", sha)
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    with pytest.raises(errors.EnvironmentCreateError, match="has no dist/ort-wasm-simd"):
        web.setup()
    assert not web.folder().exists()
    assert not [p for p in config.engines_dir().iterdir() if p.name.startswith(".web-")]


def test_npm_tarball_with_the_wrong_checksum_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    # A fake npm: `npm pack SPEC --pack-destination DIR` writes a tarball of the wrong bytes.
    npm.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\n"
        "dest = pathlib.Path(sys.argv[sys.argv.index('--pack-destination') + 1])\n"
        f"(dest / {web.TARBALL!r}).write_bytes(b'not the package')\n"
    )
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{'/usr/bin:/bin'}")
    with pytest.raises(errors.ChecksumError, match=web.TARBALL):
        web.setup()
    assert not (config.downloads_dir() / web.TARBALL).exists()
    assert not web.folder().exists()


def test_no_npm_means_the_web_engine_is_unavailable(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "npm" else real_which(name, *a, **k)
    )
    status = engines.status("web")
    assert not status.available and "npm is not installed" in status.reason
    with pytest.raises(errors.ProviderUnavailableError, match=r"install Node\.js") as info:
        engines.run(tiny, tiny_feeds(2), engine="web")
    assert str(info.value).count("npm is not installed") == 1
    with pytest.raises(errors.ProviderUnavailableError, match="web engine cannot run here"):
        compare.outputs(tiny, [f"{tiny}@web"], tiny_feeds(2))
    # The build step in `make samples`: a note and exit 0 with --optional, else exit 1.
    assert engines_main.main(["setup", "--optional"]) == 0
    assert "note: npm is not installed" in capsys.readouterr().out
    assert engines_main.main(["setup"]) == 1
    assert "error: npm is not installed" in capsys.readouterr().err


def test_no_chromium_means_the_web_engine_is_unavailable(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALML_CHROMIUM", "/no/such/chromium")
    with pytest.raises(errors.ProviderUnavailableError, match="LOCALML_CHROMIUM='/no/such"):
        engines.run(tiny, tiny_feeds(2), engine="web")


# ---- onnxruntime-web in headless Chromium -------------------------------------------------------


@pytest.fixture
def chromium() -> str:
    executable, reason = config.chromium()
    if executable is None:
        message = f"the web engine needs Chromium: {reason}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return executable


@pytest.fixture
def web_files(chromium: str, hermetic_env: Path) -> Path:
    """The onnxruntime-web files `make samples` fetched, seen from this test's own kit home."""
    real = REAL_HOME / "engines" / web.folder().name
    if not (real / "manifest.json").is_file():
        pytest.fail(f"onnxruntime-web is not in {real}: run `make samples`")
    if not web.folder().exists():  # the test's own home (real_home points at the real one)
        web.folder().parent.mkdir(parents=True, exist_ok=True)
        web.folder().symlink_to(real, target_is_directory=True)
    assert web.ready()
    return web.folder()


def chromium_children() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name().lower():
                out.append(child)
        except psutil.Error:
            continue
    return out


@pytest.mark.engine_web
def test_web_matches_ort_cpu_on_a_tiny_model(tiny: Path, web_files: Path) -> None:
    check_tiny("web", tiny)


@pytest.mark.engine_web
@pytest.mark.samples
def test_web_matches_ort_cpu_on_minilm(real_home: Path, web_files: Path) -> None:
    check_minilm("web")


@pytest.mark.engine_web
def test_profile_measures_the_web_engine(tiny: Path, web_files: Path) -> None:
    plan = profile.Plan(
        tiny,
        providers=["web"],
        threads=[1],
        batches=[4],
        vocab_size=1000,
        min_iterations=20,
        min_seconds=0,
    )
    row = profile.run(plan, progress=False).table.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["onnxruntime"] == f"onnxruntime-web {web.VERSION}"
    assert row["iterations"] >= 20 and row["p50_ms"] > 0 and row["load_s"] > 0
    assert row["memory_method"] == "browser processes (sampled)"


@pytest.mark.engine_web
def test_webgpu_on_a_software_adapter_is_unavailable(tiny: Path, web_files: Path) -> None:
    try:
        engines.run(tiny, tiny_feeds(2), engine="web", options={"backend": "webgpu"})
    except errors.ProviderUnavailableError as exc:
        assert "WebGPU adapter" in str(exc) and "wasm backend" in str(exc)
    # (a machine whose Chromium has a real GPU adapter runs it, which is fine too)


@pytest.mark.engine_web
def test_a_web_run_past_its_limit_stops_with_its_browser(tiny: Path, web_files: Path) -> None:
    with pytest.raises(errors.ChildTimeoutError, match="did not finish within 1 s"):
        engines.run(tiny, tiny_feeds(2), engine="web", timeout_s=1)
    deadline = time.monotonic() + 10
    while chromium_children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not chromium_children()


def test_engine_job_is_plain_json(tiny: Path) -> None:
    spec = engines.job(tiny, "tract", threads=1)
    assert json.loads(json.dumps(spec)) == spec
    assert spec["output_names"] == ["y", "z", "big", "total"]
