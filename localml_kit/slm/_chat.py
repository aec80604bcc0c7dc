"""``Chat``: a conversation with a local language model, streamed and measured; ``Reply``."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from localml_kit import _genai, errors, models
from localml_kit.slm._resolve import resolve_model
from localml_kit.slm._rss import PeakRSS


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


def default_threads() -> int:
    """One thread per physical core (at least one)."""
    return psutil.cpu_count(logical=False) or 1


class Chat:
    """A conversation with a local language model (ONNX Runtime GenAI), streamed and measured.

    ``model`` is a sample name (``smollm2-135m-instruct``, ``...:onnx-int8``), an
    ONNX Runtime GenAI folder, a GGUF file or a Hugging Face folder (built on
    first use: a GGUF with its own blocks, a Hugging Face folder at int4), or a
    :class:`~localml_kit.models.ModelRef`. ``threads`` sets the decoder's
    intra-op threads (default: one per physical core); thread spinning is off.

    Example:
        >>> chat = Chat("smollm2-135m-instruct", threads=2)
        >>> pieces = [piece for piece in chat.stream("Name three colours.", max_new_tokens=16)]
        >>> "".join(pieces) == chat.last.text  # the reply, piece by piece as it came
        True
        >>> chat.last.stats_line()
        '... prompt tokens · first token ... ms · ... tokens at ... tok/s · ... s · peak RSS ... MB · ...'
        >>> [message["role"] for message in chat.history]
        ['user', 'assistant']
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | models.ModelRef = "smollm2-135m-instruct",
        *,
        threads: int | None = None,
        system_prompt: str | None = None,
    ) -> None:
        if threads is not None and not 1 <= threads <= 1024:
            raise errors.ConfigError(f"threads must be between 1 and 1024, not {threads}.")
        self.path = resolve_model(model)
        self.threads = threads or default_threads()
        self.model = _genai.load_model(self.path, threads=self.threads)
        self.tokenizer = _genai.tokenizer(self.model)
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
        return _genai.chat_prompt_ids(
            self.tokenizer, [*self.history, {"role": "user", "content": prompt}]
        )

    def token_pieces(self, prompt: str) -> list[tuple[int, str]]:
        """The (id, text) of every token the model sees for ``prompt`` (special tokens as ``<id>``).

        Example:
            >>> chat = Chat("smollm2-135m-instruct", threads=2)
            >>> chat.token_pieces("Hi")[-6:]
            [(2, '<special 2>'), (198, '\\n'), (1, '<special 1>'), (520, 'ass'), (9531, 'istant'), (198, '\\n')]
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
        if not greedy:
            problems = []
            if not 0 < temperature <= 100:
                problems.append(f"temperature must be above 0, not {temperature}")
            if not 0 < top_p <= 1:
                problems.append(f"top_p is a probability in (0, 1], not {top_p}")
            if top_k < 0:
                problems.append(f"top_k must be 0 (no limit) or more, not {top_k}")
            if problems:
                raise errors.ConfigError("; ".join(problems) + ".")
        ids = self.prompt_ids(prompt)
        if len(ids) + max_new_tokens > self.context_length:
            raise errors.ConfigError(
                f"the prompt is {len(ids)} tokens (with the conversation so far) and "
                f"{max_new_tokens} new tokens would exceed the model's context of "
                f"{self.context_length} tokens; shorten it or call reset()."
            )
        search: dict[str, Any] = {"do_sample": not greedy}
        if not greedy:
            search.update(temperature=temperature, top_p=top_p, top_k=top_k)
            if seed is not None:
                search["random_seed"] = seed
        self._stop.clear()
        pieces: list[str] = []
        reason = "length"
        first = 0.0
        count = 0
        start = time.perf_counter()
        with PeakRSS() as rss:
            new_tokens = _genai.tokens(self.model, ids, max_new_tokens, **search)
            decoder = self.tokenizer.create_stream()
            try:
                eos = set(self.tokenizer.eos_token_ids)
                while True:
                    if self._stop.is_set():
                        reason = "stopped"
                        break
                    token = next(new_tokens, None)
                    if token is None:
                        reason = "eos" if count < max_new_tokens else "length"
                        break
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
            except GeneratorExit:
                reason = "stopped"
                raise
            finally:
                total = time.perf_counter() - start
                new_tokens.close()
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
            >>> chat = Chat("smollm2-135m-instruct", threads=2)
            >>> reply = chat.send("Say hi.", max_new_tokens=8)
            >>> reply.finish_reason, reply.new_tokens  # stopped at the limit, not at an end token
            ('length', 8)
        """
        for piece in self.stream(prompt, **options):
            if on_text is not None:
                on_text(piece)
        assert self.last is not None
        return self.last
