"""Build a workshop bundle: run the series, keep the executed notebooks, write offline pages."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localml_kit import __version__, _proc, errors
from localml_kit.workshop import _assets, _series

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "localml_workshop"
ASSETS = "assets/"
RECORD = "bundle.json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
DEFAULT_TIMEOUT_S = 1200.0
# What a page may load: its own folder (file: from disk, 'self' when served), inline code and
# styles (nbconvert's), blob: (anywidget imports its module so) and data: images; no frames.
CSP = (
    "default-src 'none'; script-src 'self' file: blob: 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' file: 'unsafe-inline'; img-src 'self' file: data: blob:; "
    "font-src 'self' file: data:; connect-src 'self' file: data: blob:; frame-src 'none'"
)


@dataclass(frozen=True)
class NotebookRun:
    """One notebook of a bundle: what it teaches, how its run went, where its files are."""

    name: str
    title: str
    goal: str
    status: str  # "ok" or "failed"
    seconds: float
    error: str = ""
    cell: int | None = None
    html: str = ""
    ipynb: str = ""
    widget_views: int = 0


@dataclass(frozen=True)
class Bundle:
    """A built workshop folder: its notebooks' runs, the zip beside it, and the build's wall time."""

    folder: Path
    zip: Path
    runs: tuple[NotebookRun, ...]
    seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> tuple[NotebookRun, ...]:
        """The notebooks whose run stopped with an error."""
        return tuple(r for r in self.runs if r.status != "ok")


def _markdown_text(text: str) -> str:
    """Plain words from a line of Markdown: no emphasis marks, links as their text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_`]", "", text).strip()


def describe(nb: Any, fallback: str) -> tuple[str, str]:
    """A notebook's title (its ``# `` line) and goal (the ``**Goal.**`` line of its first cell).

    Example:
        >>> import nbformat
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        ...     "# Setup\\n\\n**Goal.** know your *machine*.\\n\\n**Prerequisites.** none")])
        >>> describe(nb, "00_setup")
        ('Setup', 'know your machine.')
    """
    title, goal = fallback, ""
    cells = getattr(nb, "cells", [])
    if cells and cells[0].get("cell_type") == "markdown":
        for line in cells[0].get("source", "").splitlines():
            if line.startswith("# ") and title == fallback:
                title = _markdown_text(line[2:])
            if "**Goal.**" in line:
                goal = _markdown_text(line.split("**Goal.**", 1)[1])
    return title, goal


def widget_views(nb: Any) -> int:
    """How many outputs show a widget whose model the notebook's saved state holds."""
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in state:
                count += 1
    return count


def _prepare(out: Path) -> None:
    """An empty folder or a previous bundle (replaced); anything else is refused."""
    if out.exists() and not out.is_dir():
        raise errors.ConfigError(f"{out} is a file: give a folder for the bundle (--out DIR).")
    if out.is_dir() and any(out.iterdir()):
        if not (out / RECORD).is_file():
            raise errors.ConfigError(
                f"{out} already holds files that are not a workshop bundle: give an empty or "
                "new folder (--out DIR), so nothing of yours is overwritten."
            )
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _run(path: Path, dest: Path, work: Path, timeout: float) -> dict[str, Any]:
    cmd: list[str | os.PathLike[str]] = [sys.executable, "-m", "localml_kit.workshop._execute"]
    cmd += [path, dest, "--cwd", work, "--timeout", str(timeout)]
    try:
        proc = _proc.run(cmd, what=f"running {path.name}", timeout=timeout + 60, cwd=work)
    except errors.ChildTimeoutError:
        return {"status": "failed", "error": f"it ran past {timeout:g} s and was stopped"}
    except errors.ChildProcessFailedError as exc:
        return {"status": "failed", "error": str(exc)}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {"status": "failed", "error": "no result"}


def _export(nb: Any, title: str) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name=TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES)],
        require_js_url=f"{ASSETS}require.js",
        widget_renderer_url=f"{ASSETS}embed-amd.js",
        mathjax_url="",
    )
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title}, "localml_assets": ASSETS, "localml_csp": CSP}
    )
    return str(body)


def build(
    out: str | os.PathLike[str] = "workshop",
    *,
    notebooks: list[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> Bundle:
    """Run the series and write a bundle to ``out``: executed notebooks, offline pages, index, zip.

    Each notebook runs in a fresh kernel (nbclient, widget state stored) in a
    scratch folder, for at most ``timeout`` seconds; one that fails is marked
    failed on the index with its error and the others are still built. Each page
    loads its widget front end from ``out/assets/`` only (see
    :mod:`localml_kit.workshop._assets`). ``notebooks`` picks some by number or
    name (``["00", "04"]``); ``source`` is another folder of ``NN_name.ipynb``
    notebooks (default: the series). The zip is ``out`` + ``.zip``, beside it.

    Usage (it runs the notebooks: minutes)::

        bundle = build("workshop", notebooks=["00", "04"])
        bundle.runs[0].status, bundle.zip   # ('ok', PosixPath('workshop.zip'))
    """
    from tqdm.auto import tqdm

    if timeout <= 0:
        raise errors.ConfigError(
            f"timeout must be above 0 seconds, not {timeout}",
            cli=f"--timeout must be above 0 seconds, not {timeout}",
        )
    chosen = _series.select(_series.notebooks(source), notebooks)
    folder = Path(out).expanduser().resolve()
    _prepare(folder)
    # The record first: a build stopped half way (Ctrl-C, a kill) leaves a folder that the
    # next build knows as its own and replaces, instead of refusing it as the user's files.
    (folder / RECORD).write_text(json.dumps({"kit": __version__, "building": True}, indent=2))
    started = time.perf_counter()
    _assets.copy_into(folder / ASSETS)
    import nbformat

    runs = []
    with tempfile.TemporaryDirectory(prefix="localml-workshop-") as scratch:
        bar = tqdm(chosen, desc="workshop", unit="notebook", disable=not progress)
        for path in bar:
            bar.set_postfix_str(path.stem)
            work = Path(scratch) / path.stem
            work.mkdir()
            dest = folder / path.name
            t0 = time.perf_counter()
            result = _run(path, dest, work, timeout)
            seconds = time.perf_counter() - t0
            nb = nbformat.read(dest if dest.is_file() else path, as_version=4)
            if not dest.is_file():
                nbformat.write(nb, dest)
            title, goal = describe(nb, path.stem)
            page = f"{path.stem}.html"
            (folder / page).write_text(_export(nb, title), encoding="utf-8")
            runs.append(
                NotebookRun(
                    name=path.stem,
                    title=title,
                    goal=goal,
                    status=str(result.get("status", "failed")),
                    seconds=round(seconds, 2),
                    error=str(result.get("error", "")),
                    cell=result.get("cell"),
                    html=page,
                    ipynb=path.name,
                    widget_views=widget_views(nb),
                )
            )
        bar.close()
    total = time.perf_counter() - started
    bundle = Bundle(folder, folder.with_name(folder.name + ".zip"), tuple(runs), round(total, 2))
    (folder / "index.html").write_text(index_html(bundle), encoding="utf-8")
    record = {
        "kit": __version__,
        "seconds": bundle.seconds,
        "runs": [asdict(r) for r in runs],
    }
    (folder / RECORD).write_text(json.dumps(record, indent=2))
    _zip(folder, bundle.zip)
    return bundle


def _zip(folder: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    os.replace(tmp, dest)


_INDEX_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.45em 0.7em; border-bottom: 1px solid #ddd; }
.ok { color: #1a7f37; } .failed { color: #b00020; font-weight: bold; }
.error { color: #b00020; font-family: monospace; white-space: pre-wrap; }
"""


def index_html(bundle: Bundle) -> str:
    """The bundle's index page: the series in order, each goal, run time and status (escaped)."""
    rows = []
    for run in bundle.runs:
        e = html.escape
        status = f"<span class='{e(run.status)}'>{e(run.status)}</span>"
        if run.status != "ok":
            where = f" (cell {run.cell})" if run.cell else ""
            status += f"<div class='error'>{e(run.error)}{e(where)}</div>"
        rows.append(
            "<tr>"
            f"<td>{e(run.name[:2])}</td>"
            f"<td><a href='{e(run.html)}'>{e(run.title)}</a><br>"
            f"<small><a href='{e(run.ipynb)}'>{e(run.ipynb)}</a></small></td>"
            f"<td>{e(run.goal)}</td>"
            f"<td>{run.seconds:.1f} s</td>"
            f"<td>{status}</td>"
            "</tr>"
        )
    failed = len(bundle.failed)
    summary = (
        f"{len(bundle.runs)} notebooks, built in {bundle.seconds:.0f} s"
        + (f"; {failed} failed" if failed else "")
        + f", localml-kit {html.escape(__version__)}"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<title>localml-kit workshop</title>"
        f"<style>{_INDEX_CSS}</style></head><body>"
        "<h1>localml-kit workshop</h1>"
        "<p>The notebook series, executed. Each page opens in a browser with no server and no "
        "network; its widgets draw from the state saved when it ran. The <code>.ipynb</code> "
        "files open in JupyterLab or VS Code.</p>"
        f"<p>{summary}.</p>"
        "<table><thead><tr><th>#</th><th>notebook</th><th>goal</th><th>run time</th>"
        f"<th>status</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )
