"""The workshop bundle: the executed series as a folder that opens offline with its widgets.

The bundle test builds notebooks 00, 02 and 04 of the series, a notebook with an
anywidget widget, a slider, a plot inside an Output widget and a progress bar, and
a notebook that raises, then opens every page in headless Chromium from file://
with every request that is not a file aborted (and recorded): nothing leaves the
folder, every widget output of each notebook draws a widget view, no "Loading
widget" or "Error displaying widget" is left, every image is loaded and not
blank. The notebook that raises is marked failed on the index with its error
escaped; the others are built. Screenshots go to ``test-artifacts/workshop/``.
Another test installs a wheel built from this tree into a fresh venv and runs
``localml-kit lab`` from it: the series is copied and JupyterLab answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import pytest

from localml_kit import errors, workshop
from localml_kit.cli import main
from localml_kit.workshop import _build
from tests.conftest import IN_CI, REPO
from tests.test_browser import CHROMIUM_ARGS, JS_BLANK, free_port

ARTIFACTS = REPO / "test-artifacts" / "workshop"
SERIES = ("00", "02", "04")
v4 = nbformat.v4

# A widget of the test's own, drawn by anywidget's front end from its saved state.
COUNTER = """import anywidget, traitlets, ipywidgets as w
class Counter(anywidget.AnyWidget):
    _esm = '''function render({ model, el }) {
        const b = document.createElement("button");
        b.className = "counter-button";
        b.textContent = `count is ${model.get("value")}`;
        el.appendChild(b);
    }
    export default { render };'''
    value = traitlets.Int(0).tag(sync=True)
counter = Counter(value=41)
counter"""

# A kit-style widget whose summary changes after it is displayed, from a cell and a thread.
SUMMARY = """from localml_kit.widgets._util import Fallback
class Card(Fallback, w.VBox):
    _fallback_panes = ("pane",)
    def __init__(self):
        self.pane = w.HTML("<p>no result yet</p>")
        super().__init__([self.pane])
    def _fallback_text(self):
        return self.pane.value
