"""The notebooks in a real JupyterLab, and netron's page, driven by headless Chromium.

Starts ``jupyter lab`` from this environment on 127.0.0.1 with a private token,
private Jupyter folders and a copy of a notebook, opens it in Chromium through
Playwright, runs every cell from the Run menu and checks what a learner would
see. Every notebook under ``notebooks/`` runs (a notebook added later is picked
up), with the same checks for all, after Run All and again after its widgets
were clicked: every code cell executed, in order; no stderr or error output,
neither on the page nor in any message from the kernel (a widget callback that
fails writes only to JupyterLab's log console); nothing in the log console; no
"Error displaying widget"; every image loaded and not blank; nothing requested
beyond 127.0.0.1. Each notebook then has its own expectations (``EXPECT``): whether it
shows ipywidgets, a tqdm progress bar (as a widget, not as text) and matplotlib
images, and a check that clicks each of its widgets once and asserts what the
click did: 01 the ChatPanel streams a reply and stops, 02 the ZooBrowser
searches again and its GraphViewer draws (the graph widget, and netron's tab), 04
the graph widget draws MiniLM (every node once its layers are expanded) and the
SmolLM2 decoder, its overlays recolour the nodes, a click opens the node panel,
netron opens one click away and the tabs switch, 05 the SearchBox ranks the results of a new query, 06 the
ProfilerPanel runs again and draws its table and plots, 07 the OutputComparator
compares twice. A notebook with no entry gets the default expectations.
A second test opens the kit's netron page directly with the browser's clock a
year ahead: the graph appears with no consent dialog, no update prompt and no
request beyond 127.0.0.1. Host names never resolve in this browser, so nothing
can leave the machine. Screenshots go to ``test-artifacts/browser/``.

Chromium comes from ``LOCALML_CHROMIUM``, ``/usr/bin/chromium`` or
``/usr/bin/chromium-browser`` (``make browser`` installs Debian's). Without one
the test skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import ast
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, WebSocket, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from localml_kit.engines import _driver
from tests.conftest import IN_CI, REPO

# Every notebook, so that one added later runs here too (with the default expectations).
NOTEBOOKS = tuple(sorted(path.name for path in (REPO / "notebooks").glob("*.ipynb")))
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# The kit's own headless flags (no GPU; any host name fails to resolve, so a page can only
# reach 127.0.0.1).
CHROMIUM_ARGS = [*_driver.CHROMIUM_ARGS, *_driver.NO_GPU_ARGS]
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

# An image that loaded but has no pixel darker than near-white (or none opaque): a blank plot.
JS_BLANK = r"""img => {
    if (!img.naturalWidth || !img.naturalHeight) return false;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    const px = context.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] > 0 && (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240)) return false;
    }
    return true;
}"""

JS_STATE = r"""(stderr) => {
    const blank = JS_BLANK;
    return {
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
        .map(e => [e.naturalWidth, e.naturalHeight, blank(e)]),
    // Output with no cell to go to (a widget callback's, say) lands in the log console; the
    // status bar then counts it: "2 log entries for <notebook>".
    logEntries: [...document.querySelectorAll('.jp-LogConsoleStatusItem [title]')]
        .map(e => e.getAttribute('title')).join(' '),
    };
}""".replace("JS_BLANK", JS_BLANK)


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
    """What the page reported while the test ran, and the kernel's error and stderr messages."""

    console: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    # Every "error" and stderr "stream" message the kernel sent, shown on the page or not.
    kernel_errors: list[str] = field(default_factory=list)
    # The comms the widget manager opens at start to ask for the widgets' state: before
    # ipywidgets is imported the kernel answers them on stderr, harmlessly.
    control_comms: set[str] = field(default_factory=set)

    def on_request(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname != "127.0.0.1":
            self.outside_requests.append(url)

    def on_websocket(self, ws: WebSocket) -> None:
        if "/api/kernels/" in ws.url and "/channels" in ws.url:
            ws.on("framesent", self.on_page_frame)
            ws.on("framereceived", self.on_kernel_frame)

    def on_page_frame(self, payload: str | bytes) -> None:
        try:
            header, content = kernel_message(payload, {"comm_open"})
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            return
        if header.get("msg_type") == "comm_open" and content.get("target_name") == CONTROL:
            self.control_comms.add(str(content.get("comm_id")))

    def on_kernel_frame(self, payload: str | bytes) -> None:
        try:
            header, content = kernel_message(payload, {"error", "stream"})
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            return  # not a kernel message this test knows how to read
        kind = header.get("msg_type")
        if kind == "error":
            traceback = "\n".join(content.get("traceback", []))
            self.kernel_errors.append(
                f"error {content.get('ename')}: {content.get('evalue')}\n{ANSI.sub('', traceback)}"
            )
        elif kind == "stream" and content.get("name") == "stderr":
            text = str(content.get("text", ""))
            about_control = text.strip() == f"No such comm target registered: {CONTROL}" or any(
                text.strip() == f"No such comm: {comm}" for comm in self.control_comms
            )
            if not about_control:
                self.kernel_errors.append(f"stderr: {text}")


CONTROL = "jupyter.widget.control"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def kernel_message(payload: str | bytes, kinds: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and content of a kernel message as the server sends it to the page.

    JSON text in the legacy protocol; in ``v1.kernel.websocket.jupyter.org`` (what
    JupyterLab asks for) a count of offsets, the offsets (8 bytes each, little
    endian), then the channel, header, parent header, metadata, content and buffers.
    The content is parsed only for messages of the ``kinds`` asked for (else empty).
    """
    if isinstance(payload, str):
        message = json.loads(payload)
        return message["header"], message["content"]
    count = int.from_bytes(payload[:8], "little")
    offsets = [int.from_bytes(payload[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    header = json.loads(payload[offsets[1] : offsets[2]])
    if header.get("msg_type") not in kinds:
        return header, {}
    return header, json.loads(payload[offsets[4] : offsets[5]])


def find_chromium() -> tuple[str | None, str]:
    """The Chromium executable to use, or None and why there is none (the kit's own lookup)."""
    from localml_kit import config

    return config.chromium()


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
    (ARTIFACTS / f"{stem}-failure-kernel.log").write_text(
        "\n".join(browser_log.kernel_errors) + "\n"
    )
    print(f"failure evidence in {ARTIFACTS}")


def scroll_to(page: Page, selector: str) -> None:
    """Scroll the notebook panel (JupyterLab scrolls inside it) so the element is in view."""
    page.locator(selector).first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # let cells that came into view render


NETRON_TIMEOUT_S = 60
GRAPH_TIMEOUT_S = 60  # the graph widget's layout, in a busy browser
CONSENT_TEXT = "This app uses cookies"
UPDATE_TEXT = "Please update"
WIDGET_TIMEOUT_S = 120  # one click's work: a reply, a profile run, a comparison
SEARCH_TIMEOUT_S = 30  # a search over the models or texts on this machine


@dataclass(frozen=True)
class Expect:
    """What a notebook shows after Run All, beyond the checks that every notebook gets."""

    widgets: bool = False  # ipywidgets rendered (a kit widget, a tqdm bar)
    progress_bar: bool = False  # a progress bar drawn as a widget (tqdm's, a panel's), not text
    images: bool = False  # image outputs (matplotlib plots)
    check: Callable[[Page, str], None] | None = None  # clicks its widgets, asserts, screenshots
    run_timeout_s: int = RUN_TIMEOUT_S


@pytest.mark.browser
@pytest.mark.parametrize("lab", NOTEBOOKS, indirect=True, ids=lambda n: n[:2])
def test_notebook_runs_in_jupyterlab_with_widgets(chromium: str, lab: Lab) -> None:
    notebook = lab.notebook
    stem = Path(notebook).stem
    expected = EXPECT.get(notebook, DEFAULT_EXPECT)
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
            page.on("websocket", browser_log.on_websocket)
            try:
                run_all(page, lab, expected.run_timeout_s)
                ran_in = time.monotonic() - started

                state = assert_clean(page, browser_log, "after Run All")
                prompts = [str(p) for p in state["prompts"]]
                counts = [int(m.group(1)) for p in prompts if (m := re.fullmatch(r"\[(\d+)\]:", p))]
                code_cells = lab.code_cells
                assert len(prompts) == code_cells, f"{code_cells} code cells in the file: {state}"
                assert len(counts) == code_cells, f"not every code cell ran: {state}"
                assert counts == sorted(set(counts)), f"cells did not run in order: {state}"
                assert_shows(state, expected)

                try:
                    (expected.check or check_default)(page, stem)
                except Exception as error:
                    if not browser_log.kernel_errors:
                        raise
                    # A widget callback that raised: its traceback is the cause to report.
                    raise AssertionError(
                        f"{error}\nthe kernel sent error or stderr output:\n"
                        + "\n".join(browser_log.kernel_errors)
                    ) from error
                checked_in = time.monotonic() - started - ran_in
                assert_clean(page, browser_log, "after the widget checks")
                print(
                    f"{stem}: page loaded and all cells ran in {ran_in:.1f} s, widget checks "
                    f"{checked_in:.1f} s; {state['widgets']} widget elements, "
                    f"{state['progressBars']} progress bars, {len(state['images'])} images; "
                    f"screenshots in {ARTIFACTS}"
                )
            except BaseException:
                save_failure_evidence(page, lab, browser_log)
                raise
        finally:
            browser.close()


def run_all(page: Page, lab: Lab, timeout_s: int) -> None:
    """Open the notebook, wait for its kernel, run every cell from the Run menu, wait for the end."""
    page.goto(f"{lab.url}/lab/tree/{lab.notebook}?reset&token={lab.token}")
    try:
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=KERNEL_TIMEOUT_S * 1000)
        # Run All sent before the kernel is idle is silently dropped.
        page.wait_for_function(JS_KERNEL_IDLE, timeout=KERNEL_TIMEOUT_S * 1000)
    except PlaywrightTimeoutError:
        pytest.fail(f"notebook or kernel not ready in {KERNEL_TIMEOUT_S} s: {page_state(page)}")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    try:
        page.wait_for_function(JS_RUN_FINISHED, timeout=timeout_s * 1000, polling=250)
    except PlaywrightTimeoutError:
        pytest.fail(f"Run All did not finish in {timeout_s} s: {page_state(page)}")


def assert_clean(page: Page, browser_log: BrowserLog, when: str) -> dict[str, Any]:
    """What every notebook must show: no error, no stderr, every widget and image drawn, offline.

    Returns the page's state.
    """
    state = page_state(page)
    assert not state["stderr"], f"stderr or error output {when}: {state['stderr']}"
    # A widget callback's exception or warning reaches only JupyterLab's log console.
    assert not browser_log.kernel_errors, (
        f"the kernel sent error or stderr output {when}:\n" + "\n".join(browser_log.kernel_errors)
    )
    assert not state["widgetErrors"], f"'Error displaying widget' on the page {when}: {state}"
    assert all(w > 0 and h > 0 for w, h, _ in state["images"]), f"an image did not load: {state}"
    assert not any(blank for _, _, blank in state["images"]), f"a blank image {when}: {state}"
    if re.search(r"\b[1-9]\d* log entr", state["logEntries"]):
        pytest.fail(f"output went to the log console {when}: {log_console(page)}")
    assert not browser_log.outside_requests, (
        f"the page tried to reach beyond 127.0.0.1 {when}: {browser_log.outside_requests}"
    )
    return state


def log_console(page: Page) -> str:
    """Open JupyterLab's log console (the failure screenshot shows it): what it holds, in words."""
    page.locator(".jp-LogConsoleStatusItem").first.click()
    panel = page.locator(".jp-LogConsolePanel").first
    try:
        expect(panel.locator(".jp-OutputArea-output").first).to_be_visible()
    except AssertionError:
        return f"{page_state(page)['logEntries']} (the log console did not open)"
    page.wait_for_timeout(300)
    words = panel.locator(".jp-OutputArea-output").evaluate_all(
        f"""entries => entries.map(e => {{
            const img = e.querySelector('img');
            if (!img) return e.textContent.trim().slice(0, 300);
            const blank = ({JS_BLANK})(img) ? ', blank' : '';
            return `an image (${{img.naturalWidth}}x${{img.naturalHeight}}${{blank}})`;
        }})"""
    )
    return f"{page_state(page)['logEntries']}: " + " | ".join(words)


def assert_shows(state: dict[str, Any], expected: Expect) -> None:
    """The widgets, progress bars and images this notebook is expected to show."""
    if expected.widgets:
        assert state["widgets"], f"no ipywidgets rendered: {state}"
    if expected.progress_bar:
        assert state["progressBars"], f"no progress bar widget (tqdm fell back to text?): {state}"
    if expected.images:
        assert state["images"], f"no image output: {state}"


def shoot(page: Page, stem: str, what: str = "") -> None:
    """A screenshot of what the learner sees now (the viewport)."""
    page.wait_for_timeout(300)  # let the layout settle for the picture
    page.screenshot(path=str(ARTIFACTS / f"{stem}{'-' + what if what else ''}.png"))


# Records on the widget's element whether ``busy`` showed in it since: a click's "Running ..."
# must be seen before its result counts, or the result of the run before would pass.
JS_WATCH = r"""(el, busy) => {
    el.__localmlBusySeen = false;
    el.__localmlObserver?.disconnect();
    const look = () => { if (el.textContent.includes(busy)) el.__localmlBusySeen = true; };
    el.__localmlObserver = new MutationObserver(look);
    el.__localmlObserver.observe(el, {subtree: true, childList: true, characterData: true});
}"""
JS_IDLE_EXPR = r"""[...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .some(e => / \| Idle$/.test(e.textContent.trim()))"""


def click_and_wait(
    page: Page, widget: Locator, button: Locator, busy: str, done: str, timeout_s: float
) -> None:
    """Click ``button``; return once ``widget`` showed ``busy``, the kernel is idle and ``done``.

    ``done`` is a JavaScript expression on ``el``, the widget's element.
    """
    handle = widget.element_handle()
    handle.evaluate(JS_WATCH, busy)
    button.click()
    try:
        page.wait_for_function(
            f"(el) => el.__localmlBusySeen && {JS_IDLE_EXPR} && ({done})",
            arg=handle,
            timeout=timeout_s * 1000,
            polling=250,
        )
    except PlaywrightTimeoutError:
        text = re.sub(r"\s+", " ", widget.text_content() or "")[:1500]
        pytest.fail(f"no {done!r} within {timeout_s} s of the click (widget: {text!r})")


def button(widget: Locator, label: str) -> Locator:
    """The widget's button with this label (its role's name also holds the icon's glyph)."""
    return widget.locator("button", has_text=re.compile(rf"^{re.escape(label)}$"))


def text_of(locator: Locator) -> str:
    return re.sub(r"\s+", " ", locator.text_content() or "").strip()


def table_rows(table: Locator) -> list[dict[str, str]]:
    """A rendered HTML table's body rows, as header -> cell text."""
    return list(
        table.evaluate(
            r"""t => {
            const heads = [...t.querySelectorAll('thead th')].map(h => h.textContent.trim());
            return [...t.querySelectorAll('tbody tr')].map(r => Object.fromEntries(
                [...r.querySelectorAll('th, td')].map((c, i) => [heads[i], c.textContent.trim()])));
        }"""
        )
    )


def check_default(page: Page, stem: str) -> None:
    """A notebook without a check of its own: its first and last outputs and any kit widget."""
    outputs = page.locator(".jp-Notebook .jp-CodeCell .jp-OutputArea-output")
    if outputs.count():
        outputs.first.scroll_into_view_if_needed()
        shoot(page, stem)
        outputs.last.scroll_into_view_if_needed()
        shoot(page, stem, "end")
    kit_widgets = page.locator(".jp-Notebook .jupyter-widgets.widget-vbox[class*='localml-']")
    for i in range(kit_widgets.count()):
        widget = kit_widgets.nth(i)
        widget.scroll_into_view_if_needed()
        expect(widget).to_be_visible()
        assert text_of(widget), f"kit widget {i} is empty"
        shoot(page, stem, f"widget-{i}")


def check_notebook_00(page: Page, stem: str) -> None:
    scroll_to(page, "table.localml-hardware")
    expect(page.locator("table.localml-hardware")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))

    scroll_to(page, ".jp-Notebook .widget-hprogress")
    expect(page.locator(".jp-Notebook .widget-hprogress").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"{stem}-widgets.png"))

    scroll_to(page, ".jp-Notebook .jp-RenderedImage img")
    expect(page.locator(".jp-Notebook .jp-RenderedImage img").first).to_be_visible()


