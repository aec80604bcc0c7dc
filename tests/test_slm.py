"""slm: build, chat (streamed, measured, stoppable), fidelity, the CLI and ChatPanel, on real SmolLM2."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from localml_kit import errors, samples, slm
from localml_kit.cli import main

pytestmark = pytest.mark.samples


@pytest.fixture(scope="module")
def chat_int4() -> slm.Chat:
    from tests.conftest import REAL_HOME, missing_samples

    if "smollm2-135m-instruct" in missing_samples(REAL_HOME):
        pytest.skip("SmolLM2 not built (make samples)")
    old = os.environ.get("LOCALML_HOME")
    os.environ["LOCALML_HOME"] = str(REAL_HOME)
    try:
        return slm.Chat("smollm2-135m-instruct:onnx-int4", threads=2)
    finally:
        if old is None:
            os.environ.pop("LOCALML_HOME", None)
        else:
            os.environ["LOCALML_HOME"] = old


def test_reply_is_streamed_measured_and_kept_in_history(
    real_home: Path, chat_int4: slm.Chat
) -> None:
    chat_int4.reset()
    pieces: list[str] = []
    expected_prompt = len(chat_int4.prompt_ids("Name three colours."))
    reply = chat_int4.send("Name three colours.", max_new_tokens=24, on_text=pieces.append)
    assert reply.text == "".join(pieces) and reply.text.strip()
    assert len(pieces) > 1  # streamed, not all at once
    assert 0 < reply.new_tokens <= 24
    assert reply.finish_reason in {"eos", "length"}
    assert reply.prompt_tokens == expected_prompt
    assert reply.time_to_first_token_s > 0 and reply.total_s >= reply.time_to_first_token_s
    assert reply.decode_tokens_per_s > 0 and reply.peak_rss_mb > 50
    assert chat_int4.history[-2:] == [
        {"role": "user", "content": "Name three colours."},
        {"role": "assistant", "content": reply.text},
    ]
    # The next turn sees the first: its prompt holds the earlier reply's tokens.
    second = chat_int4.prompt_ids("And three animals?")
    assert len(second) > reply.prompt_tokens + reply.new_tokens - 2
    assert reply.text.strip()[:20] in chat_int4.tokenizer.decode(np.array(second, dtype=np.int32))


def test_greedy_is_deterministic_and_sampling_follows_its_seed(
    real_home: Path, chat_int4: slm.Chat
) -> None:
    texts = []
    for _ in range(2):
        chat_int4.reset()
        texts.append(chat_int4.send("What is the capital of France?", max_new_tokens=16).text)
    assert texts[0] == texts[1]
    sampled = []
    for _ in range(2):
        chat_int4.reset()
        sampled.append(
            chat_int4.send(
                "Write a word.", max_new_tokens=12, greedy=False, temperature=1.5, seed=7
            ).text
        )
    assert sampled[0] == sampled[1]
    assert chat_int4.last is not None and chat_int4.last.settings["temperature"] == 1.5


def test_stop_keeps_the_partial_text(real_home: Path, chat_int4: slm.Chat) -> None:
    chat_int4.reset()
    seen = []
    for i, piece in enumerate(
        chat_int4.stream("Tell me a long story about a dog.", max_new_tokens=200)
    ):
        seen.append(piece)
        if i == 4:
            break
    assert chat_int4.last is not None and chat_int4.last.finish_reason == "stopped"
    assert chat_int4.last.text == "".join(seen) and chat_int4.history[-1]["content"] == "".join(
        seen
    )

    chat_int4.reset()
    timer = threading.Timer(0.3, chat_int4.stop)
    timer.start()
    reply = chat_int4.send("Count from one to one thousand in words.", max_new_tokens=1000)
    timer.join()
    assert reply.finish_reason == "stopped" and 0 < reply.new_tokens < 1000
    assert reply.text


def test_bad_prompts(real_home: Path, chat_int4: slm.Chat) -> None:
    with pytest.raises(errors.ConfigError, match="empty"):
        chat_int4.send("   ")
    with pytest.raises(errors.ConfigError, match=f"context of {chat_int4.context_length} tokens"):
        chat_int4.send("word " * (chat_int4.context_length + 10))
    with pytest.raises(errors.ConfigError, match="at least 1"):
        chat_int4.send("hi", max_new_tokens=0)


def test_build_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    bert = tmp_path / "bert.gguf"
    writer = gguf.GGUFWriter(str(bert), "bert")
    writer.add_tensor("w", np.ones((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(errors.ModelFormatError, match="supported GGUF architectures: llama"):
        slm.build(bert)
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(errors.ModelFormatError, match="LlamaForCausalLM"):
        slm.build(hf)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(errors.ModelFormatError, match="not a GGUF file"):
        slm.build(tmp_path / "notes.txt")
    with pytest.raises(errors.ModelNotFoundError):
        slm.build(tmp_path / "missing.gguf")
    with pytest.raises(errors.ConfigError, match="int4, int8, fp32"):
        slm.build(bert, "int3")
    with pytest.raises(errors.ModelFormatError, match="not a language model"):
        slm.build("all-minilm-l6-v2")


def test_a_failing_conversion_step_says_which_and_where_its_log_is(tmp_path: Path) -> None:
    from localml_kit.conversion import _pipeline

    log = tmp_path / "build.log"
    missing = tmp_path / "missing.gguf"
    with pytest.raises(errors.ConversionError, match="GGUF -> HF failed") as info:
        _pipeline._step(["gguf-to-hf", str(missing), str(tmp_path / "out")], "GGUF -> HF", log)
    assert str(log) in str(info.value) and isinstance(info.value, RuntimeError)
    assert "Traceback" in log.read_text()


def test_build_from_gguf_end_to_end(
    real_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GGUF -> HF fp32 -> ONNX fp32 -> GGUF blocks carried in (the default for GGUF), and int4."""
    gguf_file = samples.path("smollm2-135m-instruct", "gguf")
    sample_gguf = samples.path("smollm2-135m-instruct", "onnx-gguf")
    sample_int4 = samples.path("smollm2-135m-instruct", "onnx-int4")
    monkeypatch.setenv("LOCALML_HOME", str(tmp_path / "home"))
    built = slm.build(gguf_file, progress=False)
    assert (built / "genai_config.json").is_file() and built.name == "onnx-gguf"
    assert (built.parent / "onnx-fp32" / "genai_config.json").is_file()  # the reference, kept
    assert str(built).startswith(str(tmp_path / "home"))
    stamp = (built / "model.onnx").stat().st_mtime_ns
    assert slm.build(gguf_file, "gguf", progress=False) == built  # cached
    assert (built / "model.onnx").stat().st_mtime_ns == stamp
    prompt = "What is the capital of France?"
    ours = slm.Chat(built, threads=2).send(prompt, max_new_tokens=16).text
    theirs = slm.Chat(sample_gguf, threads=2).send(prompt, max_new_tokens=16).text
    assert ours == theirs
    # A GGUF path benchmarks side by side with llama.cpp on that same file.
    rows = slm.bench(gguf_file, ("gguf",), max_new_tokens=4, progress=False).to_dict("records")
    assert [r["engine"] for r in rows] == ["onnxruntime-genai", "llama.cpp"]
    gguf_mb = gguf_file.stat().st_size / 1e6
    assert rows[0]["size_vs_gguf"] == pytest.approx(rows[0]["size_mb"] / gguf_mb)
    assert 1.0 < rows[0]["size_vs_gguf"] < 1.5 and rows[1]["size_vs_gguf"] == 1.0
    if importlib.util.find_spec("llama_cpp") is None:
        assert "llama-cpp-python is not installed" in rows[1]["error"]
    else:
        assert rows[1]["decode_tokens_per_s"] > 0 and rows[1]["agreement"] > 0.5
    int4 = slm.build(gguf_file, "int4", progress=False)  # reuses the HF fp32 folder
    assert int4.name == "onnx-int4"
    ours = slm.Chat(int4, threads=2).send(prompt, max_new_tokens=16).text
    assert ours == slm.Chat(sample_int4, threads=2).send(prompt, max_new_tokens=16).text