card = Card()
card"""


def widgets_notebook() -> Any:
    return v4.new_notebook(
        cells=[
            v4.new_markdown_cell(
                "# Widgets offline & <saved> state\n\n**Goal.** see widgets draw "
                "from *saved* state.\n\n**Prerequisites.** none"
            ),
            v4.new_code_cell(COUNTER),
            v4.new_code_cell("counter.value = 42\nw.IntSlider(5, description='n')"),
            v4.new_code_cell(
                "import matplotlib.pyplot as plt\nout = w.Output()\nwith out:\n"
                "    plt.plot([1, 3, 2])\n    plt.show()\nout"
            ),
            v4.new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass"),
            v4.new_code_cell(SUMMARY),
            v4.new_code_cell(
                "import threading\ncard.pane.value = '<p>a result</p>'\n"
                "t = threading.Thread(target=setattr, args=(card.pane, 'value', "
                "'<p>the last result</p>'))\nt.start()\nt.join()"
            ),
            v4.new_markdown_cell("## Summary\n\nIt draws.\n\n## Exercises\n\nNone."),
        ]
    )


def raising_notebook() -> Any:
    return v4.new_notebook(
        cells=[
            v4.new_markdown_cell("# Raises\n\n**Goal.** fail.\n\n**Prerequisites.** none"),
            v4.new_code_cell("print('ran')"),
            v4.new_code_cell("raise ValueError('bad <script>alert(1)</script> input')"),
            v4.new_code_cell("print('never')"),
        ]
    )


# --- the series and copies ------------------------------------------------------------------


def test_series_is_the_source_tree_notebooks_in_order() -> None:
    names = [p.name for p in workshop.notebooks()]
    assert names == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    picked = workshop.select(workshop.notebooks(), ["04", "00_setup_and_hardware", "00"])
    assert [p.name[:2] for p in picked] == ["00", "04"]
    with pytest.raises(errors.ConfigError, match=r"no notebook '99'.*00_setup_and_hardware"):
        workshop.select(workshop.notebooks(), ["99"])


def test_copy_series_never_overwrites_an_edit(tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    first = workshop.copy_series(dest)
    assert first.written == tuple(p.name for p in workshop.notebooks()) and not first.kept
    edited = dest / "02_finding_models.ipynb"
    edited.write_text(edited.read_text() + " ")
    (dest / "04_inside_a_model.ipynb").unlink()
    again = workshop.copy_series(dest)
    assert again.written == ("04_inside_a_model.ipynb",)
    assert again.kept == ("02_finding_models.ipynb",)
    assert len(again.current) == len(workshop.notebooks()) - 2  # the rest: already the same
    assert edited.read_text().endswith(" ")
    # A newer kit's notebook replaces an untouched copy, never an edited one.
    newer = tmp_path / "newer"
    shutil.copytree(REPO / "notebooks", newer)
    for name in ("00_setup_and_hardware.ipynb", "02_finding_models.ipynb"):
        (newer / name).write_text((newer / name).read_text().replace("Goal", "Aim", 1))
    third = workshop.copy_series(dest, source=newer)
    assert third.written == ("00_setup_and_hardware.ipynb",) and third.kept == (
        "02_finding_models.ipynb",
    )
    # A notebook that was there before the first copy is the user's: kept too.
    other = tmp_path / "other"
    other.mkdir()
    (other / "00_setup_and_hardware.ipynb").write_text("{}")
    assert workshop.copy_series(other).kept == ("00_setup_and_hardware.ipynb",)
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.ConfigError, match="is a file"):
        workshop.copy_series(tmp_path / "file")


def test_notebooks_command_copies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notebooks", str(tmp_path / "n")]) == 0
    assert "10 notebooks copied" in capsys.readouterr().out.replace(
        str(len(workshop.notebooks())), "10"
    )
    assert sorted(p.name for p in (tmp_path / "n").glob("*.ipynb")) == [
        p.name for p in workshop.notebooks()
    ]
    assert main(["notebooks", str(tmp_path / "n")]) == 0  # again: nothing to do, and it says so
    assert "0 notebooks copied, 10 already up to date" in capsys.readouterr().out.replace(
        str(len(workshop.notebooks())), "10"
    )


def test_build_refuses_bad_input_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workshop", "build", "--out", str(tmp_path / "b"), "--notebooks", "99"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --notebooks: no notebook '99'") and len(err.splitlines()) == 1
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("keep me")
    with pytest.raises(errors.ConfigError, match="not a workshop bundle"):
        workshop.build(mine, notebooks=["00"])
    assert (mine / "thesis.txt").read_text() == "keep me"
    with pytest.raises(errors.InputError, match=r"no notebooks named NN_name\.ipynb"):
        workshop.build(tmp_path / "b", source=tmp_path)
    assert main(["workshop", "build", "--timeout", "0"]) == 2


def test_index_escapes_titles_goals_and_errors() -> None:
    run = _build.NotebookRun(
        "01_x",
        "<b>T</b>",
        "goal <i>",
        "failed",
        1.0,
        "ValueError: <script>x</script>",
        3,
        "01_x.html",
        "01_x.ipynb",
    )
    page = _build.index_html(_build.Bundle(Path("w"), Path("w.zip"), (run,), 2.0))
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "&lt;b&gt;T&lt;/b&gt;" in page and "goal &lt;i&gt;" in page and "(cell 3)" in page


@pytest.fixture
def assets(hermetic_env: Path) -> Path:
    """The widget assets `make samples` prepared, copied into this test's own kit home."""
    from tests.conftest import REAL_HOME

    source = REAL_HOME / "workshop"
    os.environ["LOCALML_HOME"] = str(REAL_HOME)
    try:
        ready = workshop.assets_ready()
    finally:
        os.environ["LOCALML_HOME"] = str(hermetic_env)
    if not ready:
        message = f"the workshop's widget assets are not in {source}: run `make samples`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    shutil.copytree(source, hermetic_env / "workshop")
    assert workshop.assets_ready()
    return hermetic_env / "workshop"


