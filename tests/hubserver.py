"""A small Hugging Face Hub on 127.0.0.1: the file endpoint that ``hf_hub_download`` uses.

``HEAD`` and ``GET`` on ``/{repo}/resolve/{revision}/{path}`` answer with the
headers the Hub documents for a file (``X-Repo-Commit``, ``ETag``,
``Content-Length``). Point ``HF_ENDPOINT`` at the yielded URL.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _lookup(self) -> bytes | None:
        path = unquote(urlparse(self.path).path)
        self.requests.append(f"{self.command} {path}")
        marker = "/resolve/"
        if marker not in path:
            return None
        repo, rest = path.lstrip("/").split(marker, 1)
        _revision, _, filename = rest.partition("/")
        return self.files.get(f"{repo}/{filename}")

    def _headers(self, data: bytes | None) -> None:
        if data is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Error-Message", "Entry not found")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._headers(self._lookup())

    def do_GET(self) -> None:
        data = self._lookup()
        self._headers(data)
        if data is not None:
            self.wfile.write(data)


@contextmanager
def serve_hub(files: dict[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    """Serve ``{"owner/repo/path": bytes}``; yields (endpoint URL, requests seen)."""
    handler = type("Handler", (_Handler,), {"files": dict(files), "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler.requests
    finally:
        server.shutdown()
        server.server_close()