CHAT_PROMPT = "List ten everyday uses of small language models, one sentence each."


def check_notebook_01(page: Page, stem: str) -> None:
    # The ChatPanel: type a prompt, Send; the reply streams in under the transcript; Stop ends
    # it; the exchange lands in the transcript and the stats line says how it ended.
    panel = page.locator(".jp-Notebook .localml-chat-panel").first
    panel.scroll_into_view_if_needed()
    panes = panel.locator(":scope > .widget-html")  # model line, transcript, live reply, stats
    transcript, live, stats = panes.nth(1), panes.nth(2), panes.nth(3)
    send = button(panel, "Send")
    stop = button(panel, "Stop")
    # The panel starts with the chat's history: the notebook sent two turns from code.
    before = text_of(transcript)
    assert before.count("You: ") == 2, f"the transcript lacks the chat's history: {text_of(panel)}"
    expect(stop).to_be_disabled()

    panel.get_by_placeholder("Ask something").fill(CHAT_PROMPT)
    send.click()
    expect(live).to_contain_text(re.compile(r"Model: \S+ \S+"), timeout=WIDGET_TIMEOUT_S * 1000)
    streamed = text_of(live).split("Model: ", 1)[1]
    expect(send).to_be_disabled()
    shoot(page, stem, "chat-streaming")
    try:
        stop.click(timeout=5000)
        stopped = True
    except PlaywrightTimeoutError:  # the reply was over before Stop could be clicked
        stopped = False
    expect(send).to_be_enabled(timeout=WIDGET_TIMEOUT_S * 1000)
    expect(stop).to_be_disabled()
    expect(transcript).to_contain_text(f"You: {CHAT_PROMPT}")
    reply = text_of(transcript)[len(before) :].split("Model: ", 1)[1]
    assert reply.startswith(streamed), f"the transcript's reply {reply!r} is not what streamed"
    expect(live).to_have_text("")
    expect(stats).to_contain_text("stopped" if stopped else re.compile(r"· (eos|length)$"))
    expect(panel.get_by_placeholder("Ask something")).to_have_value("")
    shoot(page, stem, "chat-panel")


