"""The notebooks in a real JupyterLab, and netron's page, driven by headless Chromium.

Starts ``jupyter lab`` from this environment on 127.0.0.1 with a private token,
private Jupyter folders and a copy of a notebook, opens it in Chromium through
Playwright, runs every cell from the Run menu and checks what a learner would
see: every code cell executed, no stderr or error output, the tqdm progress bars
rendered as ipywidgets (not as text), the tables and the matplotlib plots, and
(notebook 04) the model graph drawn by netron inside the GraphViewer, and
(notebook 02) the ZooBrowser's table, card and the GraphViewer it opens. A second
test opens the kit's netron page directly with the browser's clock a year ahead:
the graph appears with no consent dialog, no update prompt and no request
beyond 127.0.0.1. Host names never resolve in this browser, so nothing can
leave the machine. Screenshots go to ``test-artifacts/browser/``.

Chromium comes from ``LOCALML_CHROMIUM``, ``/usr/bin/chromium`` or
``/usr/bin/chromium-browser`` (``make browser`` installs Debian's). Without one
the test skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import IN_CI, REPO

NOTEBOOKS = (
    "00_setup_and_hardware.ipynb",
    "02_finding_models.ipynb",
    "04_inside_a_model.ipynb",
)
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",
    # Any host name fails to resolve: the page can only reach 127.0.0.1.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
SERVER_TIMEOUT_S = 60
KERNEL_TIMEOUT_S = 60
RUN_TIMEOUT_S = 240
STDERR = "application/vnd.jupyter.stderr"  # JupyterLab renders error outputs with this type too

# The kernel status in the status bar reads "Python 3 (ipykernel) | Idle".
JS_KERNEL_IDLE = r"""() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .some(e => / \| Idle$/.test(e.textContent.trim()))"""

# Run All marks every queued cell "[*]:" at once, so the run is over when no
# cell shows "[*]:", some cell shows a count and the kernel is idle. textContent,
# not innerText: cells out of view are not rendered and have no innerText.
JS_RUN_FINISHED = r"""() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
        .map(e => e.textContent.trim());
    const idle = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
        .some(e => / \| Idle$/.test(e.textContent.trim()));
    return idle && !prompts.includes('[*]:') && prompts.some(p => /^\[\d+\]:$/.test(p));
}"""

JS_STATE = r"""(stderr) => ({
    status: [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent.trim()),
    dialogs: [...document.querySelectorAll('.jp-Dialog')].map(e => e.textContent.trim().slice(0, 200)),
    prompts: [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
        .map(e => e.textContent.trim()),
    stderr: [...document.querySelectorAll(`.jp-OutputArea-output[data-mime-type="${stderr}"]`)]
        .map(e => e.textContent.trim().slice(0, 500)),
    widgetErrors: document.body.textContent.includes('Error displaying widget'),
    widgets: document.querySelectorAll('.jp-Notebook .jupyter-widgets').length,
    progressBars: document.querySelectorAll('.jp-Notebook .widget-hprogress').length,
    images: [...document.querySelectorAll('.jp-Notebook .jp-RenderedImage img')]
        .map(e => [e.naturalWidth, e.naturalHeight]),
})"""


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    log: Path
    code_cells: int
    notebook: str


@dataclass
class BrowserLog:
    """What the page reported while the test ran."""

    console: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def on_request(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname != "127.0.0.1":
            self.outside_requests.append(url)


def find_chromium() -> tuple[str | None, str]:
    """The Chromium executable to use, or None and why there is none."""
    wanted = os.environ.get("LOCALML_CHROMIUM", "")
    if wanted:
        found = shutil.which(wanted)
        if found:
            return found, ""
        return None, f"LOCALML_CHROMIUM={wanted!r} is not an executable"
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found, ""
    return None, (
        f"no Chromium found (tried {', '.join(CHROMIUM_CANDIDATES)}); run `make browser` "
        "or set LOCALML_CHROMIUM=/path/to/chromium"
    )


@pytest.fixture
def chromium() -> str:
    executable, reason = find_chromium()
    if executable is None:
        message = f"browser test needs Chromium: {reason}"
        print(message)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def fresh_notebook(source: Path, target: Path) -> int:
    """Copy a notebook without outputs or execution counts; returns its number of code cells."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    code_cells = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            code_cells += 1
            cell["outputs"] = []
            cell["execution_count"] = None
    target.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return code_cells


def server_url(runtime: Path, port: int) -> str:
    """The URL the server reports in its runtime file (it moves on if the port got taken)."""
    for info in runtime.glob("jpserver-*.json"):
        try:
            return str(json.loads(info.read_text())["url"]).rstrip("/")
        except (OSError, ValueError, KeyError):
            continue
    return f"http://127.0.0.1:{port}"


def wait_until_ready(
    process: subprocess.Popen[bytes], runtime: Path, port: int, token: str, log: Path
) -> str:
    """Poll ``/api/status`` until the server answers; returns its base URL."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with code {process.returncode}:\n{log_tail(log)}")
        url = server_url(runtime, port)
        try:
            with opener.open(f"{url}/api/status?token={token}", timeout=2) as response:
                if response.status == 200:
                    return url
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"jupyter lab did not answer within {SERVER_TIMEOUT_S} s:\n{log_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server then shuts its kernels down), SIGKILL after a timeout."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def lab(real_home: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 serving a fresh copy of the notebook, with private settings."""
    notebook = request.param
    root = tmp_path / "lab-root"
    root.mkdir()
    code_cells = fresh_notebook(REPO / "notebooks" / notebook, root / notebook)

    jupyter = tmp_path / "jupyter"
    settings = jupyter / "lab-settings"
    notification = (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    # No news or update check: both need the internet and show a toast over the page.
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    runtime = jupyter / "runtime"

    env = dict(os.environ)  # carries LOCALML_HOME from real_home to the kernel
    env.update(
        # Private user folders; the environment's own (kernelspec, lab extensions,
        # overrides.json under sys.prefix) stay on the search paths.
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
    )
    env.pop("MPLBACKEND", None)  # the kernel picks the inline backend itself

    token = secrets.token_hex(24)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")

    log = tmp_path / "jupyter-lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = wait_until_ready(process, runtime, port, token, log)
        yield Lab(
            url=url, token=token, root=root, log=log, code_cells=code_cells, notebook=notebook
        )
    finally:
        stop(process)


def page_state(page: Page) -> dict[str, Any]:
    try:
        return dict(page.evaluate(JS_STATE, STDERR))
    except Exception as error:  # the page itself may be gone
        return {"error": repr(error)}


def save_failure_evidence(page: Page, lab: Lab, browser_log: BrowserLog) -> None:
    stem = Path(lab.notebook).stem
    try:
        page.screenshot(path=str(ARTIFACTS / f"{stem}-failure.png"))
    except Exception as error:
        print(f"no failure screenshot: {error!r}")
    shutil.copy(lab.log, ARTIFACTS / f"{stem}-failure-server.log")
    (ARTIFACTS / f"{stem}-failure-console.log").write_text("\n".join(browser_log.console) + "\n")
    print(f"failure evidence in {ARTIFACTS}")


def scroll_to(page: Page, selector: str) -> None:
    """Scroll the notebook panel (JupyterLab scrolls inside it) so the element is in view."""
    page.locator(selector).first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # let cells that came into view render


@pytest.mark.browser
@pytest.mark.parametrize("lab", NOTEBOOKS, indirect=True, ids=lambda n: n[:2])
def test_notebook_runs_in_jupyterlab_with_widgets(chromium: str, lab: Lab) -> None:
    code_cells = lab.code_cells
    notebook = lab.notebook
    stem = Path(notebook).stem
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{stem}*"):  # no stale evidence from an earlier run
        old.unlink()
    browser_log = BrowserLog()
    started = time.monotonic()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.on("request", lambda request: browser_log.on_request(request.url))
            page = context.new_page()
            page.on("console", lambda msg: browser_log.console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda error: browser_log.console.append(f"pageerror: {error}"))
            try:
                page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
                try:
                    page.wait_for_selector(
                        ".jp-NotebookPanel .jp-Notebook", timeout=KERNEL_TIMEOUT_S * 1000
                    )
                    # Run All sent before the kernel is idle is silently dropped.
                    page.wait_for_function(JS_KERNEL_IDLE, timeout=KERNEL_TIMEOUT_S * 1000)
                except PlaywrightTimeoutError:
                    pytest.fail(
                        f"notebook or kernel not ready in {KERNEL_TIMEOUT_S} s: {page_state(page)}"
                    )

                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    page.wait_for_function(
                        JS_RUN_FINISHED, timeout=RUN_TIMEOUT_S * 1000, polling=250
                    )
                except PlaywrightTimeoutError:
                    pytest.fail(f"Run All did not finish in {RUN_TIMEOUT_S} s: {page_state(page)}")
                ran_in = time.monotonic() - started

                state = page_state(page)
                prompts = [str(p) for p in state["prompts"]]
                counts = [int(m.group(1)) for p in prompts if (m := re.fullmatch(r"\[(\d+)\]:", p))]
                assert not state["stderr"], f"stderr or error output: {state['stderr']}"
                assert len(prompts) == code_cells, f"{code_cells} code cells in the file: {state}"
                assert len(counts) == code_cells, f"not every code cell ran: {state}"
                assert counts == sorted(counts), f"cells did not run in order: {state}"
                assert not state["widgetErrors"], f"'Error displaying widget' on the page: {state}"
                assert state["widgets"], (
                    f"no ipywidgets rendered (tqdm fell back to text?): {state}"
                )
                assert state["progressBars"], f"no progress bar widget rendered: {state}"
                assert state["images"], f"no matplotlib image output: {state}"
                assert all(w > 0 and h > 0 for w, h in state["images"]), (
                    f"an image did not load: {state}"
                )

                CHECKS[notebook](page, stem)

                assert not browser_log.outside_requests, (
                    f"the page tried to reach beyond 127.0.0.1: {browser_log.outside_requests}"
                )
                print(
                    f"page loaded and all cells ran in {ran_in:.1f} s; screenshots in {ARTIFACTS}"
                )
            except BaseException:
                save_failure_evidence(page, lab, browser_log)
                raise
        finally:
            browser.close()


def check_notebook_00(page: Page, stem: str) -> None:
    scroll_to(page, "table.localml-hardware")
    expect(page.locator("table.localml-hardware")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))

    scroll_to(page, ".jp-Notebook .widget-hprogress")
    expect(page.locator(".jp-Notebook .widget-hprogress").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"{stem}-widgets.png"))

    scroll_to(page, ".jp-Notebook .jp-RenderedImage img")
    expect(page.locator(".jp-Notebook .jp-RenderedImage img").first).to_be_visible()


