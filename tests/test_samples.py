"""The sample cache against a real package index on 127.0.0.1 and real wheels."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from localml_kit import config, errors, samples
from localml_kit.samples import _store
from localml_kit.samples._registry import Sample, WheelMember, WheelSource
from tests.conftest import IN_CI, REAL_HOME
from tests.pkgindex import serve_index, write_simple_index

RAPIDOCR = samples.get("ppocr-v4-cls").source
assert RAPIDOCR is not None


def _tiny_onnx() -> bytes:
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def make_wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A real, pip-installable wheel holding ``files`` (plus its dist-info)."""
    dist = package.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


def tiny_sample(
    wheel: Path, member_sha: str | None = None, dest: str = "model.onnx", **kw: object
) -> Sample:
    data = zipfile.ZipFile(wheel).read("tiny_model/model.onnx")
    source = WheelSource(
        package="tiny-model",
        version="1.0",
        filename=wheel.name,
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        members=(
            WheelMember(
                "tiny_model/model.onnx",
                dest,
                hashlib.sha256(data).hexdigest() if member_sha is None else member_sha,
            ),
        ),
    )
    fields = {
        "name": "tiny",
        "title": "tiny",
        "task": "test",
        "format": "onnx",
        "license": "MIT",
        "description": "an Identity graph",
        "source": source,
        "variants": {"onnx": dest},
    }
    fields.update(kw)
    return Sample(**fields)  # type: ignore[arg-type]


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    return folder


@pytest.fixture
def tiny_wheel(wheelhouse: Path) -> Path:
    return make_wheel(wheelhouse, "tiny-model", "1.0", {"tiny_model/model.onnx": _tiny_onnx()})


@pytest.fixture
def index(wheelhouse: Path, monkeypatch: pytest.MonkeyPatch):
    with serve_index(wheelhouse) as (url, requests):
        monkeypatch.setenv("LOCALML_PIP_INDEX_URL", url)
        yield requests


@pytest.fixture
def real_rapidocr_wheel(wheelhouse: Path) -> Path:
    """The real rapidocr wheel, taken from the real cache that `make samples` filled."""
    cached = REAL_HOME / "downloads" / RAPIDOCR.filename
    if not cached.is_file():
        message = f"{cached} missing; run `make samples`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return Path(shutil.copy2(cached, wheelhouse / RAPIDOCR.filename))


def wheel_requests(requests: list[str]) -> list[str]:
    return [r for r in requests if r.split("#")[0].endswith(".whl")]


# --- names, paths, messages ------------------------------------------------------------


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(errors.UnknownSampleError) as info:
        samples.path("no-such-model")
    message = str(info.value)
    assert "no-such-model" in message
    for name in samples.names():
        assert name in message
    assert isinstance(info.value, KeyError)


def test_unknown_variant_lists_the_variants() -> None:
    with pytest.raises(errors.UnknownSampleError, match="onnx-int4, onnx-int8"):
        samples.path("smollm2-135m-instruct", "fp64")


def test_path_of_a_sample_not_fetched_names_the_command() -> None:
    with pytest.raises(
        errors.SampleNotReadyError, match="localml-kit samples fetch all-minilm-l6-v2"
    ):
        samples.path("all-minilm-l6-v2")
    assert not samples.status("all-minilm-l6-v2").ready


def test_offline_and_not_cached_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    with pytest.raises(errors.OfflineError, match="localml-kit samples fetch ppocr-v4-cls") as info:
        samples.fetch("ppocr-v4-cls", progress=False)
    assert isinstance(info.value, ConnectionError)
    assert not (config.samples_dir() / "ppocr-v4-cls").exists()


def test_hf_hub_offline_also_switches_the_kit_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(errors.OfflineError):
        samples.fetch("ppocr-v4-det", progress=False)


def test_registry_is_consistent() -> None:
    assert len(set(samples.names())) == len(samples.names())
    for name in samples.names():
        sample = samples.get(name)
        assert sample.variants, name
        if sample.source is not None:
            assert len(sample.source.sha256) == 64
            assert sample.source.filename.startswith(sample.source.package.replace("-", "_"))
            for member in sample.source.members:
                assert len(member.sha256) == 64
                _store._safe_target(Path("/tmp/root"), member.dest)  # registry never escapes


# --- fetching from a real index --------------------------------------------------------


