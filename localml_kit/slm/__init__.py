"""Run a small language model (SLM) locally with ONNX Runtime GenAI: build it, chat, measure.

``build`` turns a GGUF file, a Hugging Face folder or a sample into an ONNX
Runtime GenAI model folder (cached). ``Chat`` holds a conversation with the
model's chat template, streams each reply token by token, and measures it:
prompt tokens, time to first token, decode tokens/s, total time, peak RSS.

Example:
    >>> from localml_kit import slm
    >>> chat = slm.Chat("smollm2-135m-instruct")  # doctest: +SKIP
    >>> reply = chat.send("What is an SLM?", max_new_tokens=32)  # doctest: +SKIP
    >>> reply.text, reply.decode_tokens_per_s  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from filelock import FileLock
from tqdm.auto import tqdm

from localml_kit import config, errors, samples

__all__ = [
    "GGUF_ARCHITECTURES",
    "HF_ARCHITECTURES",
    "PRECISIONS",
    "Chat",
    "Fidelity",
    "Reply",
    "bench",
    "build",
    "default_precision",
    "fidelity",
    "resolve_model",
    "teacher_forced_logits",
]

# "gguf": the GGUF's own quantized blocks, carried into the ONNX model unchanged (GGUF
# sources only); "int4" / "int8" / "fp32": ONNX Runtime GenAI's builder from fp32 weights.
PRECISIONS = ("gguf", "int4", "int8", "fp32")
# GGUF architectures that transformers can read and the ONNX Runtime GenAI builder can build.
GGUF_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "nemotron")
# Hugging Face architectures the ONNX Runtime GenAI builder supports (decoder-only text models).
HF_ARCHITECTURES = (
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Phi3ForCausalLM",
    "PhiForCausalLM",
    "GemmaForCausalLM",
    "Gemma2ForCausalLM",
    "Gemma3ForCausalLM",
    "GraniteForCausalLM",
    "OlmoForCausalLM",
    "NemotronForCausalLM",
    "SmolLM3ForCausalLM",
)


def _digest(path: Path) -> str:
    """A cache key for a source: its absolute path, size and modification time."""
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    h = hashlib.sha256(str(path.resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise errors.ConfigError(
            f"precision {precision!r} is not one of {', '.join(PRECISIONS)}; choose one of those."
        )


def _run_step(args: list[str], what: str, log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "localml_kit.slm._build", *args], stdout=out, stderr=out
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise errors.SampleBuildError(f"{what} failed ({tail[0][:300]}); the full log is in {log}.")


def _gguf_architecture(path: Path) -> str:
    from localml_kit import graph

    summary = graph.summarize(path)
    return summary.architecture or "unknown"


def _hf_architecture(folder: Path) -> str:
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        raise errors.ModelFormatError(
            f"{folder} has no readable config.json: it is not a Hugging Face model folder."
        ) from None
    return str((cfg.get("architectures") or ["unknown"])[0])


def build(
    source: str | os.PathLike[str],
    precision: str | None = None,
    *,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """An ONNX Runtime GenAI model folder for ``source`` at ``precision`` (built once, cached).

    ``source`` is a GGUF file, a Hugging Face folder (config.json and weights),
    an ONNX Runtime GenAI folder (returned as is) or a sample name. GGUF goes
    GGUF -> Hugging Face fp32 -> ONNX, offline, each step in a child process;
    the result is cached under the kit home.

    Precisions: ``"gguf"`` keeps a GGUF's own quantized blocks (Q4_0, Q4_1,
    Q5_0, Q5_1, Q8_0) as ONNX Runtime block-quantized weights, without
    re-quantizing, so the model computes with exactly the GGUF's weights;
    ``"int4"``, ``"int8"`` and ``"fp32"`` are the GenAI builder's from fp32
    weights (int4 re-quantizes a GGUF's blocks a second time). The default is
    ``"gguf"`` for GGUF sources and ``"int4"`` otherwise.

    Example:
        >>> build("smollm2-135m-instruct", "int8").name  # doctest: +SKIP
        'onnx-int8'
    """
    precision = precision or default_precision(source)
    _check_precision(precision)
    text = os.fspath(source)
    name = text.partition(":")[0]
    if not Path(text).exists() and name in samples.names():
        sample = samples.get(name)
        variant = f"onnx-{precision}"
        if variant not in sample.variants:
            raise errors.ModelFormatError(
                f"sample {name!r} is not a language model with a {precision} build; "
                "language-model samples: smollm2-135m-instruct."
            )
        return samples.fetch(name, variant, progress=progress)
    path = Path(text).expanduser()
    if not path.exists():
        raise errors.ModelNotFoundError(
            f"no model at {text!r}: give a .gguf file, a Hugging Face folder, an ONNX Runtime "
            f"GenAI folder or a sample name ({', '.join(samples.names())})."
        )
    if path.is_dir() and (path / "genai_config.json").is_file():
        return path
    if path.is_file() and path.suffix.lower() != ".gguf":
        raise errors.ModelFormatError(
            f"{path} is not a GGUF file; slm.build takes a .gguf file, a Hugging Face folder or "
            "an ONNX Runtime GenAI folder."
        )
    if path.is_file():
        arch = _gguf_architecture(path)
        if arch not in GGUF_ARCHITECTURES:
            raise errors.ModelFormatError(
                f"{path.name} is a GGUF of architecture {arch!r}, which this path cannot build; "
                f"supported GGUF architectures: {', '.join(GGUF_ARCHITECTURES)}."
            )
    else:
        if precision == "gguf":
            raise errors.ModelFormatError(
                f"precision 'gguf' carries a GGUF file's quantized blocks, and {path.name} is a "
                "Hugging Face folder; give the .gguf file, or choose int4, int8 or fp32."
            )
        arch = _hf_architecture(path)
        if arch not in HF_ARCHITECTURES:
            raise errors.ModelFormatError(
                f"{path.name} is a {arch}, which ONNX Runtime GenAI's builder does not build; "
                f"supported: {', '.join(HF_ARCHITECTURES)}."
            )

    root = config.home() / "slm" / f"{path.stem}-{_digest(path)}"
    out = root / f"onnx-{precision}"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock")):
        if force:
            shutil.rmtree(out, ignore_errors=True)
        if (out / "genai_config.json").is_file():
            return out
        log = root / "build.log"
        steps = (2 if path.is_file() else 1) + (precision == "gguf")
        with tqdm(total=steps, desc=f"build {path.name} {precision}", disable=not progress) as bar:
            hf = path
            if path.is_file():
                hf = root / "hf-fp32"
                if not (hf / "config.json").is_file():
                    bar.set_postfix_str("GGUF -> Hugging Face fp32")
                    staging = root / ".staging-hf"
                    shutil.rmtree(staging, ignore_errors=True)
                    _run_step(["gguf-to-hf", str(path), str(staging)], "GGUF -> HF", log)
                    staging.rename(hf)
                bar.update(1)
            built = precision if precision != "gguf" else "fp32"
            target = root / f"onnx-{built}"
            if not (target / "genai_config.json").is_file():
                bar.set_postfix_str(f"Hugging Face -> ONNX {built}")
                staging = root / f".staging-{built}"
                shutil.rmtree(staging, ignore_errors=True)
                _run_step(["hf-to-genai", str(hf), str(staging), built], "HF -> ONNX", log)
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            bar.update(1)
            if precision == "gguf":
                bar.set_postfix_str("GGUF blocks -> ONNX")
                staging = root / ".staging-gguf"
                shutil.rmtree(staging, ignore_errors=True)
                _run_step(
                    ["carry-blocks", str(path), str(target), str(staging)], "GGUF blocks", log
                )
                staging.rename(out)
                bar.update(1)
    return out


def default_precision(source: str | os.PathLike[str]) -> str:
    """The precision ``build`` uses when none is given: "gguf" for a .gguf file, else "int4".

    Example:
        >>> default_precision("model.Q4_K_M.gguf")
        'gguf'
    """
    return "gguf" if os.fspath(source).lower().endswith(".gguf") else "int4"


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """The ONNX Runtime GenAI folder for ``model``: a folder, a sample name[:variant] or a source.

    A sample name alone means its default (int4) build; ``name:onnx-int8`` picks
    another. GGUF files are built with their own blocks ("gguf") and Hugging Face
    folders at int4 (cached).

    Example:
        >>> resolve_model("smollm2-135m-instruct:onnx-fp32").name  # doctest: +SKIP
        'onnx-fp32'
    """
    text = os.fspath(model)
    name, _, variant = text.partition(":")
    if not Path(text).exists() and name in samples.names() and variant:
        if not variant.startswith("onnx-"):
            raise errors.ModelFormatError(
                f"{text!r}: chat needs an ONNX Runtime GenAI build (onnx-gguf, onnx-int4, "
                f"onnx-int8 or onnx-fp32), not the {variant!r} variant."
            )
        return build(name, variant.removeprefix("onnx-"), progress=False)
    return build(text, progress=False)


@dataclass
class Reply:
    """One reply and how it ran."""

    text: str
    prompt_tokens: int
    new_tokens: int
    time_to_first_token_s: float
    decode_tokens_per_s: float
    total_s: float
    peak_rss_mb: float
    finish_reason: str  # "eos", "length" or "stopped"
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stats_line(self) -> str:
        """A one-line summary, e.g. for a status bar."""
        return (
            f"{self.prompt_tokens} prompt tokens · first token {self.time_to_first_token_s * 1e3:.0f} ms"
            f" · {self.new_tokens} tokens at {self.decode_tokens_per_s:.1f} tok/s · "
            f"{self.total_s:.2f} s · peak RSS {self.peak_rss_mb:.0f} MB · {self.finish_reason}"
        )


class _PeakRSS:
    """Samples this process's RSS in a thread while a reply is generated."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self._proc = psutil.Process()
        self._interval = interval_s
        self.peak = self._proc.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


class Chat:
    """A conversation with a local language model (ONNX Runtime GenAI), streamed and measured.

    ``model`` is a sample name (``smollm2-135m-instruct``, ``...:onnx-int8``), an
    ONNX Runtime GenAI folder, a GGUF file or a Hugging Face folder (built at
    int4 on first use). ``threads`` sets the decoder's intra-op threads (default:
    one per physical core); thread spinning is off.

    Example:
        >>> chat = Chat("smollm2-135m-instruct", threads=2)  # doctest: +SKIP
        >>> for piece in chat.stream("Name three colours."):  # doctest: +SKIP
        ...     print(piece, end="")
        >>> chat.last.stats_line()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "smollm2-135m-instruct",
        *,
        threads: int | None = None,
        system_prompt: str | None = None,
    ) -> None:
        import onnxruntime_genai as og

        self.path = resolve_model(model)
        self.threads = threads or psutil.cpu_count(logical=False) or 1
        cfg = og.Config(str(self.path))
        # Keys GenAI does not know are passed to ONNX Runtime as session config entries.
        options = {"intra_op_num_threads": self.threads, "session.intra_op.allow_spinning": "0"}
        cfg.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self._og = og
        self.model = og.Model(cfg)
        self.tokenizer = og.Tokenizer(self.model)
        genai = json.loads((self.path / "genai_config.json").read_text())
        self.context_length = int(genai["model"].get("context_length", 2048))
        self.history: list[dict[str, str]] = []
        if system_prompt:
            self.history.append({"role": "system", "content": system_prompt})
        self.last: Reply | None = None
        self._stop = threading.Event()

    def reset(self) -> None:
        """Forget the conversation (keeps a system prompt)."""
        self.history = [m for m in self.history if m["role"] == "system"]

    def stop(self) -> None:
        """Ask the reply being generated to stop after its current token (thread-safe)."""
        self._stop.set()

    def prompt_ids(self, prompt: str) -> list[int]:
        """The token ids the model sees for ``prompt`` after the history, with the chat template."""
        messages = [*self.history, {"role": "user", "content": prompt}]
        text = self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        return [int(t) for t in self.tokenizer.encode(text)]

    def token_pieces(self, prompt: str) -> list[tuple[int, str]]:
        """The (id, text) of every token the model sees for ``prompt`` (special tokens as ``<id>``).

        Example:
            >>> chat.token_pieces("Hi")[-3:]  # doctest: +SKIP
        """
        pieces = []
        for token in self.prompt_ids(prompt):
            text = self.tokenizer.decode([token])
            pieces.append((token, text if text and "\ufffd" not in text else f"<special {token}>"))
        return pieces

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 128,
        greedy: bool = True,
        temperature: float = 0.7,
        top_p: float = 0.9,
        top_k: int = 50,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Generate a reply to ``prompt``, yielding text pieces as they come.

        When the generator ends, the reply joins the history and ``self.last``
        holds its text and stats. ``stop()`` (from another thread, or breaking
        out of the loop) ends it early and keeps the partial text.
        """
        if not prompt or not prompt.strip():
            raise errors.ConfigError("the prompt is empty: type a question or an instruction.")
        if max_new_tokens < 1:
            raise errors.ConfigError(f"max_new_tokens must be at least 1, not {max_new_tokens}.")
        ids = self.prompt_ids(prompt)
        if len(ids) + max_new_tokens > self.context_length:
            raise errors.ConfigError(
                f"the prompt is {len(ids)} tokens (with the conversation so far) and "
                f"{max_new_tokens} new tokens would exceed the model's context of "
                f"{self.context_length} tokens; shorten it or call reset()."
            )
        og = self._og
        params = og.GeneratorParams(self.model)
        search: dict[str, Any] = {"max_length": len(ids) + max_new_tokens, "do_sample": not greedy}
        if not greedy:
            search.update(temperature=temperature, top_p=top_p, top_k=top_k)
            if seed is not None:
                search["random_seed"] = seed
        params.set_search_options(**search)
        self._stop.clear()
        pieces: list[str] = []
        reason = "length"
        first = 0.0
        count = 0
        start = time.perf_counter()
        with _PeakRSS() as rss:
            generator = og.Generator(self.model, params)
            decoder = self.tokenizer.create_stream()
            try:
                generator.append_tokens(ids)
                eos = set(self.tokenizer.eos_token_ids)
                while not generator.is_done():
                    if self._stop.is_set():
                        reason = "stopped"
                        break
                    generator.generate_next_token()
                    token = int(generator.get_next_tokens()[0])
                    count += 1
                    if count == 1:
                        first = time.perf_counter() - start
                    if token in eos:
                        reason = "eos"
                        break
                    piece = decoder.decode(token)
                    pieces.append(piece)
                    if piece:
                        yield piece
                else:
                    reason = "eos" if count < max_new_tokens else "length"
            except GeneratorExit:
                reason = "stopped"
                raise
            finally:
                total = time.perf_counter() - start
                del generator
                text = "".join(pieces)
                decode_time = total - first
                self.last = Reply(
                    text=text,
                    prompt_tokens=len(ids),
                    new_tokens=count,
                    time_to_first_token_s=first,
                    decode_tokens_per_s=(count - 1) / decode_time
                    if count > 1 and decode_time > 0
                    else 0.0,
                    total_s=total,
                    peak_rss_mb=rss.peak / 1e6,
                    finish_reason=reason,
                    settings={
                        "model": str(self.path),
                        "threads": self.threads,
                        "max_new_tokens": max_new_tokens,
                        "greedy": greedy,
                        **(
                            {}
                            if greedy
                            else {"temperature": temperature, "top_p": top_p, "top_k": top_k}
                        ),
                    },
                )
                self.history += [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": text},
                ]

    def send(
        self,
        prompt: str,
        *,
        on_text: Callable[[str], None] | None = None,
        **options: Any,
    ) -> Reply:
        """Generate a whole reply (calling ``on_text`` with each piece) and return it.

        Example:
            >>> chat.send("Say hi.", max_new_tokens=8).finish_reason  # doctest: +SKIP
            'eos'
        """
        for piece in self.stream(prompt, **options):
            if on_text is not None:
                on_text(piece)
        assert self.last is not None
        return self.last


# ---- fidelity -----------------------------------------------------------------------------------

DEFAULT_PROMPTS = (
    "Explain photosynthesis in simple terms.",
    "Write a short email asking a colleague to review a document.",
    "What are three tips for learning a new language?",
    "Describe how a bicycle works.",
)


def _load_model(path: Path, threads: int) -> Any:
    import onnxruntime_genai as og

    cfg = og.Config(str(path))
    options = {"intra_op_num_threads": threads, "session.intra_op.allow_spinning": "0"}
    cfg.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    return og.Model(cfg)


def teacher_forced_logits(model: Any, token_ids: list[int]) -> Any:
    """Logits at every position of ``token_ids`` in one forward pass (numpy [len, vocab]).

    ``model`` is an ``onnxruntime_genai.Model``.
    """
    import numpy as np
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(token_ids) + 1, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(token_ids)
    logits = np.array(generator.get_output("logits"))[0]
    del generator
    return logits


@dataclass
class Fidelity:
    """Teacher-forced next-token agreement and mean KL of a candidate against a reference."""

    candidate: str
    reference: str
    agreement: float
    mean_kl: float
    positions: int
    per_prompt: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fidelity(
    candidate: str | os.PathLike[str],
    reference: str | os.PathLike[str] = "smollm2-135m-instruct:onnx-fp32",
    *,
    prompts: tuple[str, ...] | list[str] = DEFAULT_PROMPTS,
    max_new_tokens: int = 64,
    threads: int | None = None,
    progress: bool = True,
) -> Fidelity:
    """How often ``candidate`` picks the reference's next token, with the reference's text as input.

    For each prompt the reference generates ``max_new_tokens`` greedy tokens;
    both models then read prompt + continuation in one teacher-forced pass and
    their next-token choices over the continuation are compared (top-1
    agreement) along with the mean KL divergence of their distributions.
    Exact generated text is the wrong test: greedy near-ties flip between
    engines and one flip changes all the text after it.

    Example:
        >>> fidelity("smollm2-135m-instruct:onnx-int8").agreement  # doctest: +SKIP
        0.95
    """
    from localml_kit.compare import token_agreement

    threads = threads or psutil.cpu_count(logical=False) or 1
    ref_chat = Chat(reference, threads=threads)
    cand_path = resolve_model(candidate)
    cand_model = _load_model(cand_path, threads)
    rows = []
    ref_all, cand_all = [], []
    for prompt in tqdm(prompts, desc="teacher-forced prompts", disable=not progress):
        ref_chat.reset()
        ids = ref_chat.prompt_ids(prompt)
        continuation = _greedy_ids(ref_chat, prompt, max_new_tokens)
        seq = ids + continuation
        span = slice(len(ids) - 1, len(seq) - 1)  # positions that predict the continuation
        ref_logits = teacher_forced_logits(ref_chat.model, seq)[span]
        cand_logits = teacher_forced_logits(cand_model, seq)[span]
        stats = token_agreement(ref_logits, cand_logits)
        rows.append(
            {
                "prompt": prompt,
                "positions": stats.positions,
                "agreement": stats.agreement,
                "mean_kl": stats.mean_kl,
            }
        )
        ref_all.append(ref_logits)
        cand_all.append(cand_logits)
    total = token_agreement(ref_all, cand_all)
    return Fidelity(
        candidate=str(cand_path),
        reference=str(ref_chat.path),
        agreement=total.agreement,
        mean_kl=total.mean_kl,
        positions=total.positions,
        per_prompt=rows,
    )


def _greedy_ids(chat: Chat, prompt: str, max_new_tokens: int) -> list[int]:
    import onnxruntime_genai as og

    ids = chat.prompt_ids(prompt)
    params = og.GeneratorParams(chat.model)
    params.set_search_options(max_length=len(ids) + max_new_tokens, do_sample=False)
    generator = og.Generator(chat.model, params)
    generator.append_tokens(ids)
    while not generator.is_done():
        generator.generate_next_token()
    out = [int(t) for t in generator.get_sequence(0)][len(ids) :]
    del generator
    return out


# ---- benchmark ----------------------------------------------------------------------------------

BENCH_PROMPT = "Explain in a few paragraphs how a small language model can run on a laptop."


def _bench_child(
    engine: str,
    model: Path,
    ids: list[int],
    max_new: int,
    threads: int,
    spinning: bool = True,
    out: Path | None = None,
) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="localml-slm-") as tmp:
        prompt = Path(tmp) / "prompt.json"
        prompt.write_text(json.dumps(ids))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "localml_kit.slm._bench",
                engine,
                str(model),
                str(prompt),
                str(out) if out is not None else str(max_new),
                str(threads),
                *([] if spinning else ["nospin"]),
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last[:300]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _llama_cpp_logits(gguf: Path, seq: list[int], threads: int) -> Any:
    """llama.cpp's teacher-forced logits over ``seq``, computed in a child process."""
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="localml-slm-") as tmp:
        out = Path(tmp) / "logits.npy"
        figures = _bench_child("llama-cpp-logits", gguf, seq, 0, threads, out=out)
        if "error" in figures:
            raise errors.ProfileRunError(
                f"llama.cpp could not score the sequence: {figures['error']}"
            )
        return np.load(out)