def check_notebook_02(page: Page, stem: str) -> None:
    # The ZooBrowser: the results table and the picked card, from the sources on this machine.
    browser = page.locator(".jp-Notebook .localml-zoo-browser").first
    browser.scroll_into_view_if_needed()
    expect(browser.locator("table.localml-zoo-table")).to_contain_text("ppocr-v4-det")
    expect(browser.locator(".localml-zoo-card")).to_contain_text("text-detection")
    browser.locator("table.localml-zoo-table").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{stem}-zoo-table.png"))
    # The GraphViewer it opened below draws the picked model with netron.
    frame = browser.locator(".localml-graph-viewer").first.frame_locator("iframe.localml-netron")
    expect(frame.locator("g.node").first).to_be_visible(timeout=NETRON_TIMEOUT_S * 1000)
    page.wait_for_timeout(500)  # let the layout settle for the picture
    page.screenshot(path=str(ARTIFACTS / f"{stem}-zoo-browser.png"))


def check_notebook_04(page: Page, stem: str) -> None:
    scroll_to(page, ".jp-Notebook .localml-model-summary")
    expect(page.locator(".jp-Notebook .localml-model-summary").first).to_be_visible()

    # The GraphViewer: its Graph tab holds netron's frame, and the frame draws the graph.
    viewer = page.locator(".jp-Notebook .localml-graph-viewer").first
    viewer.scroll_into_view_if_needed()
    expect(viewer.locator(".widget-tab")).to_be_visible()
    frame = viewer.frame_locator("iframe.localml-netron")
    expect(frame.locator("g.node").first).to_be_visible(timeout=NETRON_TIMEOUT_S * 1000)
    expect(frame.get_by_text(CONSENT_TEXT)).to_have_count(0)
    expect(frame.get_by_text(UPDATE_TEXT)).to_have_count(0)
    page.wait_for_timeout(500)  # let the layout settle for the picture
    page.screenshot(path=str(ARTIFACTS / f"{stem}-graph-viewer.png"))

    # The standalone view from graph.show() draws too (it is closed at the end of the run,
    # so its frame may be blank by now: only the viewer's frame is checked above).
    assert page.locator(".jp-Notebook iframe.localml-netron").count() >= 1


