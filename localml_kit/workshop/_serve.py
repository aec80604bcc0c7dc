"""Serve a bundle folder on 127.0.0.1, and nothing outside it."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

from localml_kit import _http, errors


class _Handler(SimpleHTTPRequestHandler):
    """Files under the folder only: a path that resolves outside it (a symlink, ``..``) is a 404."""

    def _inside(self) -> bool:
        root = Path(self.directory).resolve()
        local = Path(self.translate_path(self.path)).resolve()
        return local == root or root in local.parents

    def send_head(self) -> Any:
        if not self._inside():
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(404, "No listing")
        return None

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass
class Server:
    """A running bundle server: ``url`` to open, ``stop()`` to end it."""

    url: str
    folder: Path
    _httpd: _http.LocalServer
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and close the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(folder: str | os.PathLike[str], *, port: int = 0) -> Server:
    """Serve a bundle (its ``index.html`` and files) on 127.0.0.1 in a thread; ``port=0`` picks one.

    Example:
        >>> import urllib.request
        >>> _ = Path("bundle").mkdir(), Path("bundle/index.html").write_text("hi")
        >>> with serve("bundle") as server:
        ...     urllib.request.urlopen(server.url).read()
        b'hi'
    """
    root = Path(folder).expanduser().resolve()
    if not (root / "index.html").is_file():
        raise errors.InputError(
            f"{root} has no index.html: give a folder made by `localml-kit workshop build`."
        )
    if not 0 <= port <= 65535:
        raise errors.ConfigError(
            f"port must be 0-65535, not {port}", cli=f"--port must be 0-65535, not {port}"
        )
    handler = functools.partial(_Handler, directory=str(root))
    try:
        httpd = _http.LocalServer(port, handler)
    except OSError as exc:
        raise errors.ConfigError(
            f"cannot serve on 127.0.0.1:{port} ({exc.strerror or exc}): pick another port, "
            "or 0 for any free one",
            cli=f"cannot serve on 127.0.0.1:{port} ({exc.strerror or exc}): pick another --port",
        ) from exc
    thread = threading.Thread(target=httpd.serve_forever, name="localml-workshop", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.port}/index.html"
    return Server(url, root, httpd, thread)
