"""Serve netron's viewer page for one model on 127.0.0.1, fit for a browser with no network.

netron's own server shows its page as published, and offline that page never
shows the graph: a full-page cookie consent dialog waits for an IP lookup that
fails, analytics beacons fire, and 180 days after the build date an endless
"Please update" dialog appears. This server hands out netron's static files
itself and serves ``index.html`` with the kit's settings:

* a ``consent`` cookie set by the server, which netron's script reads to skip
  the dialog and the IP lookup;
* no build date in the page, so netron's age check compares the browser's clock
  with itself and never asks to update;
* a Content-Security-Policy of ``connect-src 'self'``, so the browser refuses
  any request to another host (IP lookup, analytics, error reports) before it
  leaves the machine.

It hands out nothing else. Under ``/data/`` it serves the model file and, for
an ONNX model, the external-data files its tensors name (their ``location``
entries, read from the model's skeleton without its weights), each by that exact
name; every other path, inside the model's folder or not, answers 404. A request
whose ``Host`` header is not ``127.0.0.1:<port>`` or ``localhost:<port>`` answers
403, so a web page that rebinds its own name to 127.0.0.1 (DNS rebinding)
cannot read through the viewer.

Each model gets its own server (a thread in this process, on a free port of
127.0.0.1).
"""

from __future__ import annotations

import html
import http.server
import re
import shutil
import threading
import time
import urllib.parse
from pathlib import Path

from localml_kit import _http, errors
from localml_kit.graph import _onnx, _wire

_MIME = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
}
_CSP = "connect-src 'self'"
_CHUNK = 1 << 20


def static_dir() -> Path:
    """netron's static web files (from the installed ``netron`` package)."""
    try:
        import netron
    except ImportError:
        raise errors.BuildDependencyError(
            "showing graphs needs the `netron` package: pip install netron"
        ) from None
    return Path(netron.__file__).parent


def netron_version() -> str:
    import netron

    return str(getattr(netron, "__version__", "0.0.0"))


def index_page(static: Path, model_name: str) -> bytes:
    """netron's index.html pointing at the model, without the build date that drives the update nag."""
    page = (static / "index.html").read_text(encoding="utf-8")
    quoted = urllib.parse.quote(model_name)
    meta = "\n".join(
        [
            '<meta name="type" content="Python">',
            f'<meta name="version" content="{html.escape(netron_version())}">',
            f'<meta name="file" content="/data/{quoted}">',
            f'<meta name="identifier" content="{html.escape(model_name, quote=True)}">',
        ]
    )
    page, found = re.subn(r'<meta name="version" content="[^"]*">', lambda _: meta, page, count=1)
    if not found:
        raise errors.ModelFormatError(
            f"netron's index.html in {static} has an unexpected layout; install netron 9.x."
        )
    # Without a build date netron takes the browser's own clock as the page's date, so its
    # "older than 180 days: please update" check never fires, whatever the clocks say.
    page = re.sub(r'<meta name="date" content="[^"]*">\n?', "", page)
    return page.encode("utf-8")


def served_files(model: Path) -> dict[str, Path]:
    """What the viewer serves under ``/data/``: the model and its external-data files, by name.

    External-data names come from every tensor's ``location`` entry (read
    without the weights). A name is kept only when it is a plain relative path
    (no ``..``, not absolute) to a file that, symlinks followed, stays in the
    model's folder (or, for a model that is itself a link, as in the Hugging
    Face cache, in the folder its target lives in).

    Example:
        >>> from localml_kit import samples
        >>> sorted(served_files(samples.path("all-minilm-l6-v2")))
        ['model.onnx']
    """
    files = {model.name: model}
    try:
        skeleton, _ = _wire.load_skeleton(model)
    except (errors.ModelFormatError, OSError, ValueError):
        return files  # not ONNX (GGUF), or damaged: netron says so itself
    roots = {model.parent.resolve(), model.resolve().parent}
    for location in _onnx.external_locations(skeleton):
        target = _external_file(model.parent, location, roots)
        if target is not None:
            files.setdefault(location, target)
    return files


def _external_file(folder: Path, location: str, roots: set[Path]) -> Path | None:
    """The file an external-data ``location`` names, if it is safe to serve, else None."""
    if not _onnx.safe_location(location):
        return None
    try:
        target = (folder / location).resolve()
        if not target.is_file():
            return None
    except (OSError, ValueError):
        return None
    return target if any(target.is_relative_to(root) for root in roots) else None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _NetronServer

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: this runs inside a notebook kernel

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        server = self.server
        hosts = [h.strip().lower() for h in self.headers.get_all("Host") or []]
        if len(hosts) != 1 or hosts[0] not in server.hosts:
            # DNS rebinding: a page from elsewhere whose name now points at 127.0.0.1.
            self._text(403, f"forbidden: this viewer answers only for {server.hosts[0]}", head)
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            body = index_page(server.static, server.model.name)
            self._send(200, _MIME[".html"], len(body), head, cookie=True)
            if not head:
                self.wfile.write(body)
            return
        if path.startswith("/data/"):
            target = server.files.get(path[len("/data/") :])
            mime = "application/octet-stream"
        else:
            target = _inside(server.static, path.lstrip("/"))
            mime = _MIME.get(target.suffix.lower(), "") if target else ""
        try:
            size = target.stat().st_size if target and mime and target.is_file() else -1
        except OSError:
            size = -1
        if target is None or size < 0:
            self._text(404, "not found", head)
            return
        self._send(200, mime, size, head)
        if not head:
            with target.open("rb") as handle:
                shutil.copyfileobj(handle, self.wfile, _CHUNK)

    def _text(self, status: int, text: str, head: bool) -> None:
        body = text.encode()
        self._send(status, "text/plain; charset=utf-8", len(body), head)
        if not head:
            self.wfile.write(body)

    def _send(self, status: int, mime: str, length: int, head: bool, cookie: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Cache-Control", "no-store")
        if cookie:
            # netron skips its consent dialog (and the IP lookup behind it) when this exists.
            self.send_header(
                "Set-Cookie",
                f"consent={int(time.time() * 1000)}; Path=/; Max-Age=2592000; SameSite=Lax",
            )
        self.end_headers()


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it stays inside ``root`` (no ``..`` or symlink escapes), else None."""
    try:
        base = root.resolve()
        target = (base / relative).resolve()
    except (OSError, ValueError):  # a NUL byte, a name too long, a symlink loop
        return None
    return target if target.is_relative_to(base) else None


class _NetronServer(_http.LocalServer):
    def __init__(self, model: Path, static: Path) -> None:
        super().__init__(0, _Handler)
        self.model = model
        self.static = static
        self.files = served_files(model)
        port = int(self.server_address[1])
        # The Host headers a browser sends for this server's own URL; nothing else is answered.
        self.hosts = (f"127.0.0.1:{port}", f"localhost:{port}")


class NetronServer:
    """A running viewer for one model: ``url``, ``port``, ``stop()``."""

    def __init__(self, model: Path) -> None:
        self.model = model
        self._server = _NetronServer(model, static_dir())
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"localml-netron-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving and close the port (returns once the port is closed)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
