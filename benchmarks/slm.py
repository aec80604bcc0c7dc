"""The SLM numbers: one back-to-back run per engine on the same prompt.

Usage:
    python benchmarks/slm.py [--max-tokens 128] [--threads 2]

ONNX Runtime GenAI int4, int8 and fp32 builds of the SmolLM2 sample, and
llama.cpp on the sample's GGUF when ``llama-cpp-python`` is installed (this
script installs nothing). Each engine generates greedy tokens in a fresh
process (decode tok/s, time to first token, peak RSS); fidelity is
teacher-forced next-token agreement and mean KL against the fp32 build over
the fp32 build's own continuation. Markdown on stdout, JSON in
benchmarks/results/slm.json.
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
    args = parser.parse_args()
    table = slm.bench(max_new_tokens=args.max_tokens, threads=args.threads)
    print(
        f"prompt: {slm.BENCH_PROMPT!r}; {args.max_tokens} greedy tokens; {args.threads} threads\n"
    )
    print(
        "| engine | precision | decode tok/s | first token ms | peak RSS MB | load s | agreement | mean KL | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in table.to_dict(orient="records"):
        if isinstance(row.get("error"), str):
            print(f"| {row['engine']} | {row['precision']} | | | | | | | {row['error']} |")
            continue
        print(
            f"| {row['engine']} | {row['precision']} | {row['decode_tokens_per_s']:.1f} | "
            f"{row['time_to_first_token_s'] * 1e3:.0f} | {row['peak_rss_mb']:.0f} | "
            f"{row['load_s']:.2f} | {row['agreement']:.1%} | {row['mean_kl']:.4f} | |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "slm.json").write_text(
        json.dumps(json.loads(table.to_json(orient="records")), indent=2)
    )


if __name__ == "__main__":
    main()