def check_notebook_02(page: Page, stem: str) -> None:
    # The ZooBrowser: the results table and the picked card, from the sources on this machine.
    browser = page.locator(".jp-Notebook .localml-zoo-browser").first
    browser.scroll_into_view_if_needed()
    table = browser.locator("table.localml-zoo-table")
    expect(table).to_contain_text("ppocr-v4-det")
    expect(browser.locator(".localml-zoo-card")).to_contain_text("text-detection")
    table.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{stem}-zoo-table.png"))
    # The GraphViewer it opened below draws the picked model in the page, and in netron's tab.
    viewer = browser.locator(".localml-graph-viewer").first
    expect(viewer.locator(".lmk-graph .lmk-node").first).to_be_visible(
        timeout=GRAPH_TIMEOUT_S * 1000
    )
    viewer.scroll_into_view_if_needed()
    shoot(page, stem, "zoo-browser")
    viewer.get_by_role("tab", name="netron", exact=True).click()
    frame = viewer.frame_locator("iframe.localml-netron")
    expect(frame.locator("g.node").first).to_be_visible(timeout=NETRON_TIMEOUT_S * 1000)

    # A click on a table row selects that model: its card opens and the row is highlighted.
    # (A row the search below leaves out, so that its card gives way to the first result.)
    first = [row["model"] for row in table_rows(table)]
    pick = next((i for i, m in enumerate(first) if i and "minilm" not in m), None)
    assert pick is not None, f"no second row to click: {first}"
    table.locator("tbody tr").nth(pick).click()
    # The card comes back from the kernel: a round trip that waits for the page's main thread,
    # which netron's layout in the tab above can hold for seconds on a busy machine.
    expect(browser.locator(".localml-zoo-card")).to_contain_text(
        first[pick], timeout=WIDGET_TIMEOUT_S * 1000
    )
    expect(table.locator("tbody tr.localml-row-selected")).to_have_count(1)
    expect(table.locator("tbody tr.localml-row-selected")).to_contain_text(first[pick])
    shoot(page, stem, "zoo-row-click")

    # A new query and Search: the table holds the new results only, the card the first of them.
    browser.scroll_into_view_if_needed()
    browser.get_by_placeholder("search models").fill("minilm")
    button(browser, "Search").click()
    expect(table).not_to_contain_text("ppocr-v4-det", timeout=SEARCH_TIMEOUT_S * 1000)
    rows = table_rows(table)
    assert rows, f"no rows after searching 'minilm': {text_of(browser)[:500]}"
    assert all("minilm" in row["model"] for row in rows), f"rows that do not match: {rows}"
    assert any(row["model"] == "all-minilm-l6-v2" for row in rows), rows
    expect(browser.locator(".localml-zoo-card")).to_contain_text(rows[0]["model"])
    expect(browser).to_contain_text(re.compile(rf"{len(rows)} of \d+ models shown"))
    table.scroll_into_view_if_needed()
    shoot(page, stem, "zoo-search")


