"""Run a small language model (SLM) locally with ONNX Runtime GenAI: build it, chat, measure.

``build`` turns a GGUF file, a Hugging Face folder or a sample into an ONNX
Runtime GenAI model folder (cached; the conversion itself is
``localml_kit.conversion``). ``Chat`` holds a conversation with the model's
chat template, streams each reply token by token, and measures it: prompt
tokens, time to first token, decode tokens/s, total time, peak RSS.
``fidelity`` scores a build against a reference by teacher-forced next-token
agreement; ``bench`` measures every precision (and llama.cpp) side by side.

Example:
    >>> from localml_kit import slm
    >>> chat = slm.Chat("smollm2-135m-instruct")
    >>> reply = chat.send("What is an SLM?", max_new_tokens=16)
    >>> reply.new_tokens, reply.finish_reason, reply.decode_tokens_per_s > 0
    (16, 'length', True)
    >>> chat.history[-1] == {"role": "assistant", "content": reply.text}
    True
"""

from __future__ import annotations

from localml_kit.conversion import GGUF_ARCHITECTURES, HF_ARCHITECTURES, PRECISIONS
from localml_kit.slm._benchmark import BENCH_PROMPT as BENCH_PROMPT
from localml_kit.slm._benchmark import bench
from localml_kit.slm._chat import Chat, Reply
from localml_kit.slm._fidelity import DEFAULT_PROMPTS as DEFAULT_PROMPTS
from localml_kit.slm._fidelity import Fidelity, fidelity, teacher_forced_logits
from localml_kit.slm._resolve import build, default_precision, resolve_model

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
