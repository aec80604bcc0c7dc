"""The SLM numbers: one back-to-back run per engine on the same prompt, per GGUF file.

Usage:
    python benchmarks/slm.py [--max-tokens 128] [--threads 2] [--repeats 5] [--no-spinning]
                             [--files sample,Q4_K_M]

Files: ``sample`` is the SmolLM2 sample's Q4_1 GGUF; ``Q4_K_M`` (or any other
llama.cpp type name: ``Q5_K_M``, ``Q6_K``, ``F16``...) is made from it, once,
by llama.cpp's own quantizer (``llama_cpp.llama_model_quantize``, re-quantizing
the Q4_1 weights) under the kit home's ``benchmarks/`` folder, as a real
K-quant mix: llama.cpp falls back to Q5_0 / Q8_0 where a row of 576 values is
not a multiple of 256. For each file: ONNX Runtime GenAI builds (gguf: the
file's own blocks carried over, every one checked bit for bit against
``gguf.quants.dequantize`` while building; int4, int8 and fp32: the GenAI
builder's), and llama.cpp on the same file when ``llama-cpp-python`` is
installed (this script installs nothing). Each engine generates greedy tokens
in a fresh process, engines interleaved, ``--repeats`` rounds (medians of decode
tok/s and time to first token, largest peak RSS). Fidelity is teacher-forced
next-token agreement and mean KL against the file's fp32 build over that
build's own continuation, for llama.cpp too (its logits over the same tokens).
Markdown on stdout, JSON in benchmarks/results/slm.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
from pathlib import Path
from typing import Any

from localml_kit import config, samples, slm

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE = "smollm2-135m-instruct"


def quantized(kind: str, threads: int) -> Path:
    """The sample's GGUF re-quantized by llama.cpp to ``kind`` (e.g. Q4_K_M), made once."""
    import llama_cpp

    source = samples.path(SAMPLE, "gguf")
    folder = config.home() / "benchmarks"
    out = folder / f"{source.name.split('.')[0]}.{kind}.gguf"
    if out.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.allow_requantize = True
    params.nthread = threads
    staging = out.with_suffix(".partial")
    code = llama_cpp.llama_model_quantize(
        str(source).encode(), str(staging).encode(), ctypes.byref(params)
    )
    if code != 0:
        raise SystemExit(f"llama.cpp's quantizer failed on {source} ({kind}): code {code}")
    staging.rename(out)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown, with each row's speed and first token against llama.cpp's in the same run."""
    llama = next(
        (r for r in rows if r["engine"] == "llama.cpp" and not isinstance(r.get("error"), str)),
        None,
    )
    lines = [
        "| engine | precision | decode tok/s | vs llama.cpp | first token ms | vs llama.cpp "
        "| peak RSS MB | size MB | vs GGUF | agreement | mean KL | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if isinstance(row.get("error"), str):
            lines.append(f"| {row['engine']} | {row['precision']} |||||||||| {row['error']} |")
            continue
        speed = ttft = ""
        if llama is not None:
            speed = f"{row['decode_tokens_per_s'] / llama['decode_tokens_per_s']:.2f}x"
            ttft = f"{row['time_to_first_token_s'] / llama['time_to_first_token_s']:.2f}x"
        note = row.get("note") if isinstance(row.get("note"), str) else ""
        lines.append(
            f"| {row['engine']} | {row['precision']} | {row['decode_tokens_per_s']:.1f} | {speed} "
            f"| {row['time_to_first_token_s'] * 1e3:.0f} | {ttft} | {row['peak_rss_mb']:.0f} "
            f"| {row['size_mb']:.0f} | {row.get('size_vs_gguf', float('nan')):.2f}x "
            f"| {row['agreement']:.1%} | {row['mean_kl']:.4f} | {note} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-spinning", action="store_true")
    parser.add_argument(
        "--files", default="sample,Q4_K_M", help="sample and/or llama.cpp types made from it"
    )
    args = parser.parse_args()
    print(
        f"prompt: {slm.BENCH_PROMPT!r}; {args.max_tokens} greedy tokens; {args.threads} threads; "
        f"spinning {'off' if args.no_spinning else 'on'}; median of {args.repeats} runs\n"
    )
    results: dict[str, Any] = {}
    for name in (f.strip() for f in args.files.split(",") if f.strip()):
        model: str | Path = SAMPLE if name == "sample" else quantized(name, args.threads)
        frame = slm.bench(
            model,
            max_new_tokens=args.max_tokens,
            threads=args.threads,
            repeats=args.repeats,
            spinning=not args.no_spinning,
        )
        label = samples.path(SAMPLE, "gguf").name if name == "sample" else Path(model).name
        rows = json.loads(frame.to_json(orient="records"))
        carried = slm.build(model, "gguf", progress=False) / "carried.json"
        report = json.loads(carried.read_text())
        results[label] = {"rows": rows, "carried": report}
        print(f"## {label}\n")
        print(table(rows))
        print("\ncarried (GGUF type: how, tensors):")
        # A build made before carried.json listed ``types`` has only the counts.
        types = report.get("types") or {t: {"carried": n} for t, n in report["carried"].items()}
        for gguf_type, hows in types.items():
            for how, count in hows.items():
                print(f"- {gguf_type}: {how}, {count}")
        print()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "slm.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
