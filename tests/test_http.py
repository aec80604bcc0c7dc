"""The kit's HTTP server: a client that hangs up is no error; a real error still shows."""

from __future__ import annotations

import http.client
import http.server
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from localml_kit import _http

_BIG = b"x" * (32 * 1024 * 1024)  # more than any socket buffer holds


class _Handler(http.server.BaseHTTPRequestHandler):
    done = threading.Event()

    def do_GET(self) -> None:
        try:
            if self.path == "/boom":
                raise ValueError("a real bug in a handler")
            self.send_response(200)
            self.send_header("Content-Length", str(len(_BIG)))
            self.end_headers()
            self.wfile.write(_BIG)
        finally:
            type(self).done.set()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _serving(server_class: type) -> Iterator[http.server.HTTPServer]:
    _Handler.done.clear()
    server = (
        server_class(0, _Handler)
        if server_class is _http.LocalServer
        else server_class(("127.0.0.1", 0), _Handler)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _hang_up_mid_download(port: int) -> None:
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    client.recv(1024)  # the download has begun
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset, as a browser sends when a tab closes


def _wait(event: threading.Event) -> None:
    assert event.wait(10), "the handler never finished"
    time.sleep(0.2)  # the server reports the error after the handler returns


@pytest.mark.parametrize("server_class", [_http.LocalServer, http.server.ThreadingHTTPServer])
def test_a_client_hanging_up_mid_download_prints_nothing(
    server_class: type, capsys: pytest.CaptureFixture[str]
) -> None:
    with _serving(server_class) as server:
        _hang_up_mid_download(server.server_address[1])
        _wait(_Handler.done)
    err = capsys.readouterr().err
    if server_class is _http.LocalServer:
        assert err == ""
    else:  # the standard library's server: what the kit's server exists to avoid
        assert "Traceback" in err and ("BrokenPipeError" in err or "ConnectionResetError" in err)


def test_a_handler_that_fails_still_shows_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with _serving(_http.LocalServer) as server:
        with pytest.raises(
            (urllib.error.URLError, ConnectionError, http.client.RemoteDisconnected)
        ):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/boom", timeout=10)
        _wait(_Handler.done)
    err = capsys.readouterr().err
    assert "ValueError: a real bug in a handler" in err


def test_the_server_listens_on_loopback_only() -> None:
    with _serving(_http.LocalServer) as server:
        assert server.server_address[0] == "127.0.0.1"