CHECKS = {
    "00_setup_and_hardware.ipynb": check_notebook_00,
    "02_finding_models.ipynb": check_notebook_02,
    "04_inside_a_model.ipynb": check_notebook_04,
}
NETRON_TIMEOUT_S = 60
CONSENT_TEXT = "This app uses cookies"
UPDATE_TEXT = "Please update"


@pytest.mark.browser
@pytest.mark.samples
def test_netron_page_offline_without_dialogs(chromium: str, real_home: Path) -> None:
    """The kit's netron page in a browser with no network and its clock a year ahead."""
    from localml_kit import graph

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser_log = BrowserLog()
    views = [graph.show("all-minilm-l6-v2"), graph.show("smollm2-135m-instruct:gguf")]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=CHROMIUM_ARGS
            )
            try:
                context = browser.new_context(viewport=VIEWPORT)
                context.on("request", lambda request: browser_log.on_request(request.url))
                page = context.new_page()
                # netron asks to update once its page is 180 days older than the browser's clock.
                page.clock.install(time=datetime.datetime.now() + datetime.timedelta(days=400))
                page.on("console", lambda m: browser_log.console.append(f"{m.type}: {m.text}"))
                for view, label in zip(views, ("onnx", "gguf"), strict=True):
                    page.goto(view.url)
                    try:
                        expect(page.locator("g.node").first).to_be_visible(
                            timeout=NETRON_TIMEOUT_S * 1000
                        )
                    except AssertionError:
                        page.screenshot(path=str(ARTIFACTS / f"netron-{label}-failure.png"))
                        raise
                    expect(page.get_by_text(CONSENT_TEXT)).to_have_count(0)
                    expect(page.get_by_text(UPDATE_TEXT)).to_have_count(0)
                    assert page.locator("g.node").count() > 50
                    page.wait_for_timeout(1000)  # netron fades its splash out
                    page.screenshot(path=str(ARTIFACTS / f"netron-{label}.png"))
            finally:
                browser.close()
    finally:
        for view in views:
            view.close()
    assert not browser_log.outside_requests, (
        f"netron's page tried to reach beyond 127.0.0.1: {browser_log.outside_requests}"
    )
