"""A real package index on 127.0.0.1 (PEP 503 "simple" pages over a folder of wheels).

pip downloads from it exactly as from PyPI, so the kit's sample fetching is
tested end to end without leaving the machine.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write_simple_index(wheels: Path) -> None:
    """Write ``simple/<project>/index.html`` pages for every wheel in the folder."""
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(wheels.glob("*.whl")):
        projects.setdefault(_normalise(wheel.name.split("-")[0]), []).append(wheel)
    root = wheels / "simple"
    root.mkdir(exist_ok=True)
    links = "".join(f'<a href="{p}/">{p}</a>\n' for p in projects)
    (root / "index.html").write_text(f"<!DOCTYPE html><html><body>{links}</body></html>")
    for project, files in projects.items():
        (root / project).mkdir(exist_ok=True)
        anchors = "".join(
            f'<a href="../../{html.escape(f.name)}#sha256={hashlib.sha256(f.read_bytes()).hexdigest()}">'
            f"{html.escape(f.name)}</a>\n"
            for f in files
        )
        (root / project / "index.html").write_text(
            f"<!DOCTYPE html><html><body>{anchors}</body></html>"
        )


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


@contextmanager
def serve_index(wheels: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve the folder on 127.0.0.1; yields (index URL, list of request paths seen)."""
    write_simple_index(wheels)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(wheels)))
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/simple", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