def drawn_fills(widget: Locator) -> list[str]:
    """The fill colour of every drawn node of a graph widget, in drawing order."""
    return list(
        widget.locator(".lmk-node[data-kind=op] rect").evaluate_all(
            "rects => rects.map(r => r.getAttribute('fill'))"
        )
    )


def check_notebook_04(page: Page, stem: str) -> None:
    from localml_kit import graph

    scroll_to(page, ".jp-Notebook .localml-model-summary")
    expect(page.locator(".jp-Notebook .localml-model-summary").first).to_be_visible()

    # The GraphViewer's Graph tab: the kit's graph widget, drawn in the page from widget state.
    viewer = page.locator(".jp-Notebook .localml-graph-viewer").first
    viewer.scroll_into_view_if_needed()
    expect(viewer.locator(".widget-tab")).to_be_visible()
    widget = viewer.locator(".lmk-graph").first
    expect(widget).to_have_attribute(
        "data-drawn", re.compile(r"^\d+$"), timeout=GRAPH_TIMEOUT_S * 1000
    )
    nodes = widget.locator(".lmk-node[data-kind=op]")
    minilm = len(graph.view_data("all-minilm-l6-v2")["nodes"])
    # MiniLM's six layers start collapsed, constants hidden; "Expand layers" and "constants"
    # draw every node of the model.
    assert 0 < nodes.count() < minilm, f"{nodes.count()} nodes drawn before expanding"
    assert widget.locator(".lmk-node[data-kind=group]").count() == 6
    print(f"graph widget in JupyterLab: MiniLM drawn in {widget.get_attribute('data-draw-ms')} ms")
    shoot(page, stem, "graph-widget")
    widget.locator("button.lmk-layers").click()
    expect(widget.locator(".lmk-count")).to_contain_text("(constants hidden)")
    widget.locator(".lmk-constants input").check()
    expect(widget).to_have_attribute(
        "data-drawn-nodes", str(minilm), timeout=GRAPH_TIMEOUT_S * 1000
    )
    assert nodes.count() == minilm
    expect(widget.locator(".lmk-count")).to_contain_text(f"{minilm} of {minilm} nodes drawn")

    # Overlays from the notebook's profile and per-node comparison: each recolours the nodes.
    select = widget.locator("select.lmk-overlay")
    labels = [text_of(o) for o in select.locator("option").all()]
    time_label = next(x for x in labels if x.startswith("time per node"))
    provider_label = next(x for x in labels if x.startswith("provider"))
    error_label = next(x for x in labels if x.startswith("error per node"))
    assert select.input_value() == error_label, labels  # the last one added is shown
    seen = {}
    for label in ("none", time_label, provider_label, error_label):
        select.select_option(label=label)
        seen[label] = drawn_fills(widget)
    assert len({tuple(f) for f in seen.values()}) == 4, (
        "switching overlays left the colours as they were"
    )
    assert len(set(seen[time_label])) > 10, "the time overlay has no colour scale"
    legend = widget.locator(".lmk-legend")
    select.select_option(label=time_label)
    expect(legend).to_contain_text("ms")
    expect(legend).to_contain_text(time_label)
    select.select_option(label=provider_label)
    expect(legend).to_contain_text("CPU")

    # Search, then a click on the found node: its panel, with shapes, dtypes and weight bytes.
    select.select_option(label=time_label)
    widget.locator("input.lmk-search").fill("layer.0/attention/self/query/MatMul")
    expect(widget.locator(".lmk-count")).to_contain_text("1 match")
    query = widget.locator('.lmk-node[data-name$="layer.0/attention/self/query/MatMul"]')
    query.hover()
    expect(widget.locator(".lmk-tip")).to_contain_text(re.compile(r"time per node.*: [\d.e+-]+ ms"))
    query.click()
    panel = widget.locator(".lmk-panel.lmk-open")
    expect(panel).to_be_visible()
    expect(panel.locator("h4")).to_have_text("MatMul")
    expect(panel).to_contain_text("[384, 384]")
    expect(panel).to_contain_text("float32")
    expect(panel).to_contain_text("589.8 kB")
    shoot(page, stem, "graph-widget-panel")

    # The language model's decoder: 30 layers, collapsed at first, then every node.
    decoder = page.locator(".jp-Notebook .lmk-graph").nth(1)
    decoder.scroll_into_view_if_needed()
    data = graph.view_data("smollm2-135m-instruct")
    expect(decoder).to_have_attribute(
        "data-drawn", re.compile(r"^\d+$"), timeout=GRAPH_TIMEOUT_S * 1000
    )
    layers = decoder.locator(".lmk-node[data-kind=group]")
    assert layers.count() == len(data["groups"]) >= 30
    shoot(page, stem, "graph-widget-decoder")
    decoder.locator("button.lmk-layers").click()
    decoder.locator(".lmk-constants input").check()
    expected = len(data["nodes"])
    expect(decoder).to_have_attribute(
        "data-drawn-nodes", str(expected), timeout=GRAPH_TIMEOUT_S * 1000
    )
    assert decoder.locator(".lmk-node[data-kind=op]").count() == expected
    print(
        f"graph widget: the decoder's {expected} nodes in {decoder.get_attribute('data-draw-ms')} ms"
    )
    decoder.locator("button.lmk-fit").click()
    shoot(page, stem, "graph-widget-decoder-expanded")

    # netron stays one click away: its tab, served on 127.0.0.1, draws the same model.
    viewer.scroll_into_view_if_needed()
    button(viewer, "Open in netron").click()
    frame = viewer.frame_locator("iframe.localml-netron")
    expect(frame.locator("g.node").first).to_be_visible(timeout=NETRON_TIMEOUT_S * 1000)
    expect(frame.get_by_text(CONSENT_TEXT)).to_have_count(0)
    expect(frame.get_by_text(UPDATE_TEXT)).to_have_count(0)
    shoot(page, stem, "graph-viewer-netron")

    # Its other tabs: the summary tables, then the operator charts.
    viewer.get_by_role("tab", name="Summary", exact=True).click()
    expect(viewer.locator(".widget-tab .localml-model-summary")).to_be_visible()
    expect(viewer.locator(".widget-tab .localml-model-summary")).to_contain_text("all-minilm")
    viewer.get_by_role("tab", name="Operators", exact=True).click()
    chart = viewer.locator(".widget-tab .jp-RenderedImage img").first
    expect(chart).to_be_visible()
    assert chart.evaluate("img => img.naturalWidth") > 0, "the operator chart did not load"
    viewer.scroll_into_view_if_needed()
    shoot(page, stem, "graph-viewer-operators")


