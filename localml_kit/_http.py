"""The one kind of HTTP server the kit runs: on 127.0.0.1, in daemon threads, quiet.

A browser drops connections as a matter of course (a tab closed, a download
stopped, a page reloaded mid-request). The standard library's server prints a
traceback for each of those into whatever runs it, which inside a notebook is the
kernel's stderr, and the user sees an error that is none. Other errors still
print as before.

Example:
    >>> import http.server, threading, urllib.request
    >>> class Hello(http.server.BaseHTTPRequestHandler):
    ...     def do_GET(self):
    ...         self.send_response(200); self.end_headers(); self.wfile.write(b"hi")
    ...     def log_message(self, *args): pass
    >>> server = LocalServer(0, Hello)
    >>> thread = threading.Thread(target=server.serve_forever, daemon=True); thread.start()
    >>> urllib.request.urlopen(f"http://127.0.0.1:{server.port}/").read()
    b'hi'
    >>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

import socketserver
import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LocalServer(ThreadingHTTPServer):
    """A threading HTTP server bound to 127.0.0.1 that ignores clients which hang up."""

    daemon_threads = True

    def __init__(self, port: int, handler: Any) -> None:
        super().__init__(("127.0.0.1", port), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # broken pipe, reset, aborted
            return
        socketserver.BaseServer.handle_error(self, request, client_address)
