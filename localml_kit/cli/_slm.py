"""``localml-kit slm chat`` and ``localml-kit slm bench``."""

from __future__ import annotations

import argparse
import json
import sys

from localml_kit.cli._common import (
    bounded_float,
    check_writable,
    count_int,
    positive_int,
    safe,
    threads_int,
    write_text,
)

NAME = "slm"


_probability = bounded_float("top-p", 0.0, 1.0, low_open=True)
_temperature = bounded_float("the temperature", 0.0, 100.0, low_open=True)


def add_parser(sub: argparse._SubParsersAction) -> None:
    slm = sub.add_parser(
        NAME, help="chat with a small language model on this machine; benchmark it"
    )
    slm_sub = slm.add_subparsers(dest="slm_command", required=True, metavar="ACTION")
    chat = slm_sub.add_parser(
        "chat", help="one reply with --prompt, or an interactive chat (empty line or Ctrl-D ends)"
    )
    chat.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="a sample name[:onnx-int8|onnx-fp32], an ONNX Runtime GenAI folder, a .gguf or HF folder",
    )
    chat.add_argument("--prompt", default=None, help="answer this one prompt and exit")
    chat.add_argument("--max-tokens", type=positive_int, default=256, help="new tokens per reply")
    chat.add_argument("--threads", type=threads_int, default=None, help="intra-op threads")
    chat.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    chat.add_argument("--temperature", type=_temperature, default=0.7, help="> 0 (0.7)")
    chat.add_argument("--top-p", type=_probability, default=0.9, help="in (0, 1] (0.9)")
    chat.add_argument("--top-k", type=count_int, default=50, help=">= 0; 0 means no limit (50)")
    chat.add_argument("--stats", action="store_true", help="print each reply's stats on stderr")
    bench = slm_sub.add_parser(
        "bench", help="decode tok/s, first token, peak RSS and fidelity per precision"
    )
    bench.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="a language-model sample, a .gguf file (llama.cpp runs on it too) or an HF folder",
    )
    bench.add_argument("--max-tokens", type=positive_int, default=128)
    bench.add_argument("--threads", type=threads_int, default=2)
    bench.add_argument(
        "--precisions",
        default="gguf,int4,int8,fp32",
        help="comma-separated: gguf (the GGUF's own blocks),int4,int8,fp32",
    )
    bench.add_argument("--repeats", type=positive_int, default=1, help="runs per engine (medians)")
    bench.add_argument(
        "--no-spinning", action="store_true", help="let ONNX Runtime's threads sleep between ops"
    )
    bench.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp")
    bench.add_argument(
        "--json", dest="json_out", default=None, metavar="OUT", help="also write JSON"
    )


def run(args: argparse.Namespace) -> int:
    from localml_kit import slm

    if args.slm_command == "bench":
        out = check_writable(args.json_out, "--json")
        table = slm.bench(
            args.model,
            tuple(p.strip() for p in args.precisions.split(",") if p.strip()),
            max_new_tokens=args.max_tokens,
            threads=args.threads,
            llama_cpp=not args.no_llama_cpp,
            repeats=args.repeats,
            spinning=not args.no_spinning,
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        if out is not None:
            text = json.dumps(json.loads(table.to_json(orient="records")), indent=2)
            write_text(out, text, "--json")
        return 0

    chat = slm.Chat(args.model, threads=args.threads)
    options = {
        "max_new_tokens": args.max_tokens,
        "greedy": not args.sample,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
    }

    def answer(prompt: str) -> None:
        for piece in chat.stream(prompt, **options):
            print(piece, end="", flush=True)
        print()
        if args.stats and chat.last is not None:
            print(chat.last.stats_line(), file=sys.stderr)

    if args.prompt is not None:
        answer(args.prompt)
        return 0
    print(f"chatting with {safe(chat.path)} (empty line or Ctrl-D to end)", file=sys.stderr)
    while True:
        try:
            prompt = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if not prompt.strip():
            return 0
        try:
            answer(prompt)
        except KeyboardInterrupt:  # Ctrl-C stops the reply, not the chat
            print("\n[stopped]", file=sys.stderr)