SEARCH_QUERY = "how do I sort a list in reverse order"


def check_notebook_05(page: Page, stem: str) -> None:
    # The SearchBox: a new query and Search; the k nearest texts, ranked, with the time taken.
    box = page.locator(".jp-Notebook .localml-search-box").first
    box.scroll_into_view_if_needed()
    expect(box).to_contain_text("results for remove a key from a dictionary")  # the notebook's
    box.get_by_placeholder("a question").fill(SEARCH_QUERY)
    button(box, "Search").click()
    k = int(box.locator("input[type=number]").input_value())
    expect(box).to_contain_text(
        re.compile(rf"{k} results for {SEARCH_QUERY} in [\d.]+ ms"),
        timeout=SEARCH_TIMEOUT_S * 1000,
    )
    rows = table_rows(box.locator("table"))
    assert [int(row["rank"]) for row in rows] == list(range(1, k + 1)), rows
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores, reverse=True), f"results not ranked by score: {rows}"
    assert all(row["text"] for row in rows), rows
    shoot(page, stem, "search-box")


def check_notebook_06(page: Page, stem: str) -> None:
    # The ProfilerPanel: the notebook pressed Run from code; press it here: "Running ...",
    # then "Done.", a table row per configuration and the three plots.
    panel = page.locator(".jp-Notebook .localml-profiler-panel").first
    panel.scroll_into_view_if_needed()
    expect(panel).to_contain_text("Done.")
    run = button(panel, "Run")
    click_and_wait(
        page, panel, run, "Running", "el.textContent.includes('Done.')", WIDGET_TIMEOUT_S
    )
    expect(run).to_be_enabled()
    rows = table_rows(panel.locator("table").first)
    cpu = [row for row in rows if " · cpu · " in row["label"]]
    assert cpu and all(row["status"] == "ok" for row in cpu), f"the CPU rows: {rows}"
    assert all(row["status"] in {"ok", "unavailable"} for row in rows), f"a row failed: {rows}"
    plots = panel.locator(".widget-tab")
    expect(plots).to_be_visible()
    images = panel.locator(".widget-tab img")
    expect(images).to_have_count(3)
    sizes = images.evaluate_all(
        f"imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight, ({JS_BLANK})(i)])"
    )
    assert all(w > 0 and h > 0 and not blank for w, h, blank in sizes), f"a plot: {sizes}"
    expect(images.first).to_be_visible()
    plots.scroll_into_view_if_needed()
    shoot(page, stem, "profiler-panel")