def test_fidelity_against_the_fp32_build(real_home: Path) -> None:
    same = slm.fidelity(
        "smollm2-135m-instruct:onnx-fp32",
        prompts=["Name a colour."],
        max_new_tokens=12,
        progress=False,
    )
    assert same.agreement == 1.0 and same.mean_kl < 1e-6 and same.positions == 12
    int8 = slm.fidelity(
        "smollm2-135m-instruct:onnx-int8",
        prompts=slm.DEFAULT_PROMPTS[:2],
        max_new_tokens=32,
        progress=False,
    )
    assert 0.8 <= int8.agreement <= 1.0 and int8.mean_kl > 0
    assert [row["positions"] for row in int8.per_prompt] == [32, 32]


def test_cli_chat_and_bench(
    real_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "slm",
                "chat",
                "--prompt",
                "Name a planet.",
                "--max-tokens",
                "12",
                "--threads",
                "2",
                "--stats",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert out.strip() and "tok/s" in err
    assert main(["slm", "chat", "--prompt", " "]) == 2
    assert capsys.readouterr().err.startswith("error: the prompt is empty")
    report = tmp_path / "bench.json"
    argv = ["slm", "bench", "--precisions", "int4", "--max-tokens", "8", "--json", str(report)]
    assert main([*argv, "--no-llama-cpp"]) == 0
    rows = json.loads(report.read_text())
    assert [r["precision"] for r in rows] == ["int4"]
    assert rows[0]["decode_tokens_per_s"] > 0 and 0 <= rows[0]["agreement"] <= 1


def test_chat_panel(real_home: Path, chat_int4: slm.Chat) -> None:
    from localml_kit.widgets import ChatPanel

    chat_int4.reset()
    panel = ChatPanel(chat=chat_int4)
    panel.prompt.value = "Say hello <script>alert(1)</script>"
    panel.max_tokens.value = 16
    panel.send_button.click()
    reply = panel.wait(120)
    assert reply is not None and panel.result is reply and reply.text
    assert panel.reply.value == reply.text
    assert "tok/s" in panel.stats.value
    assert "<script>" not in panel.transcript.value and "&lt;script&gt;" in panel.transcript.value
    assert not panel.send_button.disabled and panel.stop_button.disabled

    panel.greedy.value = False
    assert not panel.temperature.disabled
    panel.greedy.value = True  # greedy, this prompt runs past 200 tokens: Stop lands mid-reply
    panel.prompt.value = "Count from one to five hundred."
    panel.max_tokens.value = 1024
    panel.send_button.click()

    def stop_once_streaming() -> None:
        for _ in range(6000):
            if panel.reply.value:
                break
            time.sleep(0.01)
        panel.stop_button.click()

    threading.Thread(target=stop_once_streaming, daemon=True).start()
    stopped = panel.wait(120)
    assert stopped is not None and stopped.finish_reason == "stopped"

    panel.prompt.value = ""
    panel.send_button.click()
    panel.wait(30)
    assert "empty" in panel.stats.value
    panel.reset_button.click()
    assert chat_int4.history == [] and panel.transcript.value == ""
