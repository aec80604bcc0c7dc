"""``localml-kit serve``: the sentence-search app as a web service on 127.0.0.1, or a ship folder."""

from __future__ import annotations

import argparse

from localml_kit.cli._common import port_int, positive_int, safe, threads_int

NAME = "serve"


def add_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        NAME,
        help="serve a sentence encoder on 127.0.0.1 (POST /embed, POST /search), or bundle it",
    )
    serve.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        default="all-minilm-l6-v2",
        help="a sentence encoder: .onnx path or sample name (default all-minilm-l6-v2)",
    )
    serve.add_argument("--int8", action="store_true", help="serve its int8 per-channel variant")
    serve.add_argument("--port", type=port_int, default=8000, help="0 picks a free port (8000)")
    serve.add_argument("--threads", type=threads_int, default=1, help="threads per request (1)")
    serve.add_argument("--max-texts", type=positive_int, default=32, help="texts per /embed (32)")
    serve.add_argument("--tokenizer", default=None, metavar="FILE", help="tokenizer.json")
    serve.add_argument(
        "--corpus", default=None, metavar="FILE", help="sentences for /search, one a line"
    )
    serve.add_argument(
        "--bundle",
        default=None,
        metavar="DIR",
        help="write a ship folder (model, tokenizer, ORT format, app.py, requirements) and exit",
    )


def run(args: argparse.Namespace) -> int:
    from localml_kit import errors, serve

    model = args.model
    if args.int8:
        from localml_kit import optimize

        model = optimize.quantize_int8(model, compare=True)  # the checklist shows the check
    if args.bundle is not None:
        ship = serve.bundle(model, args.bundle, tokenizer=args.tokenizer, max_texts=args.max_texts)
        print(f"wrote {safe(ship.folder)} ({ship.total_bytes / 1e6:,.1f} MB)")
        print(safe(ship.frame().to_string(index=False)))
        for item in ship.checklist:
            mark = "x" if item.done else " " if item.done is False else "?"
            print(f"[{mark}] {safe(item.item)}: {safe(item.detail)}")
        return 0
    service = serve.start(
        model,
        port=args.port,
        tokenizer=args.tokenizer,
        corpus=args.corpus,
        threads=args.threads,
        max_texts=args.max_texts,
    )
    try:
        print(
            f"serving {safe(service.model)} at {service.url} (pid {service.pid}, first answer "
            f"{service.cold_start_s:.2f} s after the start); POST /embed, POST /search, "
            "GET /health. Ctrl-C stops it.",
            flush=True,
        )
        code = service.wait()
        raise errors.ChildProcessFailedError(
            f"the service stopped by itself (exit code {code}): "
            f"{safe(' | '.join(service.log_tail(3).splitlines())) or 'no output'}"
        )
    finally:
        service.stop()
