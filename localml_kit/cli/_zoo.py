"""``localml-kit zoo search`` and ``localml-kit zoo fetch``."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from localml_kit.cli._common import positive_int, safe
from localml_kit.zoo._card import _human
from localml_kit.zoo._table import optional_int

NAME = "zoo"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from localml_kit.zoo._search import SOURCES
    from localml_kit.zoo._source import SORTS

    zoo = sub.add_parser(
        NAME, help="find models (Hub, ONNX Model Zoo, caches, stores) and fetch them"
    )
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    search = zoo_sub.add_parser(
        "search", help="search every source (or --source ones); notes say what was skipped"
    )
    search.add_argument("query", nargs="?", default="", metavar="QUERY")
    search.add_argument(
        "--source",
        dest="sources",
        action="append",
        default=None,
        metavar="S",
        help=f"a source to search (repeatable): {', '.join(SOURCES)}; default all",
    )
    search.add_argument("--task", default=None, help="e.g. text-generation, feature-extraction")
    search.add_argument("--format", default=None, help="e.g. onnx, gguf, safetensors")
    search.add_argument(
        "--limit", type=positive_int, default=50, help="at most this many per source"
    )
    search.add_argument("--sort", default="downloads", help=f"one of {', '.join(SORTS)}")
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fetch = zoo_sub.add_parser("fetch", help="get a model onto this machine; prints its path")
    fetch.add_argument(
        "id", metavar="ID", help="e.g. owner/name on the Hub, smollm2:135m in Ollama"
    )
    fetch.add_argument("--source", default="hub", help=f"one of {', '.join(SOURCES)}; default hub")
    fetch.add_argument(
        "--include",
        nargs="+",
        action="extend",
        default=None,
        metavar="PATTERN",
        help="only files matching these patterns, e.g. '*Q4_K_M.gguf'",
    )
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from localml_kit import zoo

    if args.zoo_command == "fetch":
        path = zoo.fetch(
            args.id, source=args.source, allow_patterns=args.include, progress=not args.quiet
        )
        print(path)
        return 0
    result = zoo.search(
        args.query,
        sources=args.sources,
        task=args.task,
        format=args.format,
        limit=args.limit,
        sort=args.sort,
    )
    frame = result.frame()
    if args.json:
        cards = []
        for card, memory, fit, gpu_fit in zip(
            result.cards, frame["memory_bytes"], frame["fit"], frame["gpu_fit"], strict=True
        ):
            data = card.to_dict()
            data["memory_bytes"] = optional_int(memory)
            data["fit"] = fit
            data["gpu_fit"] = None if pd.isna(gpu_fit) else gpu_fit
            cards.append(data)
        payload = {"cards": cards, "notes": result.notes, "offline": result.offline}
        print(json.dumps(payload, indent=2, default=str))
        return 0
    if result.cards:
        columns = ["id", "source", "format", "size_bytes", "parameters", "quantization", "fit"]
        if frame["gpu_fit"].notna().any():  # a GPU: its fit too
            columns.append("gpu_fit")
        table = frame[columns].rename(
            columns={"size_bytes": "size", "parameters": "params", "quantization": "quant"}
        )
        table = table.astype(object)
        table["size"] = [_human(optional_int(v)) or "-" for v in table["size"]]
        table["params"] = [_params(optional_int(v)) or "-" for v in table["params"]]
        print(safe(table.to_string(index=False, na_rep="-")))
    else:
        print("no models found")
    for note in result.notes:
        print(f"note: {safe(note)}")
    return 0


def _params(count: int | None) -> str | None:
    if count is None:
        return None
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)
