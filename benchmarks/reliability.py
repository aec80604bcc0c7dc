"""Two reliability figures of the real command line, each call in a fresh process.

1. The bad-input table (tests/cli_cases.py): how many calls, how many end cleanly (exit 2,
   one ``error:`` line, no traceback), and the slowest.
2. Time from SIGTERM (and SIGINT) of ``localml-kit profile`` to its last child gone.

    python benchmarks/reliability.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cli_cases import CASES, argv_for, make_files  # noqa: E402

CLI = [sys.executable, "-m", "localml_kit.cli"]


def bad_input_table(folder: Path) -> None:
    files = make_files(folder)
    env = dict(os.environ, LOCALML_HOME=str(folder / "home"), LOCALML_OFFLINE="1")
    rows = []
    for name, argv, needle in CASES:
        started = time.perf_counter()
        proc = subprocess.run(
            [*CLI, *argv_for(argv, files)], capture_output=True, text=True, env=env, timeout=300
        )
        wall = time.perf_counter() - started
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        clean = (
            proc.returncode == 2
            and len(lines) == 1
            and lines[0].startswith("error: ")
            and "Traceback" not in proc.stderr
            and needle in lines[0]
        )
        rows.append((name, clean, wall, proc.returncode, lines[-1] if lines else ""))
    clean = sum(1 for r in rows if r[1])
    slowest = sorted(rows, key=lambda r: -r[2])[:3]
    print("| bad-input calls | clean (exit 2, one error line, no traceback) | slowest |")
    print("|---|---|---|")
    print(
        f"| {len(rows)} | {clean} | " + ", ".join(f"{r[0]} {r[2]:.2f} s" for r in slowest) + " |\n"
    )
    for name, ok, _wall, code, last in rows:
        if not ok:
            print(f"NOT CLEAN {name}: exit {code}: {last[:200]}")


def _stop_time(model: Path, sig: int, folder: Path) -> float:
    argv = [*CLI, "profile", str(model), "--threads", "1", "--warmup", "0"]
    argv += ["--min-iterations", "1", "--min-seconds", "600", "--quiet"]
    cli = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TMPDIR=str(folder)),
    )
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while time.monotonic() < deadline:
        children = psutil.Process(cli.pid).children(recursive=True)
        if any("_worker.py" in " ".join(c.cmdline()) for c in children):
            break
        time.sleep(0.05)
    time.sleep(1.0)  # the worker is measuring
    children = psutil.Process(cli.pid).children(recursive=True)
    started = time.perf_counter()
    cli.send_signal(sig)
    alive = list(children)
    while alive and time.perf_counter() - started < 30:
        alive = [p for p in alive if _running(p)]
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    cli.wait(timeout=5)
    if alive:
        raise SystemExit(f"left running after {signal.Signals(sig).name}: {alive}")
    return elapsed


def _running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (a killed child waits for its new parent to reap it)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_times(folder: Path, repeats: int) -> None:
    model = make_files(folder)["model"]
    print("| signal to `localml-kit profile` | to the last child gone, median ms | min | max |")
    print("|---|---|---|---|")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        times = [_stop_time(model, sig, folder) * 1000 for _ in range(repeats)]
        print(
            f"| {signal.Signals(sig).name} | {statistics.median(times):.0f} | {min(times):.0f} | "
            f"{max(times):.0f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        bad_input_table(Path(tmp))
        stop_times(Path(tmp), args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
