"""Other designs of the carried minimum term, measured against the exact one.

Usage:
    python benchmarks/slm_designs.py [--model smollm2-135m-instruct:onnx-gguf] [--gguf FILE]
                                     [--repeats 5] [--threads 2] [--max-tokens 128]

A Q4_1 (or Q4_K, Q5_K...) weight is ``d * q + m`` per block; the carry keeps
``d * (q - z)`` in ``MatMulNBits`` and adds the exact remainder term
``(x summed per block) @ minima`` with three more nodes per projection
(BlockSum, Minima, AddMinima). From a carried build this script writes, under a
temporary folder:

- ``folded, N digits``: the remainder as extra K columns of the same
  ``MatMulNBits``: the input becomes ``Concat(x, block sums of x)`` and each row's
  remainders are stored as N base-16 digits of 4 bits under per-row scales (one
  block of 32 columns per digit), so one node computes both terms; the remainder
  is then rounded to about 1/(7 * 16^(N-1)) of its largest value in the row, no
  longer exact;
- ``remainder dropped``: the term left out (a bound: the speed the term costs,
  at the fidelity it buys).

Each build, and llama.cpp on the GGUF when installed (the sample's own, or
``--gguf`` for a build of another file), generates greedy tokens in
a fresh process, builds interleaved, ``--repeats`` rounds (medians); fidelity is
``slm.fidelity`` against the fp32 build. Markdown on stdout, JSON in
benchmarks/results/slm_designs.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from localml_kit import _genai, slm
from localml_kit.slm import _benchmark, _resolve

RESULTS = Path(__file__).resolve().parent / "results"


def _unpack4(packed: np.ndarray, cols: int) -> np.ndarray:
    return np.stack([packed & 15, packed >> 4], -1).reshape(packed.shape[0], -1)[:, :cols]


def _pack4(values: np.ndarray) -> np.ndarray:
    if values.shape[-1] % 2:
        values = np.concatenate([values, np.zeros((*values.shape[:-1], 1), np.uint8)], -1)
    return (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)


def _digits(r: np.ndarray, digits: int, width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Remainders r [N, nb] as ``digits`` 4-bit digits: q [N, digits*width], scales, worst error."""
    n, nb = r.shape
    scale = np.abs(r).max(1) / 7.0
    scale[scale == 0] = 1.0
    rest = r.astype(np.float64)
    qs, ss = [], []
    for j in range(digits):
        s = (scale / 16.0**j).astype(np.float32).astype(np.float64)
        q = np.clip(np.rint(rest / s[:, None]), -8, 7)
        rest = rest - q * s[:, None]
        pad = np.zeros((n, width))
        pad[:, :nb] = q
        qs.append((pad + 8).astype(np.uint8))
        ss.append(np.repeat(s[:, None], width // 32, 1))
    worst = float(np.abs(rest).max() / (np.abs(r).max() or 1.0))
    return np.concatenate(qs, 1), np.concatenate(ss, 1).astype(np.float32), worst


def rewrite(src: Path, dst: Path, digits: int) -> dict[str, Any]:
    """``src``'s carried model with its remainder terms folded (``digits`` > 0) or dropped (0)."""
    import onnx
    from onnx import helper, numpy_helper

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.onnx", "model.onnx.data"))
    model = onnx.load(str(src / "model.onnx"))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    replace: dict[str, list[Any]] = {}
    drop: set[str] = set()
    added: list[Any] = []
    widened: dict[str, str] = {}  # input -> Concat(input, its block sums)
    worst = 0.0
    for add in [n for n in graph.node if n.name.endswith("/AddMinima")]:
        stem = add.name.removesuffix("/AddMinima")
        mm, minima = nodes[f"{stem}/MatMulNBits"], nodes[f"{stem}/Minima"]
        drop |= {add.name, f"{stem}/BlockSum", minima.name}
        attrs = {a.name: helper.get_attribute_value(a) for a in mm.attribute}
        if digits == 0 or attrs["bits"] != 4 or attrs["block_size"] != 32 or len(mm.input) < 4:
            mm.output[0] = add.output[0]
            continue
        k, n, x = attrs["K"], attrs["N"], mm.input[0]
        nb = k // 32
        width = 32 * math.ceil(nb / 32)
        q = numpy_helper.to_array(inits[mm.input[1]]).reshape(n, nb, 16)
        scales = numpy_helper.to_array(inits[mm.input[2]]).reshape(n, nb)
        zeros = _unpack4(numpy_helper.to_array(inits[mm.input[3]]).reshape(n, -1), nb)
        r = numpy_helper.to_array(inits[minima.input[1]]).T
        extra_q, extra_s, err = _digits(r, digits, width)
        worst = max(worst, err)
        names = [f"{stem}.folded.qweight", f"{stem}.folded.scales", f"{stem}.folded.qzeros"]
        arrays = [
            np.concatenate([q, _pack4(extra_q.reshape(n, -1, 32))], 1),
            np.concatenate([scales, extra_s], 1).reshape(-1),
            _pack4(np.concatenate([zeros, np.full(extra_s.shape, 8, np.uint8)], 1)).reshape(-1),
        ]
        added += [numpy_helper.from_array(a, name) for a, name in zip(arrays, names, strict=True)]
        new = []
        if x not in widened:
            indicator = f"/folded/indicator/{k}/{digits}"
            if indicator not in {i.name for i in added}:
                block = np.kron(np.eye(nb, dtype=np.float32), np.ones((32, 1), np.float32))
                wide = np.zeros((k, digits * width), np.float32)
                for j in range(digits):
                    wide[:, j * width : j * width + nb] = block
                added.append(numpy_helper.from_array(wide, indicator))
            sums, widened[x] = f"{stem}/FoldedSums/output_0", f"{stem}/Folded/output_0"
            new += [
                helper.make_node("MatMul", [x, indicator], [sums], name=f"{stem}/FoldedSums"),
                helper.make_node("Concat", [x, sums], [widened[x]], name=f"{stem}/Folded", axis=-1),
            ]
        new.append(
            helper.make_node(
                "MatMulNBits",
                [widened[x], *names],
                [add.output[0]],
                name=mm.name,
                domain="com.microsoft",
                K=k + digits * width,
                N=n,
                bits=4,
                block_size=32,
                accuracy_level=attrs["accuracy_level"],
            )
        )
        replace[mm.name] = new
    out = []
    for node in graph.node:
        if node.name not in drop:
            out += replace.get(node.name, [node])
    used = {i for node in out for i in node.input}
    kept = [i for i in list(graph.initializer) + added if i.name in used]
    del graph.node[:]
    graph.node.extend(out)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save_model(
        model,
        str(dst / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
    )
    return {"nodes": len(out), "remainder_error": worst if digits else 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct:onnx-gguf")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--gguf", type=Path, help="the GGUF a --model folder was built from")
    args = parser.parse_args()
    import onnx

    exact = slm.resolve_model(args.model)
    gguf = args.gguf or _resolve.source_gguf(_resolve.model_ref(args.model))
    nodes = len(onnx.load(str(exact / "model.onnx"), load_external_data=False).graph.node)
    with tempfile.TemporaryDirectory(prefix="localml-designs-") as tmp:
        builds: dict[str, tuple[Path, dict[str, Any]]] = {
            "exact (the carry)": (exact, {"nodes": nodes, "remainder_error": 0.0})
        }
        for label, digits in (
            ("folded, 3 digits", 3),
            ("folded, 2 digits", 2),
            ("remainder dropped", 0),
        ):
            folder = Path(tmp) / label.replace(" ", "-").replace(",", "")
            builds[label] = (folder, rewrite(exact, folder, digits))
        model = _genai.load_model(exact, threads=args.threads)
        ids = _genai.chat_prompt_ids(_genai.tokenizer(model), slm.BENCH_PROMPT)
        del model
        runs: dict[str, list[dict]] = {label: [] for label in builds}
        if gguf is not None:
            runs["llama.cpp"] = []
        for _ in range(args.repeats):
            for label, (folder, _info) in builds.items():
                runs[label].append(
                    _benchmark._bench_child("genai", folder, ids, args.max_tokens, args.threads)
                )
            if gguf is not None:
                runs["llama.cpp"].append(
                    _benchmark._bench_child("llama-cpp", gguf, ids, args.max_tokens, args.threads)
                )
        rows = []
        for label, got in runs.items():
            ok = [r for r in got if "error" not in r]
            row: dict[str, Any] = {"design": label, "runs": len(ok)}
            if ok:
                row["decode_tokens_per_s"] = statistics.median(r["decode_tokens_per_s"] for r in ok)
                row["time_to_first_token_s"] = statistics.median(
                    r["time_to_first_token_s"] for r in ok
                )
            if label in builds:
                row.update(builds[label][1])
                fid = slm.fidelity(str(builds[label][0]), progress=False)
                row["agreement"], row["mean_kl"] = fid.agreement, fid.mean_kl
            rows.append(row)
    base = next((r for r in rows if r["design"] == "llama.cpp" and r["runs"]), None)
    print(
        f"{args.model}; {args.max_tokens} greedy tokens; {args.threads} threads; "
        f"median of {args.repeats} runs\n"
    )
    print(
        "| design | nodes | decode tok/s | vs llama.cpp | first token ms | vs llama.cpp "
        "| agreement | mean KL | remainder error |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:

        def ratio(key: str, r: dict = r) -> str:
            return f"{r[key] / base[key]:.2f}x" if base and key in r else ""

        print(
            f"| {r['design']} | {r.get('nodes', '')} | {r.get('decode_tokens_per_s', 0):.1f} "
            f"| {ratio('decode_tokens_per_s')} | {r.get('time_to_first_token_s', 0) * 1e3:.0f} "
            f"| {ratio('time_to_first_token_s')} "
            f"| {r['agreement']:.1%} | {r['mean_kl']:.4f} | {r.get('remainder_error', 0):.2g} |"
            if "agreement" in r
            else f"| {r['design']} | | {r.get('decode_tokens_per_s', 0):.1f} | 1.00x "
            f"| {r.get('time_to_first_token_s', 0) * 1e3:.0f} | 1.00x | | | |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "slm_designs.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
