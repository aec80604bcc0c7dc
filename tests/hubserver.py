"""A small Hugging Face Hub on 127.0.0.1: the endpoints huggingface_hub calls.

``HEAD`` and ``GET`` on ``/{repo}/resolve/{revision}/{path}`` answer with the
headers the Hub documents for a file (``X-Repo-Commit``, ``ETag``,
``Content-Length``). Point ``HF_ENDPOINT`` at the yielded URL.

Given model records (dicts shaped like the Hub's ``/api/models`` JSON), it also
answers ``GET /api/models`` (really filtering on ``search``, ``author``,
``filter``, ``pipeline_tag``, sorting on ``sort`` and cutting at ``limit``; with
``expand`` only the fields asked for), ``GET /api/models/{repo}`` and
``.../revision/{rev}`` (``siblings`` with sizes when ``blobs=true``), and
``GET /api/models/{repo}/tree/{rev}`` (what ``snapshot_download`` lists).

``serve_trickle`` is a Hub that is there but never finishes an answer: it sends
one byte every ``interval_s`` seconds, from the status line on (``headers``) or
after complete headers (``body``), far more often than any per-read timeout.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


# Fields of a listing when no ``expand`` is asked for (as the Hub answers).
_LIST_DEFAULT = (
    "id",
    "modelId",
    "likes",
    "downloads",
    "private",
    "pipeline_tag",
    "library_name",
    "tags",
    "createdAt",
)
_SORT_KEYS = {"downloads", "likes", "lastModified", "trendingScore", "createdAt"}


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    models: ClassVar[dict[str, dict[str, Any]]] = {}
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

    def _json(self, payload: object, status: int = 200, error_code: str | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        if error_code:
            self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", str(payload))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _repo_files(self, repo: str) -> dict[str, bytes]:
        prefix = f"{repo}/"
        return {k[len(prefix) :]: v for k, v in self.files.items() if k.startswith(prefix)}

    def _record(self, repo: str, blobs: bool) -> dict[str, Any]:
        record = dict(self.models[repo])
        siblings = []
        for name, data in sorted(self._repo_files(repo).items()):
            sibling: dict[str, Any] = {"rfilename": name}
            if blobs:
                sibling["size"] = len(data)
                sibling["blobId"] = hashlib.sha1(data).hexdigest()
                sibling["lfs"] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "pointerSize": 134,
                }
            siblings.append(sibling)
        record["siblings"] = siblings
        return record

    def _list(self, query: dict[str, list[str]]) -> None:
        found = list(self.models.values())
        search = query.get("search", [""])[0].lower()
        author = query.get("author", [""])[0]
        pipeline = query.get("pipeline_tag", [""])[0]
        found = [m for m in found if search in m["id"].lower()]
        if author:
            found = [m for m in found if m["id"].split("/")[0] == author]
        if pipeline:
            found = [m for m in found if m.get("pipeline_tag") == pipeline]
        for wanted in query.get("filter", []):
            found = [
                m for m in found if wanted in m.get("tags", []) or wanted == m.get("library_name")
            ]
        sort = query.get("sort", [""])[0]
        if sort in _SORT_KEYS:
            found.sort(
                key=lambda m: m.get(sort) or 0, reverse=query.get("direction", ["-1"])[0] == "-1"
            )
        found = found[: int(query.get("limit", ["1000"])[0])]
        expand = query.get("expand", [])
        fields = ("id", *expand) if expand else _LIST_DEFAULT
        out = []
        for m in found:
            record = self._record(m["id"], blobs=False) if "siblings" in fields else m
            out.append({k: record[k] for k in fields if k in record})
        self._json(out)

    def _api(self, path: str, query: dict[str, list[str]]) -> None:
        rest = path[len("/api/models") :].strip("/")
        if not rest:
            self._list(query)
            return
        repo, tree, tail = rest.partition("/tree/")
        if not tree:
            repo, _, tail = rest.partition("/revision/")
        revision = tail.split("/", 1)[0] or "main"
        if repo not in self.models:
            self._json({"error": "Repository not found"}, 404, "RepoNotFound")
        elif revision not in ("main", COMMIT):
            self._json({"error": f"Invalid rev id: {revision}"}, 404, "RevisionNotFound")
        elif tree:
            entries: list[dict[str, Any]] = []
            folders: set[str] = set()
            for name, data in sorted(self._repo_files(repo).items()):
                parts = name.split("/")[:-1]
                folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
                entries.append(
                    {
                        "type": "file",
                        "oid": hashlib.sha1(data).hexdigest(),
                        "size": len(data),
                        "path": name,
                        "lfs": {
                            "oid": hashlib.sha256(data).hexdigest(),
                            "size": len(data),
                            "pointerSize": 134,
                        },
                    }
                )
            entries += [
                {"type": "directory", "oid": "0" * 40, "size": 0, "path": f}
                for f in sorted(folders)
            ]
            self._json(entries)
        else:
            self._json(self._record(repo, blobs=query.get("blobs", [""])[0] == "true"))

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        if parsed.path.startswith("/api/models"):
            self.requests.append(f"GET {unquote(parsed.path)}?{parsed.query}")
            self._api(unquote(parsed.path), parse_qs(parsed.query))
            return
        data = self._lookup()
        self._headers(data)
        if data is not None:
            self.wfile.write(data)


def model_record(id: str, **fields: Any) -> dict[str, Any]:
    """A model as the Hub's API describes it: the given fields over plain defaults."""
    return {
        "_id": hashlib.sha1(id.encode()).hexdigest()[:24],
        "id": id,
        "modelId": id,
        "author": id.split("/")[0],
        "sha": COMMIT,
        "lastModified": "2025-01-01T00:00:00.000Z",
        "createdAt": "2024-06-01T00:00:00.000Z",
        "private": False,
        "disabled": False,
        "gated": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        **fields,
    }