def test_build_command_marks_failures_and_timeouts_and_builds_the_rest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    assets: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command line on a folder of three tiny notebooks: one runs, one raises, one hangs."""
    source = tmp_path / "src"
    source.mkdir()
    heading = "# {0}\n\n**Goal.** {0}.\n\n**Prerequisites.** none"
    for name, code in (
        ("00_fine", "print('fine')"),
        ("01_raises", "raise ValueError('bad <input>')"),
        ("02_hangs", "import time\ntime.sleep(600)"),
    ):
        cells = [v4.new_markdown_cell(heading.format(name)), v4.new_code_cell(code)]
        nbformat.write(v4.new_notebook(cells=cells), source / f"{name}.ipynb")
    out = tmp_path / "out"
    args = ["workshop", "build", "--out", str(out), "--source", str(source), "--timeout", "8"]
    started = time.monotonic()
    assert main([*args, "--quiet"]) == 1  # something failed
    assert time.monotonic() - started < 120
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "ok" and lines[0].endswith("00_fine")
    assert lines[1].split()[0] == "failed" and "01_raises  ValueError: bad <input>" in lines[1]
    assert lines[2].split()[0] == "failed" and "ran past 8 s" in lines[2]
    assert lines[3].startswith(f"wrote {out}") and lines[3].endswith(f"{out}.zip")
    index = (out / "index.html").read_text()
    assert "bad &lt;input&gt;" in index and index.count("class='failed'") == 2
    fine = nbformat.read(out / "00_fine.ipynb", as_version=4)
    assert fine.cells[1].outputs[0]["text"] == "fine\n"
    assert (out / "02_hangs.html").is_file()
    # Building again replaces the previous bundle (and only a bundle); folders may be relative.
    monkeypatch.chdir(tmp_path)
    again = ["workshop", "build", "--out", "out", "--source", "src", "--notebooks", "00"]
    assert main([*again, "--timeout", "60", "--quiet"]) == 0
    assert sorted(p.name for p in out.glob("*.ipynb")) == ["00_fine.ipynb"]
    fine = nbformat.read(out / "00_fine.ipynb", as_version=4)
    assert fine.cells[1].outputs[0]["text"] == "fine\n"


def test_a_killed_build_leaves_no_kernel_behind(tmp_path: Path, assets: Path) -> None:
    """SIGKILL the building process mid-notebook: its child and that child's kernel go too."""
    import psutil

    source = tmp_path / "src"
    source.mkdir()
    cells = [
        v4.new_markdown_cell("# Hang\n\n**Goal.** hang."),
        v4.new_code_cell("import time; time.sleep(600)"),
    ]
    nbformat.write(v4.new_notebook(cells=cells), source / "00_hang.ipynb")
    code = (
        "from localml_kit import workshop\n"
        f"workshop.build({str(tmp_path / 'out')!r}, source={str(source)!r}, progress=False)\n"
    )
    builder = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 90
        kernels: list[psutil.Process] = []
        while time.monotonic() < deadline and not kernels:
            kernels = [
                p
                for p in psutil.Process(builder.pid).children(recursive=True)
                if "ipykernel_launcher" in " ".join(p.cmdline())
            ]
            time.sleep(0.2)
        assert kernels, "the notebook's kernel never started"
        family = psutil.Process(builder.pid).children(recursive=True)
    finally:
        builder.kill()
        builder.wait(timeout=10)
    _, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, [" ".join(p.cmdline())[:200] for p in alive]
    # The half-built folder is the kit's own: building there again replaces it.
    (source / "00_hang.ipynb").unlink()
    nbformat.write(v4.new_notebook(cells=[v4.new_code_cell("1 + 1")]), source / "00_quick.ipynb")
    again = workshop.build(tmp_path / "out", source=source, progress=False)
    assert [run.status for run in again.runs] == ["ok"]
    assert not (tmp_path / "out" / "00_hang.ipynb").exists()


def test_assets_offline_without_a_cache_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALML_OFFLINE", "1")
    assert not workshop.assets_ready()
    with pytest.raises(errors.OfflineError, match="offline mode is on"):
        workshop.setup_assets()


# --- serving ---------------------------------------------------------------------------------


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError):  # not listening (yet)
        return 0, b""