def _median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each timing over repeated runs; the largest peak RSS."""
    import statistics

    keys = ("decode_tokens_per_s", "time_to_first_token_s", "load_s")
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    out["prompt_tokens"] = runs[0]["prompt_tokens"]
    out["new_tokens"] = runs[0]["new_tokens"]
    return out


def bench(
    model: str = "smollm2-135m-instruct",
    precisions: tuple[str, ...] = PRECISIONS,
    *,
    prompt: str = BENCH_PROMPT,
    max_new_tokens: int = 128,
    threads: int = 2,
    llama_cpp: bool = True,
    repeats: int = 1,
    spinning: bool = True,
    progress: bool = True,
) -> Any:
    """Decode tokens/s, time to first token, peak RSS and fidelity per precision.

    Each engine generates ``max_new_tokens`` greedy tokens for the same prompt in a
    fresh process, ``repeats`` times in turn (engines interleaved, so a busy
    moment of the machine does not favour one); the row holds the medians and
    the largest peak RSS. ONNX Runtime's threads spin while waiting for work,
    as llama.cpp's do (``spinning=False`` lets them sleep, as ``Chat`` does).
    Fidelity is teacher-forced top-1 agreement and mean KL against the fp32
    build over the fp32 build's own continuation. llama.cpp runs on the
    sample's GGUF when ``llama-cpp-python`` is installed (the kit installs
    nothing). Returns a DataFrame, one row per engine.

    Example:
        >>> bench(precisions=("int4",), max_new_tokens=32)  # doctest: +SKIP
    """
    import importlib.util

    import pandas as pd

    from localml_kit.compare import token_agreement

    name = model.partition(":")[0]
    for precision in precisions:
        _check_precision(precision)
    folders = {p: build(name, p, progress=progress) for p in dict.fromkeys(("fp32", *precisions))}
    reference = _load_model(folders["fp32"], threads)
    tokenizer = __import__("onnxruntime_genai").Tokenizer(reference)
    text = tokenizer.apply_chat_template(
        json.dumps([{"role": "user", "content": prompt}]), add_generation_prompt=True
    )
    ids = [int(t) for t in tokenizer.encode(text)]
    rows: list[dict[str, Any]] = []
    ref_seq: list[int] | None = None
    ref_logits: Any = None
    engines: list[tuple[str, str, Path]] = [
        ("onnxruntime-genai", p, folders[p]) for p in precisions
    ]
    has_llama = importlib.util.find_spec("llama_cpp") is not None
    if llama_cpp and name in samples.names() and "gguf" in samples.get(name).variants:
        engines.append(("llama.cpp", "gguf", samples.path(name, "gguf")))
    runs: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(engines))}
    for _ in tqdm(range(repeats), desc="rounds", disable=not progress or repeats == 1):
        for i, (engine, _precision, path) in enumerate(engines):
            if engine == "llama.cpp" and not has_llama:
                continue
            kind = "genai" if engine != "llama.cpp" else "llama-cpp"
            runs[i].append(_bench_child(kind, path, ids, max_new_tokens, threads, spinning))
    for i, (engine, precision, path) in enumerate(engines):
        row: dict[str, Any] = {"engine": engine, "precision": precision}
        if engine == "llama.cpp" and not has_llama:
            row["error"] = "llama-cpp-python is not installed (pip install llama-cpp-python)"
            rows.append(row)
            continue
        failed = [r["error"] for r in runs[i] if "error" in r]
        if failed:
            row["error"] = failed[0]
            rows.append(row)
            continue
        row.update(_median_figures(runs[i]))
        row["runs"] = len(runs[i])
        tokens = runs[i][0]["tokens"]
        if engine != "llama.cpp":
            if ref_seq is None:
                fp32 = (
                    tokens
                    if precision == "fp32"
                    else _bench_child("genai", folders["fp32"], ids, max_new_tokens, threads)[
                        "tokens"
                    ]
                )
                ref_seq = ids + fp32
                ref_logits = teacher_forced_logits(reference, ref_seq)[len(ids) - 1 : -1]
            cand = _load_model(path, threads) if precision != "fp32" else reference
            logits = teacher_forced_logits(cand, ref_seq)[len(ids) - 1 : -1]
            stats = token_agreement(ref_logits, logits)
            row.update(agreement=stats.agreement, mean_kl=stats.mean_kl)
        rows.append(row)
    llama_rows = [r for r in rows if r["engine"] == "llama.cpp" and "error" not in r]
    if llama_rows and ref_seq is not None:
        logits = _llama_cpp_logits(samples.path(name, "gguf"), ref_seq, threads)
        stats = token_agreement(ref_logits, logits[len(ids) - 1 : -1])
        llama_rows[0].update(agreement=stats.agreement, mean_kl=stats.mean_kl)
    columns = [
        "engine",
        "precision",
        "decode_tokens_per_s",
        "time_to_first_token_s",
        "peak_rss_mb",
        "load_s",
        "agreement",
        "mean_kl",
        "prompt_tokens",
        "new_tokens",
        "runs",
        "error",
    ]
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=[c for c in columns if c in frame.columns])
