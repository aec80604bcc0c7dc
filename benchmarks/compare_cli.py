"""Wall time of ``localml-kit compare`` MiniLM against its int8 variant, this tree vs another.

Makes the int8 variant once (``localml-kit optimize all-minilm-l6-v2 --int8``), then
times the whole command (a fresh process each time: imports, model reads, sessions,
inputs, the comparison), alternating between this tree and ``--other`` (a checkout of
an earlier commit, e.g. ``git worktree add /tmp/before <commit>``) so both see the
same machine load. Prints a Markdown table of medians and their ratio.

    python benchmarks/compare_cli.py --other /tmp/before --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _run(src: Path, argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(src))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "localml_kit.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{src}: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, default=None, help="another checkout to time too")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        variant = Path(tmp) / "minilm.int8.onnx"
        _run(HERE, ["optimize", "all-minilm-l6-v2", "--int8", "--no-compare", "-o", str(variant)])
        command = ["compare", "all-minilm-l6-v2", str(variant)]
        trees = {"this tree": HERE}
        if args.other is not None:
            trees["other"] = args.other.resolve()
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, src in trees.items():
                times[name].append(_run(src, command))
    print(
        f"`localml-kit {' '.join(command[:2])} <int8 variant>`, {args.repeats} runs each, "
        "alternating\n"
    )
    print("| tree | median wall s | min | max | vs this tree |")
    print("|---|---|---|---|---|")
    base = statistics.median(times["this tree"])
    for name, values in times.items():
        med = statistics.median(values)
        print(
            f"| {name} ({trees[name]}) | {med:.2f} | {min(values):.2f} | {max(values):.2f} | "
            f"{med / base:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