def test_serve_binds_loopback_and_serves_only_the_folder(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "assets").mkdir(parents=True)
    (bundle / "index.html").write_text("<p>index</p>")
    (bundle / "assets" / "a.js").write_text("1")
    (tmp_path / "secret.txt").write_text("secret")
    (bundle / "link.txt").symlink_to(tmp_path / "secret.txt")
    with workshop.serve(bundle) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/index.html")
        base = server.url.rsplit("/", 1)[0]
        assert _get(server.url) == (200, b"<p>index</p>")
        assert _get(f"{base}/assets/a.js") == (200, b"1")
        assert _get(f"{base}/") == (200, b"<p>index</p>")
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/link.txt", "/assets/"):
            status, body = _get(base + path)
            assert status == 404 and b"secret" not in body, path
        assert server._httpd.server_address[0] == "127.0.0.1"
    with pytest.raises(errors.InputError, match=r"no index\.html"):
        workshop.serve(tmp_path)


def test_serve_command_serves_until_terminated(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>served</p>")
    port = free_port()
    cmd = [sys.executable, "-m", "localml_kit.cli", "workshop", "serve", str(tmp_path)]
    proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"serving {tmp_path} at http://127.0.0.1:{port}/index.html")
        assert _get(f"http://127.0.0.1:{port}/index.html") == (200, b"<p>served</p>")
        proc.terminate()
        assert proc.wait(timeout=30) == 143
        assert _get(f"http://127.0.0.1:{port}/index.html")[0] == 0  # the port is closed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# --- the summary a widget leaves in the saved notebook ----------------------------------------


def test_fallback_summary_follows_the_last_result(tmp_path: Path) -> None:
    """Run in a real kernel: the saved output's text/html is the last result, from a thread too."""
    from nbclient import NotebookClient

    nb = widgets_notebook()
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for o in nb.cells[5].outputs if "text/html" in o.get("data", {})]
    assert len(outputs) == 1
    data = outputs[0]["data"]
    assert "<p>the last result</p>" in data["text/html"], data["text/html"]
    assert data["text/plain"] == "Card: <p>the last result</p>"
    assert data[_build.WIDGET_VIEW]["model_id"]


# --- the bundle in a browser -----------------------------------------------------------------

JS_PAGE = r"""() => {
    const blank = JS_BLANK;
    const text = document.body.innerText;
    return {
        views: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
        drawn: [...document.querySelectorAll('.widget-subarea')]
            .filter(e => e.querySelector('.lm-Widget')).length,
        loading: text.includes('Loading widget'),
        widgetErrors: text.includes('Error displaying widget'),
        staticShown: [...document.querySelectorAll('.localml-static')]
            .filter(e => getComputedStyle(e).display !== 'none').length,
        images: [...document.querySelectorAll('img')]
            .map(e => [e.naturalWidth, e.naturalHeight, blank(e)]),
        counter: [...document.querySelectorAll('.counter-button')].map(e => e.textContent),
        progressBars: document.querySelectorAll('.widget-hprogress').length,
    };
}""".replace("JS_BLANK", JS_BLANK)

JS_DRAWN = r"""(n) => [...document.querySelectorAll('.widget-subarea')]
    .filter(e => e.querySelector('.lm-Widget')).length >= n"""


@pytest.fixture
def chromium_exe() -> str:
    from localml_kit import config

    executable, reason = config.chromium()
    if executable is None:
        if IN_CI:
            pytest.fail(f"the bundle test needs Chromium: {reason}")
        pytest.skip(f"the bundle test needs Chromium: {reason}")
    return executable


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[workshop.Bundle, Path]:
    from tests.conftest import REAL_HOME, missing_samples

    if missing_samples(REAL_HOME):
        pytest.skip("samples not built; run `make samples`")
    source = tmp_path_factory.mktemp("series")
    for path in workshop.select(workshop.notebooks(), list(SERIES)):
        shutil.copy(path, source / path.name)
    nbformat.write(widgets_notebook(), source / "90_widgets_offline.ipynb")
    nbformat.write(raising_notebook(), source / "91_raises.ipynb")
    out = tmp_path_factory.mktemp("bundle") / "workshop"
    old = os.environ.get("LOCALML_HOME")
    os.environ["LOCALML_HOME"] = str(REAL_HOME)
    try:
        bundle = workshop.build(out, source=source, timeout=600, progress=False)
    finally:
        if old is None:
            os.environ.pop("LOCALML_HOME", None)
        else:
            os.environ["LOCALML_HOME"] = old
    return bundle, source