def test_fetch_real_wheel_then_return_at_once(
    real_rapidocr_wheel: Path, index: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = samples.fetch("ppocr-v4-cls", progress=False)
    assert path == config.samples_dir() / "ppocr-v4-cls" / "model.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == RAPIDOCR.members[0].sha256
    onnx.checker.check_model(str(path))
    assert len(wheel_requests(index)) == 1
    assert (config.downloads_dir() / RAPIDOCR.filename).is_file()

    # A second call uses the cache: no request, works offline, and the same wheel
    # serves the sibling samples without another download.
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    assert samples.fetch("ppocr-v4-cls", progress=False) == path
    assert samples.fetch("ppocr-v4-det", progress=False).is_file()
    assert len(wheel_requests(index)) == 1
    status = samples.status("ppocr-v4-cls")
    assert status.ready and status.size_bytes == path.stat().st_size
    assert not list(config.samples_dir().glob(".staging-*"))


def test_wheel_with_wrong_sha256_is_refused(tiny_wheel: Path, index: list[str]) -> None:
    sample = tiny_sample(tiny_wheel)
    bad = replace(sample, source=replace(sample.source, sha256="0" * 64))
    with pytest.raises(errors.ChecksumError) as info:
        _store.ensure(bad, progress=False)
    exc = info.value
    assert exc.expected == "0" * 64
    assert exc.actual == hashlib.sha256(tiny_wheel.read_bytes()).hexdigest()
    assert tiny_wheel.name in exc.path and exc.expected in str(exc) and exc.actual in str(exc)
    assert not (config.downloads_dir() / tiny_wheel.name).exists()
    assert _store.check_ready(bad) == "not fetched"


def test_member_with_wrong_sha256_is_refused(tiny_wheel: Path, index: list[str]) -> None:
    bad = tiny_sample(tiny_wheel, member_sha="f" * 64)
    with pytest.raises(errors.ChecksumError, match=r"tiny_model/model\.onnx"):
        _store.ensure(bad, progress=False)
    assert _store.check_ready(bad) == "not fetched"
    assert not list(config.samples_dir().glob(".staging-*"))


def test_corrupt_cached_wheel_is_downloaded_again(tiny_wheel: Path, index: list[str]) -> None:
    sample = tiny_sample(tiny_wheel)
    config.downloads_dir().mkdir(parents=True)
    (config.downloads_dir() / tiny_wheel.name).write_bytes(b"partial download")
    folder = _store.ensure(sample, progress=False)
    assert (folder / "model.onnx").read_bytes() == _tiny_onnx()
    assert len(wheel_requests(index)) == 1


def test_offline_builds_from_a_cached_wheel(
    tiny_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.downloads_dir().mkdir(parents=True)
    shutil.copy2(tiny_wheel, config.downloads_dir() / tiny_wheel.name)
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    folder = _store.ensure(tiny_sample(tiny_wheel), progress=False)
    assert (folder / "model.onnx").is_file()


def test_unreachable_index_gives_a_download_error(
    tiny_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("LOCALML_PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    with pytest.raises(errors.DownloadError, match="LOCALML_PIP_INDEX_URL"):
        _store.ensure(tiny_sample(tiny_wheel), progress=False)


# --- broken cache entries --------------------------------------------------------------


def test_truncated_file_makes_the_entry_not_ready_and_fetch_rebuilds(
    tiny_wheel: Path, index: list[str]
) -> None:
    sample = tiny_sample(tiny_wheel)
    folder = _store.ensure(sample, progress=False)
    model = folder / "model.onnx"
    model.write_bytes(model.read_bytes()[:10])
    assert "truncated" in (_store.check_ready(sample) or "")
    folder = _store.ensure(sample, progress=False)
    assert model.read_bytes() == _tiny_onnx()
    assert len(wheel_requests(index)) == 1  # the verified wheel was reused


def test_missing_manifest_is_not_ready(tiny_wheel: Path, index: list[str]) -> None:
    sample = tiny_sample(tiny_wheel)
    folder = _store.ensure(sample, progress=False)
    (folder / _store.MANIFEST).unlink()
    assert _store.check_ready(sample) == "cache entry has no readable manifest"


def test_recipe_change_rebuilds(tiny_wheel: Path, index: list[str]) -> None:
    sample = tiny_sample(tiny_wheel)
    _store.ensure(sample, progress=False)
    newer = replace(sample, recipe=2)
    assert _store.check_ready(newer) == "cache entry was built by another recipe"
    _store.ensure(newer, progress=False)
    assert _store.check_ready(newer) is None


def test_verify_finds_a_changed_byte_and_discards_the_entry(
    tiny_wheel: Path, index: list[str]
) -> None:
    sample = tiny_sample(tiny_wheel)
    folder = _store.ensure(sample, progress=False)
    _store.verify(sample)  # intact
    model = folder / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    assert _store.check_ready(sample) is None  # same size: only hashing can tell
    with pytest.raises(errors.ChecksumError, match=r"model\.onnx"):
        _store.verify(sample)
    assert not folder.exists()
    _store.ensure(sample, progress=False)
    assert model.read_bytes() == _tiny_onnx()


def test_verify_of_a_sample_not_fetched() -> None:
    with pytest.raises(errors.SampleNotReadyError, match="localml-kit samples fetch digits-mlp"):
        samples.verify("digits-mlp")


# --- archives that try to escape -------------------------------------------------------


@pytest.mark.parametrize(
    "dest", ["../escaped.onnx", "/tmp/escaped.onnx", "a/../../escaped.onnx", "..\\x.onnx"]
)
def test_member_paths_that_escape_are_refused(
    tiny_wheel: Path, index: list[str], dest: str
) -> None:
    sample = tiny_sample(tiny_wheel, dest=dest)
    with pytest.raises(errors.UnsafeArchiveError):
        _store.ensure(sample, progress=False)
    assert not (config.samples_dir().parent / "escaped.onnx").exists()
    assert not list(config.samples_dir().glob(".staging-*"))


def test_symlink_member_is_refused(wheelhouse: Path, index: list[str]) -> None:
    wheel = make_wheel(wheelhouse, "tiny-model", "1.0", {"tiny_model/model.onnx": b"/etc/passwd"})
    with zipfile.ZipFile(wheel) as zf:
        entries = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(wheel, "w") as zf:
        for info, data in entries:
            if info.filename == "tiny_model/model.onnx":
                info.external_attr = (0o120777) << 16  # a symlink entry
            zf.writestr(info, data)
    write_simple_index(wheelhouse)  # list the wheel made after the server started
    with pytest.raises(errors.UnsafeArchiveError, match="symlink"):
        _store.ensure(tiny_sample(wheel), progress=False)


# --- builds ----------------------------------------------------------------------------


def test_missing_build_dependency_says_what_to_install(tiny_wheel: Path) -> None:
    sample = tiny_sample(tiny_wheel, build_requires=("no_such_module_for_localml",))
    with pytest.raises(errors.BuildDependencyError, match=r"localml-kit\[build\]") as info:
        _store.ensure(sample, progress=False)
    assert isinstance(info.value, ImportError)


def test_a_failing_build_step_quotes_its_log_and_names_it(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    with pytest.raises(errors.SampleBuildError, match="build step no_such_step failed") as info:
        _store._run_step("no_such_step", tmp_path, log)
    message = str(info.value)
    assert "usage: python -m localml_kit.samples._builders" in message and str(log) in message
    assert isinstance(info.value, RuntimeError) and isinstance(
        info.value.__cause__, errors.ChildProcessFailedError
    )
    assert "=== no_such_step ===" in log.read_text()  # the step's output stays in the log


def test_digits_build_matches_scikit_learn() -> None:
    path = samples.fetch("digits-forest", progress=False)
    import json

    import numpy as np
    import onnxruntime as ort

    train = json.loads((path.parent / "train.json").read_text())
    assert train["onnx_sklearn_label_agreement"] == 1.0
    data = np.load(samples.path("digits-forest", "test-set"))
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    labels = session.run(None, {session.get_inputs()[0].name: data["x"]})[0]
    assert np.mean(labels == data["y"]) > 0.9


def _kit(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localml_kit.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_fetches_share_one_download_and_one_build(
    real_rapidocr_wheel: Path, index: list[str]
) -> None:
    env = dict(os.environ)
    procs = [_kit("samples", "fetch", "ppocr-v4-rec", env=env) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert len(wheel_requests(index)) == 1
    assert samples.status("ppocr-v4-rec").ready
    samples.verify("ppocr-v4-rec")
    assert not list(config.samples_dir().glob(".staging-*"))


def test_killed_build_leaves_nothing_that_looks_ready() -> None:
    env = dict(os.environ)
    proc = _kit("samples", "fetch", "digits-mlp", env=env)
    deadline = time.monotonic() + 120
    while not list(config.samples_dir().glob(".staging-digits-mlp-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    status = samples.status("digits-mlp")
    assert not status.ready and status.reason == "not fetched"
    with pytest.raises(errors.SampleNotReadyError):
        samples.path("digits-mlp")
    path = samples.fetch("digits-mlp", progress=False)  # the next fetch cleans up and builds
    assert path.is_file()
    assert not list(config.samples_dir().glob(".staging-*"))


# --- the real built samples -------------------------------------------------------------


@pytest.mark.samples
def test_real_samples_are_ready_and_load(real_home: Path) -> None:
    import onnxruntime as ort

    for name in samples.names():
        assert samples.status(name).ready, name
    for name in ("all-minilm-l6-v2", "ppocr-v4-det", "ppocr-v4-rec", "ppocr-v4-cls", "digits-mlp"):
        session = ort.InferenceSession(samples.path(name), providers=["CPUExecutionProvider"])
        assert session.get_inputs(), name
    smol = samples.get("smollm2-135m-instruct")
    for variant in ("onnx-int4", "onnx-int8", "onnx-fp32"):
        folder = samples.path(smol.name, variant)
        assert (folder / "genai_config.json").is_file() and (folder / "model.onnx").is_file()
    assert samples.path(smol.name, "gguf").stat().st_size == 98_362_432


@pytest.mark.samples
def test_real_minilm_embeds_sentences(real_home: Path) -> None:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(samples.path("all-minilm-l6-v2", "tokenizer")))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    batch = tokenizer.encode_batch(
        ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell."]
    )
    feeds = {
        "input_ids": np.array([e.ids for e in batch], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in batch], dtype=np.int64),
    }
    session = ort.InferenceSession(
        samples.path("all-minilm-l6-v2"), providers=["CPUExecutionProvider"]
    )
    emb = session.run(["sentence_embedding"], feeds)[0]
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # the cat is closer to the kitten than to stocks


# --- the Hub as a second source ---------------------------------------------------------


def _hub_sample(tiny: bytes, sha: str | None = None) -> Sample:
    from localml_kit._download import HubFile

    source = WheelSource("tiny-model", "1.0", "tiny_model-1.0-py3-none-any.whl", "0" * 64, ())
    digest = hashlib.sha256(tiny).hexdigest() if sha is None else sha
    return Sample(
        name="tiny-hub",
        title="tiny",
        task="test",
        format="onnx",
        license="MIT",
        description="an Identity graph",
        source=source,
        variants={"onnx": "model.onnx"},
        hub_files=(HubFile("org/tiny", "onnx/model.onnx", "model.onnx", digest),),
    )


def test_hub_source_downloads_and_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hubserver import serve_hub

    tiny = _tiny_onnx()
    monkeypatch.setenv("LOCALML_SAMPLE_SOURCES", "hub")
    with serve_hub({"org/tiny/onnx/model.onnx": tiny}) as (endpoint, requests):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        folder = _store.ensure(_hub_sample(tiny), progress=False)
        assert (folder / "model.onnx").read_bytes() == tiny
        assert any(r.startswith("GET /org/tiny/resolve/main/onnx/model.onnx") for r in requests)
    manifest = _store.read_manifest(folder) or {}
    assert manifest["source"]["from"] == "hub"


def test_hub_file_with_wrong_sha256_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hubserver import serve_hub

    monkeypatch.setenv("LOCALML_SAMPLE_SOURCES", "hub")
    with serve_hub({"org/tiny/onnx/model.onnx": _tiny_onnx()}) as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        with pytest.raises(errors.ChecksumError, match="org/tiny/onnx/model"):
            _store.ensure(_hub_sample(_tiny_onnx(), sha="e" * 64), progress=False)
    assert not list((config.downloads_dir() / "hub").glob("*model.onnx"))


def test_index_unreachable_falls_back_to_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hubserver import serve_hub

    monkeypatch.setenv("LOCALML_PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    with serve_hub({"org/tiny/onnx/model.onnx": _tiny_onnx()}) as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        folder = _store.ensure(_hub_sample(_tiny_onnx()), progress=False)
    assert (_store.read_manifest(folder) or {})["source"]["from"] == "hub"


def test_hub_missing_file_and_index_unreachable_name_both(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hubserver import serve_hub

    monkeypatch.setenv("LOCALML_PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    with serve_hub({}) as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        with pytest.raises(errors.DownloadError) as info:
            _store.ensure(_hub_sample(_tiny_onnx()), progress=False)
    assert "package index" in str(info.value) and "from the Hub" in str(info.value)


def test_unknown_sample_source_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALML_SAMPLE_SOURCES", "pypi,ftp")
    with pytest.raises(errors.ConfigError, match="ftp"):
        config.sample_sources()


def test_minilm_hub_files_match_its_wheel_members() -> None:
    sample = samples.get("all-minilm-l6-v2")
    assert sample.source is not None
    assert [(h.dest, h.sha256) for h in sample.hub_files] == [
        (m.dest, m.sha256) for m in sample.source.members
    ]


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALML_SAMPLE_SOURCES", "hub")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(errors.DownloadError, match="unreachable"):
        _store.ensure(_hub_sample(_tiny_onnx()), progress=False)


def test_offline_builds_from_cached_hub_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hubserver import serve_hub

    tiny = _tiny_onnx()
    monkeypatch.setenv("LOCALML_SAMPLE_SOURCES", "hub")
    with serve_hub({"org/tiny/onnx/model.onnx": tiny}) as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        _store.ensure(_hub_sample(tiny), progress=False)
    shutil.rmtree(config.samples_dir() / "tiny-hub")
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    monkeypatch.setenv(
        "LOCALML_SAMPLE_SOURCES", "pypi,hub"
    )  # the wheel is not cached; the Hub file is
    folder = _store.ensure(_hub_sample(tiny), progress=False)
    assert (folder / "model.onnx").read_bytes() == tiny