VARIANTS_07 = ("int8 per-channel", "int8 per-tensor", "int4 (block 32)", "fp16")


def check_notebook_07(page: Page, stem: str) -> None:
    # The OutputComparator compared at construction; Compare twice more: each time the status
    # says "Running ...", then a PASS or FAIL badge per candidate, the table and the error plot
    # (a second Compare once raised a matplotlib ValueError: the clean checks catch that).
    comparator = page.locator(".jp-Notebook .localml-output-comparator").first
    comparator.scroll_into_view_if_needed()
    compare = button(comparator, "Compare")
    verdicts = printed_verdicts(page)
    for attempt in (1, 2):
        click_and_wait(
            page,
            comparator,
            compare,
            "Running",
            "!el.textContent.includes('Running ') && el.querySelector('.localml-badge')"
            " && el.querySelector('.jp-RenderedImage img')?.naturalWidth > 0",
            WIDGET_TIMEOUT_S,
        )
        badges = comparator.locator(".localml-badge")
        expect(badges).to_have_count(len(VARIANTS_07))
        shown = {
            label: word == "PASS"
            for label, word in comparator.evaluate(
                "el => [...el.querySelectorAll('.localml-badge')]"
                ".map(b => [b.nextElementSibling.textContent, b.textContent])"
            )
        }
        assert shown == verdicts, f"badges {shown}, the notebook printed {verdicts}"
        expect(comparator).to_contain_text("Reference all-minilm-l6-v2")
        expect(comparator.locator("table")).to_contain_text("sentence_embedding")
        expect(comparator.locator(".jp-RenderedImage img")).to_have_count(1)
        comparator.locator(".jp-RenderedImage img").scroll_into_view_if_needed()
        shoot(page, stem, f"comparator-{attempt}")


