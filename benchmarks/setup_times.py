"""Measure the setup: the first README command cold and warm, each sample, the test command.

Usage:
    python benchmarks/setup_times.py --samples          # each sample's fetch+build time and size
    python benchmarks/setup_times.py --lab              # `make lab` cold (fresh clone, no pip cache) and warm
    python benchmarks/setup_times.py --test             # `make test` wall time in that clone (warm)
    python benchmarks/setup_times.py --all

The cold run clones this repository into a temporary folder, uses a fresh
LOCALML_HOME and disables pip's cache, then runs the same make targets that
`make lab` chains (setup, samples, then JupyterLab) and times each, up to the
moment JupyterLab answers on /api/status. Results go to stdout as a Markdown
table and to benchmarks/results/setup_times.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def bench_samples(python: str) -> list[dict]:
    """Fetch and build each sample in a fresh cache, one after the other, in registry order."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="localml-bench-") as tmp:
        env = dict(os.environ, LOCALML_HOME=tmp, PIP_NO_CACHE_DIR="1")
        names = json.loads(
            subprocess.run(
                [python, "-m", "localml_kit.cli", "samples", "list", "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for row in names:
            name = row["name"]
            start = time.perf_counter()
            subprocess.run(
                [python, "-m", "localml_kit.cli", "samples", "fetch", name],
                env=env,
                check=True,
                capture_output=True,
            )
            seconds = time.perf_counter() - start
            size = _folder_mb(Path(tmp) / "samples" / name)
            rows.append(
                {"sample": name, "fetch_build_s": round(seconds, 1), "size_mb": round(size, 3)}
            )
            print(f"{name:<24} {seconds:7.1f} s {size:10.3f} MB", flush=True)
        start = time.perf_counter()
        subprocess.run(
            [python, "-m", "localml_kit.cli", "samples", "fetch", "--all"],
            env=env,
            check=True,
            capture_output=True,
        )
        rows.append(
            {
                "sample": "(all again, cached)",
                "fetch_build_s": round(time.perf_counter() - start, 2),
                "size_mb": None,
            }
        )
    return rows


def _run_timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _lab_until_answer(clone: Path, env: dict[str, str], timeout: float = 900) -> float:
    port, token = _free_port(), secrets.token_hex(8)
    args = f"--no-browser --ip 127.0.0.1 --port {port} --ServerApp.token={token}"
    if os.geteuid() == 0:
        args += " --allow-root"
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "lab", f"LAB_ARGS={args}"],
        cwd=clone,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"make lab exited with {proc.returncode} before JupyterLab answered"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - start
            except OSError:
                pass
            if time.perf_counter() - start > timeout:
                raise RuntimeError("JupyterLab did not answer in time")
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def bench_lab(clone: Path, home: Path) -> dict:
    env = dict(os.environ, LOCALML_HOME=str(home), PIP_NO_CACHE_DIR="1")
    env.pop("VIRTUAL_ENV", None)
    setup = _run_timed(["make", "setup"], clone, env)
    print(f"cold: make setup   {setup:7.1f} s", flush=True)
    samples = _run_timed(["make", "samples"], clone, env)
    print(f"cold: make samples {samples:7.1f} s", flush=True)
    lab = _lab_until_answer(clone, env)
    print(f"cold: make lab     {lab:7.1f} s (until JupyterLab answers)", flush=True)
    warm = _lab_until_answer(clone, env)
    print(f"warm: make lab     {warm:7.1f} s", flush=True)
    return {
        "cold_setup_s": round(setup, 1),
        "cold_samples_s": round(samples, 1),
        "cold_lab_start_s": round(lab, 1),
        "cold_total_s": round(setup + samples + lab, 1),
        "warm_total_s": round(warm, 1),
    }


def bench_test(clone: Path, home: Path) -> dict:
    env = dict(os.environ, LOCALML_HOME=str(home), CI="true")
    env.pop("VIRTUAL_ENV", None)
    seconds = _run_timed(["make", "test"], clone, env)
    print(f"make test          {seconds:7.1f} s", flush=True)
    return {"make_test_s": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", action="store_true")
    parser.add_argument("--lab", action="store_true")
    parser.add_argument("--test", action="store_true")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    if not (args.samples or args.lab or args.test or args.all):
        parser.error("choose --samples, --lab, --test or --all")
    results: dict = {"machine": f"{os.cpu_count()} cores", "python": sys.version.split()[0]}
    if args.samples or args.all:
        results["samples"] = bench_samples(sys.executable)
    if args.lab or args.test or args.all:
        work = Path(tempfile.mkdtemp(prefix="localml-clone-"))
        try:
            clone = work / "repo"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            home = work / "home"
            if args.lab or args.all:
                results["lab"] = bench_lab(clone, home)
            if args.test or args.all:
                results["test"] = bench_test(clone, home)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "setup_times.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