@contextmanager
def serve_hub(
    files: dict[str, bytes], models: Sequence[dict[str, Any]] = ()
) -> Iterator[tuple[str, list[str]]]:
    """Serve ``{"owner/repo/path": bytes}`` and model records; yields (endpoint URL, requests seen)."""
    handler: type[_Handler] = type(
        "Handler",
        (_Handler,),
        {"files": dict(files), "models": {m["id"]: dict(m) for m in models}, "requests": []},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


class _Trickle(BaseHTTPRequestHandler):
    mode: ClassVar[str] = "headers"
    interval_s: ClassVar[float] = 0.2
    stop: ClassVar[threading.Event] = threading.Event()
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _drip(self, data: bytes) -> bool:
        """Send ``data`` a byte at a time; False once the client left or the server stops."""
        for i in range(len(data)):
            if self.stop.wait(self.interval_s):
                return False
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                return False
        return True

    def do_GET(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if self.mode == "body":
            self.wfile.write(head + b"Content-Length: 1000000\r\n\r\n")
            self.wfile.flush()
            head = b""
        else:
            head += b"X-Padding: "
        filler = b" " if self.mode == "body" else b"a"
        if self._drip(head):
            while self._drip(filler * 64):
                pass

    do_HEAD = do_GET


@contextmanager
def serve_trickle(
    mode: str = "headers", interval_s: float = 0.2
) -> Iterator[tuple[str, list[str]]]:
    """A Hub that answers every request one byte per ``interval_s``, never finishing.

    ``mode`` is ``headers`` (the status line and headers trickle) or ``body``
    (headers at once, then the body trickles). Yields (endpoint URL, requests seen).
    """
    handler: type[_Trickle] = type(
        "Trickle",
        (_Trickle,),
        {"mode": mode, "interval_s": interval_s, "stop": threading.Event(), "requests": []},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = False  # server_close() waits for every handler to see the stop
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler.requests
    finally:
        handler.stop.set()
        server.shutdown()
        server.server_close()