def printed_verdicts(page: Page) -> dict[str, bool]:
    """The verdicts the notebook's last cell printed: {'int8 per-channel': True, ...}."""
    text = text_of(page.locator(".jp-Notebook .jp-CodeCell").last.locator(".jp-OutputArea"))
    verdicts = ast.literal_eval(text)
    assert isinstance(verdicts, dict) and set(verdicts) == set(VARIANTS_07), text
    return {str(k): bool(v) for k, v in verdicts.items()}


EXPECT: dict[str, Expect] = {
    "00_setup_and_hardware.ipynb": Expect(
        widgets=True, progress_bar=True, images=True, check=check_notebook_00
    ),
    "01_what_is_an_slm.ipynb": Expect(widgets=True, images=True, check=check_notebook_01),
    "02_finding_models.ipynb": Expect(
        widgets=True, progress_bar=True, images=True, check=check_notebook_02
    ),
    "03_formats_and_conversion.ipynb": Expect(widgets=True, progress_bar=True),
    "04_inside_a_model.ipynb": Expect(
        widgets=True, progress_bar=True, images=True, check=check_notebook_04
    ),
    "05_running_models.ipynb": Expect(widgets=True, images=True, check=check_notebook_05),
    "06_profiling.ipynb": Expect(
        widgets=True, progress_bar=True, images=True, check=check_notebook_06
    ),
    "07_quantization_and_fp16.ipynb": Expect(widgets=True, images=True, check=check_notebook_07),
    "09_shipping_it.ipynb": Expect(images=True),
}
DEFAULT_EXPECT = Expect()  # a notebook not listed: the clean run, and check_default's pictures


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
