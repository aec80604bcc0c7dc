"""Measure the zoo's in-memory table and the ZooBrowser's redraw on synthetic model cards.

Usage:
    python benchmarks/zoo.py                 # every table below
    python benchmarks/zoo.py --cards 100000 --repeat 15

Tables (Markdown on stdout, JSON in benchmarks/results/zoo.json):

1. cards_frame: building the DataFrame from ``--cards`` ModelCards (memory
   estimate and fit included), median of a few builds.
2. filter_cards: several filter and sort combinations over that frame, median
   of ``--repeat`` calls each (goal: 100 ms or less for 100,000 cards).
3. ZooBrowser: 1,000 results; time from setting a control's value to the table
   HTML updated (the redraw is synchronous), median of ``--repeat`` changes.

The cards are synthetic but shaped like the Hub's: organisation/model ids from a
vocabulary, power-law downloads and likes, log-uniform sizes with some unknown,
formats, tasks, licences and tags in realistic proportions. Needs no network.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from localml_kit import hardware
from localml_kit.zoo._card import CardFile, ModelCard
from localml_kit.zoo._table import cards_frame, filter_cards

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

ORGS = [
    "meta-llama",
    "Qwen",
    "microsoft",
    "google",
    "HuggingFaceTB",
    "mistralai",
    "bartowski",
    "TheBloke",
    "onnx-community",
    "onnxmodelzoo",
    "sentence-transformers",
    "unsloth",
]
FAMILIES = [
    "Llama-3.2",
    "Qwen2.5",
    "Phi-3-mini",
    "gemma-2",
    "SmolLM2",
    "Mistral",
    "resnet",
    "bert-base",
    "all-MiniLM",
    "whisper",
    "yolo",
    "vit-base",
    "t5-small",
    "deepseek",
]
SIZES = ["135M", "360M", "0.5B", "1B", "1.5B", "1.7B", "3B", "7B", "8B", "14B", "70B"]
VARIANTS = ["Instruct", "Chat", "Base", "GGUF", "ONNX", "int4", "q4_k_m", "fp16", "AWQ"]
FORMATS = ["safetensors"] * 5 + ["gguf"] * 3 + ["onnx"] * 2 + ["pytorch", "tflite", None]
TASKS = ["text-generation"] * 6 + [
    "feature-extraction",
    "image-classification",
    "automatic-speech-recognition",
    "object-detection",
    "sentence-similarity",
    None,
]
LICENSES = ["apache-2.0", "mit", "llama3.2", "other", "cc-by-nc-4.0", "gemma", None]
SOURCES = ["hub"] * 8 + ["onnx-zoo", "cache", "ollama", "local"]
QUANTS = ["q4_k_m", "q8_0", "q4_0", "fp16", "int4", "int8", None]


def synthetic_cards(count: int, seed: int = 0) -> list[ModelCard]:
    """``count`` Hub-like model cards (seeded, so every run measures the same data)."""
    rng = random.Random(seed)
    cards = []
    for i in range(count):
        family, size, variant = rng.choice(FAMILIES), rng.choice(SIZES), rng.choice(VARIANTS)
        fmt = rng.choice(FORMATS)
        params = int(float(size[:-1]) * (1e9 if size.endswith("B") else 1e6))
        size_bytes = None if rng.random() < 0.1 else int(10 ** rng.uniform(5, 11))
        cards.append(
            ModelCard(
                id=f"{rng.choice(ORGS)}/{family}-{size}-{variant}-{i}",
                source=rng.choice(SOURCES),
                task=rng.choice(TASKS),
                format=fmt,
                size_bytes=size_bytes,
                parameters=params if rng.random() < 0.6 else None,
                quantization=rng.choice(QUANTS) if fmt == "gguf" else None,
                license=rng.choice(LICENSES),
                downloads=None if rng.random() < 0.05 else int(rng.paretovariate(0.6)),
                likes=int(rng.paretovariate(0.9)) - 1,
                tags=tuple(
                    rng.sample(
                        [
                            "conversational",
                            "text-generation-inference",
                            "llama",
                            "onnx",
                            "gguf",
                            "en",
                            "vision",
                            "code",
                            "math",
                        ],
                        3,
                    )
                ),
                files=(CardFile("config.json", 700), CardFile(f"model.{fmt or 'bin'}", size_bytes)),
                config={"num_hidden_layers": 24, "num_key_value_heads": 4, "head_dim": 64}
                if rng.random() < 0.3
                else {},
            )
        )
    return cards


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


FILTERS: dict[str, dict[str, Any]] = {
    "no filter, sort by downloads": {},
    "text 'instruct'": {"text": "instruct"},
    "text 'qwen2.5 0.5b' + format gguf": {"text": "qwen2.5 0.5b", "format": "gguf"},
    "hub + text-generation + <= 2 GB + fits, sort size asc": {
        "sources": "hub",
        "task": "text-generation",
        "max_size": 2 * 10**9,
        "fits_only": True,
        "sort": "size_bytes",
        "descending": False,
    },
    "sort by name (text) asc": {"sort": "id", "descending": False},
    "sort by task (text, few values)": {"sort": "task", "descending": False},
    "sort by fit": {"sort": "fit", "descending": False},
    "sort by memory, first 50": {"sort": "memory_bytes", "limit": 50},
}


def table_benchmarks(count: int, repeat: int) -> tuple[dict, list[dict]]:
    machine = hardware.report()
    cards = synthetic_cards(count)
    build = median_ms(lambda: cards_frame(cards, machine=machine), max(3, repeat // 5))
    frame = cards_frame(cards, machine=machine)
    rows = []
    for name, options in FILTERS.items():
        kept = len(filter_cards(frame, **options))
        rows.append(
            {
                "filter": name,
                "rows": kept,
                "median_ms": median_ms(partial(filter_cards, frame, **options), repeat),
            }
        )
    return {"cards": count, "median_ms": build}, rows


def widget_benchmarks(count: int, repeat: int) -> list[dict]:
    from localml_kit.widgets import ZooBrowser

    cards = synthetic_cards(count, seed=1)
    rows = []
    for shown in (50, count):
        browser = ZooBrowser(cards=cards, rows=shown, netron=False)
        # Each control flips between two values, so every set is a real change.
        changes = {
            "source dropdown": (browser.source, ("hub", "any")),
            "sort dropdown": (browser.sort, ("size", "downloads")),
            "fits toggle": (browser.fits, (True, False)),
            "text filter": (browser.query, ("llama", "")),
            "max size slider": (browser.max_size, ("1 GB", "any")),
            "context length": (browser.context, (8192, 4096)),
        }
        for name, (control, values) in changes.items():
            times = []
            for i in range(repeat):
                start = time.perf_counter()
                control.value = values[i % 2]
                times.append(time.perf_counter() - start)
            rows.append(
                {
                    "change": name,
                    "rows_drawn": shown,
                    "results": count,
                    "median_ms": statistics.median(times) * 1e3,
                }
            )
        browser.close()
    return rows


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = [
        "| " + " | ".join(format(row[key], fmt) for key, _, fmt in columns) + " |" for row in rows
    ]
    return "\n".join([head, rule, *body])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cards", type=int, default=100_000, help="cards for the table benchmarks")
    parser.add_argument("--widget-cards", type=int, default=1_000, help="results in the browser")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)

    build, filters = table_benchmarks(args.cards, args.repeat)
    print(f"## cards_frame: {args.cards:,} cards\n")
    print(f"median build: {build['median_ms']:.0f} ms\n")
    print(f"## filter_cards on {args.cards:,} cards (median of {args.repeat}; goal <= 100 ms)\n")
    print(
        table(
            filters,
            [
                ("filter", "filter", ""),
                ("rows", "rows kept", ","),
                ("median_ms", "median ms", ".1f"),
            ],
        )
    )
    redraws = widget_benchmarks(args.widget_cards, args.repeat)
    print(f"\n## ZooBrowser redraw, {args.widget_cards:,} results (median of {args.repeat})\n")
    print(
        table(
            redraws,
            [
                ("change", "control changed", ""),
                ("rows_drawn", "rows drawn", ","),
                ("median_ms", "value set -> table HTML ms", ".1f"),
            ],
        )
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "zoo.json").write_text(
        json.dumps({"cards_frame": build, "filter_cards": filters, "widget": redraws}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