@pytest.mark.samples
@pytest.mark.notebook
def test_bundle_marks_the_failure_and_builds_the_rest(
    built: tuple[workshop.Bundle, Path],
) -> None:
    bundle, _ = built
    status = {r.name[:2]: r.status for r in bundle.runs}
    assert status == {"00": "ok", "02": "ok", "04": "ok", "90": "ok", "91": "failed"}, [
        (r.name, r.error) for r in bundle.runs
    ]
    failed = bundle.failed[0]
    assert failed.error == "ValueError: bad <script>alert(1)</script> input" and failed.cell == 3
    index = (bundle.folder / "index.html").read_text()
    assert "bad &lt;script&gt;alert(1)&lt;/script&gt; input" in index and "<script>" not in index
    assert "Widgets offline &amp; &lt;saved&gt; state" in index
    for run in bundle.runs:
        assert f"href='{run.html}'" in index and run.goal and run.seconds > 0
        assert (bundle.folder / run.html).is_file() and (bundle.folder / run.ipynb).is_file()
    ran = nbformat.read(bundle.folder / failed.ipynb, as_version=4)
    assert ran.cells[1].outputs[0]["text"] == "ran\n" and ran.cells[3].execution_count is None
    executed = nbformat.read(bundle.folder / "90_widgets_offline.ipynb", as_version=4)
    assert executed.metadata["widgets"][_build.WIDGET_STATE]["state"]
    record = json.loads((bundle.folder / "bundle.json").read_text())
    assert [r["name"] for r in record["runs"]] == [r.name for r in bundle.runs]
    with zipfile.ZipFile(bundle.zip) as archive:
        names = set(archive.namelist())
    assert {"workshop/index.html", "workshop/assets/embed-amd.js", "workshop/assets/anywidget.js"}
    assert {f"workshop/{r.html}" for r in bundle.runs} <= names
    assert "workshop/assets/require.js" in names and "workshop/index.html" in names


@pytest.mark.samples
@pytest.mark.browser
def test_bundle_pages_draw_every_widget_offline(
    built: tuple[workshop.Bundle, Path], chromium_exe: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    bundle, _ = built
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    missing: list[str] = []
    drawn_s: dict[str, float] = {}

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_exe, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", route)
        try:
            for run in (*bundle.runs, None):
                name = "index.html" if run is None else run.html
                page = context.new_page()
                page.on(
                    "request",
                    lambda r: (
                        None
                        if r.url.startswith(("file://", "blob:", "data:"))
                        else outside.append(r.url)
                    ),
                )
                page.on("requestfailed", lambda r: missing.append(r.url))
                started = time.perf_counter()
                page.goto((bundle.folder / name).as_uri())
                if run is not None and run.widget_views:
                    page.wait_for_function(JS_DRAWN, arg=run.widget_views, timeout=60_000)
                    drawn_s[run.name] = time.perf_counter() - started
                page.wait_for_load_state("load")
                page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"), full_page=True)
                state = page.evaluate(JS_PAGE)
                if run is not None and run.name.startswith("04"):
                    # The graph widget draws the model from its saved state, nodes and all.
                    graph_view = page.locator(".lmk-graph").first
                    expect(graph_view).to_have_attribute(
                        "data-drawn", re.compile(r"^\d+$"), timeout=30_000
                    )
                    drawn_nodes = graph_view.locator(".lmk-node").count()
                    assert drawn_nodes > 0, f"the graph widget drew no node in {name}"
                    graph_view.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}-graph.png"))
                page.close()
                if run is None:
                    continue
                assert state["views"] == run.widget_views, (run.name, state)
                assert state["drawn"] == run.widget_views, (run.name, state)
                assert not state["loading"] and not state["widgetErrors"], (run.name, state)
                assert state["staticShown"] == 0, (run.name, state)
                assert all(w and h and not blank for w, h, blank in state["images"]), state
                if run.name.startswith("90"):
                    assert state["counter"] == ["count is 42"] and state["progressBars"] == 1
                    assert run.widget_views == 5 and len(state["images"]) == 1
                if run.name[:2] in {"02", "04"}:  # the kit's widgets and their plots
                    assert run.widget_views >= 2 and state["images"], (run.name, state)
            # Served over HTTP the same page draws too (its policy allows its own origin).
            with workshop.serve(bundle.folder) as server:
                page = browser.new_page()
                page.route(
                    "**/*",
                    lambda r: (
                        r.continue_()
                        if r.request.url.startswith(server.url.rsplit("/", 1)[0])
                        else (outside.append(r.request.url), r.abort())
                    ),
                )
                page.goto(server.url.replace("index.html", "90_widgets_offline.html"))
                page.wait_for_function(JS_DRAWN, arg=5, timeout=60_000)
                page.close()
        finally:
            browser.close()
    assert not outside, outside
    assert not missing, missing
    print("seconds from opening a page to its last widget drawn:", drawn_s)


