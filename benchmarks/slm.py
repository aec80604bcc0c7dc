"""The SLM numbers: one back-to-back run per engine on the same prompt.

Usage:
    python benchmarks/slm.py [--max-tokens 128] [--threads 2] [--repeats 5] [--no-spinning]

ONNX Runtime GenAI builds of the SmolLM2 sample (gguf: the GGUF's own Q4_1 /
Q8_0 blocks carried over; int4, int8 and fp32: the GenAI builder's), and
llama.cpp on the sample's GGUF when ``llama-cpp-python`` is installed (this
script installs nothing). Each engine generates greedy tokens in a fresh
process, engines interleaved, ``--repeats`` rounds (medians of decode tok/s
and time to first token, largest peak RSS). Fidelity is teacher-forced
next-token agreement and mean KL against the fp32 build over the fp32 build's
own continuation, for llama.cpp too (its logits over the same tokens).
Markdown on stdout, JSON in benchmarks/results/slm.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from localml_kit import slm

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-spinning", action="store_true")
    args = parser.parse_args()
    table = slm.bench(
        max_new_tokens=args.max_tokens,
        threads=args.threads,
        repeats=args.repeats,
        spinning=not args.no_spinning,
    )
    print(
        f"prompt: {slm.BENCH_PROMPT!r}; {args.max_tokens} greedy tokens; {args.threads} threads; "
        f"spinning {'off' if args.no_spinning else 'on'}; median of {args.repeats} runs\n"
    )
    rows = table.to_dict(orient="records")
    llama = next(
        (r for r in rows if r["engine"] == "llama.cpp" and not isinstance(r.get("error"), str)),
        None,
    )
    print(
        "| engine | precision | decode tok/s | vs llama.cpp | first token ms | vs llama.cpp "
        "| peak RSS MB | load s | agreement | mean KL | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if isinstance(row.get("error"), str):
            print(f"| {row['engine']} | {row['precision']} | | | | | | | | | {row['error']} |")
            continue
        speed = ttft = ""
        if llama is not None:
            speed = f"{row['decode_tokens_per_s'] / llama['decode_tokens_per_s']:.2f}x"
            ttft = f"{row['time_to_first_token_s'] / llama['time_to_first_token_s']:.2f}x"
        print(
            f"| {row['engine']} | {row['precision']} | {row['decode_tokens_per_s']:.1f} | {speed} | "
            f"{row['time_to_first_token_s'] * 1e3:.0f} | {ttft} | {row['peak_rss_mb']:.0f} | "
            f"{row['load_s']:.2f} | {row['agreement']:.1%} | {row['mean_kl']:.4f} | |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "slm.json").write_text(
        json.dumps(json.loads(table.to_json(orient="records")), indent=2)
    )


if __name__ == "__main__":
    main()
