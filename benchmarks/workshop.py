"""Measure the workshop bundle: build time and size for the series, and each page's time to draw.

Usage:
    python benchmarks/workshop.py                        # the whole series
    python benchmarks/workshop.py --notebooks 00,02,04 --out /tmp/workshop

Tables (Markdown on stdout, JSON in benchmarks/results/workshop.json):

1. build: the wall time of ``workshop.build`` (the samples already built, so
   "warm": no download or conversion), the bundle's size on disk and its zip's,
   and each notebook's status, run time and widget outputs.
2. pages: each page opened from file:// in headless Chromium with every other
   request aborted: seconds from ``goto`` to the last widget view drawn (the
   median of ``--opens`` fresh opens), widget views drawn out of the notebook's
   widget outputs, and requests that tried to leave the folder (should be 0).

Needs the samples (``make samples``), the widget assets (``localml-kit workshop setup``,
run by ``make samples``) and Chromium (``make browser``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from localml_kit import config, workshop
from localml_kit.engines import _driver

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
ARGS = [*_driver.CHROMIUM_ARGS, *_driver.NO_GPU_ARGS]  # the kit's own: offline, no GPU
JS_DRAWN = r"""(n) => [...document.querySelectorAll('.widget-subarea')]
    .filter(e => e.querySelector('.lm-Widget')).length >= n"""
JS_COUNT = r"""() => [...document.querySelectorAll('.widget-subarea')]
    .filter(e => e.querySelector('.lm-Widget')).length"""


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def pages(bundle: workshop.Bundle, opens: int) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    chromium, why = config.chromium()
    if chromium is None:
        raise SystemExit(why)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        for run in bundle.runs:
            outside: list[str] = []
            times = []
            drawn = 0
            for _ in range(opens):
                context = browser.new_context()
                context.route(
                    "**/*",
                    lambda r, out=outside: (
                        r.continue_()
                        if r.request.url.startswith("file://")
                        else (out.append(r.request.url), r.abort())
                    ),
                )
                page = context.new_page()
                started = time.perf_counter()
                page.goto((bundle.folder / run.html).as_uri())
                if run.widget_views:
                    page.wait_for_function(JS_DRAWN, arg=run.widget_views, timeout=120_000)
                else:
                    page.wait_for_load_state("load")
                times.append(time.perf_counter() - started)
                drawn = int(page.evaluate(JS_COUNT))
                context.close()
            rows.append(
                {
                    "notebook": run.name,
                    "to_last_widget_s": round(statistics.median(times), 3),
                    "drawn": f"{drawn}/{run.widget_views}",
                    "outside_requests": len(outside),
                }
            )
        browser.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", help="e.g. 00,02,04 (default: the whole series)")
    parser.add_argument("--out", help="the bundle folder (default: a temporary one)")
    parser.add_argument("--opens", type=int, default=3, help="opens per page (median)")
    args = parser.parse_args(argv)
    wanted = [n for n in (args.notebooks or "").split(",") if n.strip()] or None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "workshop"
        workshop.setup_assets()
        started = time.perf_counter()
        bundle = workshop.build(out, notebooks=wanted)
        build_s = time.perf_counter() - started
        build = [
            {
                "notebooks": len(bundle.runs),
                "failed": len(bundle.failed),
                "build_s": round(build_s, 1),
                "bundle_mb": round(size_mb(bundle.folder), 1),
                "zip_mb": round(bundle.zip.stat().st_size / 1e6, 1),
            }
        ]
        runs = [
            {
                "notebook": r.name,
                "status": r.status,
                "run_s": r.seconds,
                "widget_outputs": r.widget_views,
            }
            for r in bundle.runs
        ]
        opened = pages(bundle, args.opens)
    print("## build (warm)\n\n" + table(build) + "\n\n" + table(runs) + "\n")
    print(
        "## pages: opening to the last widget drawn (file://, network aborted)\n\n" + table(opened)
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "workshop.json").write_text(
        json.dumps({"build": build, "runs": runs, "pages": opened}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
