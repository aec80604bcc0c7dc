"""Where a decode step's time goes, per node group, in ONNX Runtime's own profile.

Usage:
    python benchmarks/slm_nodes.py [FOLDER_OR_SAMPLE ...] [--tokens 48] [--threads 2]

Each build (default: the SmolLM2 sample's ``onnx-gguf``) generates ``--tokens``
greedy tokens in a child process with ONNX Runtime's profiling on
(``enable_profiling``, about 2.5% overhead); the prompt's run is left out. Per
decode step: each node group's kernel time, node count and microseconds per
node, and the step's wall time (``model_run``) less the sum of its kernels, the
scheduling between nodes. Groups: the carried minimum term's three kinds of
node (``BlockSum``, ``Minima``, ``AddMinima``), ``MatMulNBits`` of the
projections, the output layer, attention, norms, everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from localml_kit import _proc, profile, slm

GROUPS = (
    ("minimum term: block sums", lambda node, op: "/BlockSum" in node),
    ("minimum term: minima", lambda node, op: "/Minima" in node),
    ("minimum term: add", lambda node, op: "/AddMinima" in node),
    ("output layer", lambda node, op: node.startswith("/lm_head")),
    ("projections", lambda node, op: op in ("MatMulNBits", "MatMul")),
    ("attention", lambda node, op: op in ("GroupQueryAttention", "RotaryEmbedding")),
    ("norms", lambda node, op: "LayerNorm" in op),
)

CHILD = """
import json, sys
from localml_kit import _genai
folder, prefix, threads, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
og = _genai.require()
config = og.Config(folder)
options = _genai.session_options(threads, spinning=True)
options["enable_profiling"] = prefix
config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
model = og.Model(config)
ids = _genai.chat_prompt_ids(_genai.tokenizer(model), sys.argv[5])
out = list(_genai.tokens(model, ids, tokens))
del model
print(len(out))
"""


def group_of(node: str, op: str) -> str:
    return next((name for name, test in GROUPS if test(node, op)), "other")


def measure(folder: Path, tokens: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="localml-nodes-") as tmp:
        prefix = str(Path(tmp) / "decode")
        _proc.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(folder),
                prefix,
                str(threads),
                str(tokens),
                slm.BENCH_PROMPT,
            ],
            what=f"the profiled decode of {folder}",
            timeout=600,
        )
        trace = profile.load_trace(next(Path(tmp).glob("decode*.json")))
    events = profile.kernel_events(trace)
    runs = sorted(
        (e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e.get("ts", 0),
    )[1:]
    steps = len(runs)
    events["group"] = [group_of(n, o) for n, o in zip(events["node"], events["op"], strict=True)]
    table = events.groupby("group").agg(us=("dur_us", "sum"), nodes=("dur_us", "size"))
    table["us_per_step"] = table["us"] / steps
    table["nodes_per_step"] = table["nodes"] / steps
    table["us_per_node"] = table["us"] / table["nodes"]
    wall = sum(r.get("dur", 0) for r in runs) / steps
    kernels = float(table["us_per_step"].sum())
    return {
        "folder": str(folder),
        "steps": steps,
        "step_us": wall,
        "kernels_us": kernels,
        "between_nodes_us": wall - kernels,
        "nodes_per_step": float(table["nodes_per_step"].sum()),
        "groups": table[["us_per_step", "nodes_per_step", "us_per_node"]].round(2).to_dict("index"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["smollm2-135m-instruct:onnx-gguf"])
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results = []
    for model in args.models:
        folder = slm.resolve_model(model)
        r = measure(folder, args.tokens, args.threads)
        results.append(r)
        print(f"## {model}: {r['steps']} decode steps, {r['nodes_per_step']:.0f} nodes per step")
        print(
            f"step {r['step_us']:.0f} us = kernels {r['kernels_us']:.0f} us + between nodes "
            f"{r['between_nodes_us']:.0f} us\n"
        )
        print("| group | us per step | share of step | nodes per step | us per node |")
        print("|---|---|---|---|---|")
        for name, g in sorted(r["groups"].items(), key=lambda kv: -kv[1]["us_per_step"]):
            print(
                f"| {name} | {g['us_per_step']:.0f} | {g['us_per_step'] / r['step_us']:.1%} "
                f"| {g['nodes_per_step']:.0f} | {g['us_per_node']:.1f} |"
            )
        print()
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "slm_nodes.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