# --- the notebooks ship with the package ------------------------------------------------------

# What a wheel is built from: the package, the series and the files setup.py ships with it.
WHEEL_SOURCES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "localml_kit",
    "notebooks",
    "data",
)


def _kit_python(venv: Path) -> Path:
    return venv / "bin" / "python"


@pytest.mark.notebook
def test_lab_from_an_installed_wheel_copies_the_series_and_starts_jupyterlab(
    tmp_path: Path,
) -> None:
    """A wheel built here, installed (no deps) into a fresh venv that borrows this venv's
    packages: `localml-kit notebooks` and `localml-kit lab` work with no source tree in sight."""
    tree = tmp_path / "tree"
    for name in WHEEL_SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy(source, tree / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, tree],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = wheels.glob("localml_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = {f"localml_kit/_notebooks/{p.name}" for p in (REPO / "notebooks").glob("*.ipynb")}
    assert shipped <= names and "localml_kit/_data/sentences.txt" in names
    assert "localml_kit/workshop/templates/localml_workshop/index.html.j2" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = _kit_python(venv)
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    # The kit's dependencies come from this venv; the kit itself only from the wheel.
    (Path(purelib) / "kit-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", wheel],
        check=True,
        timeout=300,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"),
        JUPYTER_DATA_DIR=str(tmp_path / "jdata"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jrun"),
        IPYTHONDIR=str(tmp_path / "ipy"),
    )
    where = subprocess.run(
        [
            python,
            "-c",
            "import localml_kit, localml_kit.workshop as w, localml_kit.compare as c;"
            " print(localml_kit.__file__); print(w.folder()); print(len(c.corpus()))",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=work,
        env=env,
    ).stdout.split()
    assert where[0].startswith(purelib) and where[1] == f"{purelib}/localml_kit/_notebooks"
    assert where[2] == "209"  # the corpus ships too

    cli = venv / "bin" / "localml-kit"
    copied = subprocess.run(
        [cli, "notebooks", "only-copy"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "notebooks copied" in copied.stdout
    assert sorted(p.name for p in (work / "only-copy").glob("*.ipynb")) == sorted(
        p.name for p in (REPO / "notebooks").glob("*.ipynb")
    )

    port, token = free_port(), "workshop-test"
    log = (tmp_path / "lab.log").open("wb")
    lab = subprocess.Popen(
        [
            cli,
            "lab",
            "--",
            "--no-browser",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            "--ServerApp.port_retries=0",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        listing: dict[str, Any] = {}
        while time.monotonic() < deadline and lab.poll() is None:
            status, body = _get(f"http://127.0.0.1:{port}/api/contents?token={token}")
            if status == 200:
                listing = json.loads(body)
                break
            time.sleep(0.5)
        said = (tmp_path / "lab.log").read_text(errors="replace")
        assert listing, f"JupyterLab did not answer: {said[-2000:]}"
        served = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
        assert served == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
        assert (work / "localml-notebooks" / "00_setup_and_hardware.ipynb").is_file()
        assert _get(f"http://127.0.0.1:{port}/lab?token={token}")[0] == 200
        assert "open 00_setup_and_hardware.ipynb first" in said
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait(timeout=10)
        log.close()
