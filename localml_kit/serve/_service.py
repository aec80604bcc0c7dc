"""The app as a local web service in a child process, and the app's command line, from Python."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from localml_kit import _proc, errors
from localml_kit.serve import _app
from localml_kit.serve._resolve import DEFAULT_MODEL, app_model

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MB = 1024 * 1024
APP = Path(_app.__file__).resolve()


@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, the decoded JSON body, and the round trip in milliseconds.

    Example:
        >>> Response(400, {"error": "texts is empty"}, 1.2).error
        'texts is empty'
    """

    status: int
    body: Any
    ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str | None:
        """The service's error message for a refused request, else None."""
        return self.body.get("error") if isinstance(self.body, dict) else None


def loopback(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://`` URL on this machine; any other host raises ConfigError.

    The kit talks only to services on 127.0.0.1 (or ``localhost``, ``::1``).

    Example:
        >>> loopback("http://127.0.0.1:8000")
        ('127.0.0.1', 8000)
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or port is None:
        raise errors.ConfigError(
            f"{url!r}: the kit sends requests only to services on this machine; give "
            "http://127.0.0.1:PORT (the url of serve.start's Service)."
        )
    return parts.hostname, port


def request(
    url: str, path: str = "/health", payload: Any = None, *, timeout_s: float = 30.0
) -> Response:
    """One request over real HTTP: GET when ``payload`` is None, else POST it as JSON.

    ``payload`` bytes are sent as they are (to see how the service answers a
    malformed body). A service that cannot be reached raises
    :class:`~localml_kit.errors.ServiceError`; an error status is returned, not raised.

    Example:
        >>> corpus = ["Stocks fell today.", "A cat sleeps on the sofa."]
        >>> with start("all-minilm-l6-v2", corpus=corpus) as service:
        ...     found = request(service.url, "/search", {"query": "a kitten", "k": 1})
        ...     empty = request(service.url, "/embed", {"texts": []})
        ...     broken = request(service.url, "/embed", b"{not json")
        >>> found.status, [(h["rank"], h["index"], h["text"]) for h in found.body["hits"]]
        (200, [(1, 1, 'A cat sleeps on the sofa.')])
        >>> empty.status, empty.error
        (400, 'texts is empty: give at least one text.')
        >>> broken.status, broken.error
        (400, 'the body is not JSON: send a JSON object.')
    """
    host, port = loopback(url)
    data = payload if isinstance(payload, bytes) else None
    if payload is not None and data is None:
        data = json.dumps(payload).encode()
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request(
            "GET" if data is None else "POST",
            path,
            body=data,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        answer = conn.getresponse()
        raw = answer.read()
        status = answer.status
    except (OSError, http.client.HTTPException) as exc:
        raise errors.ServiceError(
            f"no answer from {url}{path} ({type(exc).__name__}: {exc or 'no detail'}): is the "
            "service running? (Service.alive; Service.log_tail() shows its log)"
        ) from exc
    finally:
        conn.close()
    ms = (time.perf_counter() - started) * 1e3
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = {"error": raw.decode(errors="replace")[:500]}
    return Response(status, body, round(ms, 3))


def _cleanup(proc: subprocess.Popen | None, work: Path) -> None:
    if proc is not None and proc.poll() is None:
        _proc.kill(proc)
    shutil.rmtree(work, ignore_errors=True)


@dataclass(eq=False)
class Service:
    """A running service: its URL on 127.0.0.1, the process id, and how long it took to come up.

    ``ready_s`` is from the start to the first ``GET /health`` answer (process
    start, imports, model load, the corpus embedded); ``cold_start_s`` to the
    first ``POST /embed`` answer. Stop it with :meth:`stop` or a ``with``
    block; it also dies with this process (even a SIGKILLed kernel).

    Example:
        >>> from localml_kit import serve
        >>> with serve.start("all-minilm-l6-v2", corpus=["A cat sleeps on the sofa."]) as service:
        ...     service.search("a kitten", k=1)[0].text
        ...     service.embed(["one", "two"]).shape
        ...     service.health()["corpus"], service.alive, service.memory_mb()["rss_mb"] > 0
        'A cat sleeps on the sofa.'
        (2, 384)
        (1, True, True)
        >>> service.alive, service.exit_code  # stopped at the end of the block
        (False, -15)
    """

    url: str
    pid: int
    model: str
    ready_s: float
    cold_start_s: float
    first_answer_ms: float
    corpus: int
    threads: int
    exit_code: int | None = None
    _proc: subprocess.Popen | None = field(repr=False, default=None)
    _work: Path = field(repr=False, default=Path())
    _log: Path = field(repr=False, default=Path())

    def __post_init__(self) -> None:
        self._finalizer = weakref.finalize(self, _cleanup, self._proc, self._work)

    @property
    def port(self) -> int:
        return loopback(self.url)[1]

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self._proc is not None and self._proc.poll() is None

    def post(self, path: str, payload: Any, *, timeout_s: float = 30.0) -> Response:
        """POST ``payload`` (JSON) to ``path``; the answer whatever its status."""
        return request(self.url, path, payload, timeout_s=timeout_s)

    def health(self) -> dict[str, Any]:
        """``GET /health``: model, dim, corpus size, limits, pid."""
        return request(self.url, "/health").body

    def _ok(self, answer: Response, what: str) -> Any:
        if answer.ok:
            return answer.body
        raise errors.InputError(f"the service refused {what} ({answer.status}): {answer.error}")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``POST /embed``: one unit vector per text (float32)."""
        body = self._ok(self.post("/embed", {"texts": list(texts)}), "the texts")
        return np.asarray(body["vectors"], dtype=np.float32)

    def search(self, query: str, k: int = 5) -> list[_app.Hit]:
        """``POST /search``: the ``k`` corpus sentences nearest to ``query``."""
        body = self._ok(self.post("/search", {"query": query, "k": k}), "the query")
        return [_app.Hit(**hit) for hit in body["hits"]]

    def memory_mb(self) -> dict[str, float]:
        """The process's resident memory now and (Linux) its peak so far, in MiB."""
        import psutil

        try:
            out = {"rss_mb": round(psutil.Process(self.pid).memory_info().rss / MB, 1)}
        except psutil.Error as exc:
            raise errors.ServiceError(f"the service (pid {self.pid}) is not running.") from exc
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
        return out

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the service's own output (its errors, tracebacks)."""
        try:
            text = self._log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until the process ends (None after ``timeout_s``); its exit code."""
        if self._proc is None:
            return self.exit_code
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Stop it (SIGTERM, then SIGKILL after ``grace_s``); the exit code (-15: stopped by SIGTERM)."""
        if self._proc is not None and self.exit_code is None:
            self.exit_code = _proc.kill(self._proc, grace_s=grace_s)
        self._finalizer()
        return self.exit_code

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ship_folder(model: Any) -> Path | None:
    folder = getattr(model, "folder", None) if hasattr(model, "files") else None
    if folder is None and isinstance(model, str | os.PathLike) and Path(model).is_dir():
        folder = Path(model)
    if folder is not None and all(
        (Path(folder) / n).is_file() for n in ("app.py", "manifest.json")
    ):
        return Path(folder)
    return None


def _corpus_file(corpus: Any, work: Path, default: Path | None) -> Path | None:
    if corpus is None and default is not None and default.is_file():
        return default
    if corpus is False:
        return None
    if corpus is None:
        from localml_kit import compare

        corpus = compare.corpus()
    if isinstance(corpus, str | os.PathLike):
        path = Path(corpus).expanduser()
        if not path.is_file():
            raise errors.InputError(
                f"no corpus file at {path}: give a text file, one sentence a line."
            )
        return path
    texts = _app._check_texts(corpus)
    out = work / "corpus.txt"
    out.write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
    return out


def _check(port: int, threads: int, max_texts: int, timeout_s: float) -> None:
    problems = []
    if not 0 <= port <= 65535:
        problems.append(f"port must be 0 (a free one) to 65535, not {port}")
    if not 1 <= threads <= 1024:
        problems.append(f"threads must be 1 to 1024, not {threads}")
    if max_texts < 1:
        problems.append(f"max_texts must be >= 1, not {max_texts}")
    if not timeout_s > 0:
        problems.append(f"timeout_s must be > 0, not {timeout_s}")
    if problems:
        raise errors.ConfigError("; ".join(problems) + ".")


def _app_argv(
    model: Any, tokenizer: Any, threads: int, corpus: Any, work: Path
) -> tuple[list[str], str]:
    """The app's command line (before its subcommand) and the model's label."""
    ship = _ship_folder(model)
    if ship is not None:
        label = json.loads((ship / "manifest.json").read_text()).get("model", ship.name)
        files = (ship / "model.onnx", Path(tokenizer) if tokenizer else ship / "tokenizer.json")
        app, default_corpus = ship / "app.py", ship / "corpus.txt"
    else:
        resolved = app_model(model, tokenizer)
        label, files = resolved.label, (resolved.path, resolved.tokenizer)
        app, default_corpus = APP, None
    argv = [sys.executable, str(app), "--model", str(files[0]), "--tokenizer", str(files[1])]
    argv += ["--threads", str(threads), "--label", label]
    corpus_file = _corpus_file(corpus, work, default_corpus)
    argv += ["--corpus", str(corpus_file if corpus_file is not None else work / "no-corpus.txt")]
    return argv, label


def start(
    model: Any = DEFAULT_MODEL,
    *,
    port: int = 0,
    tokenizer: str | os.PathLike[str] | None = None,
    corpus: Sequence[str] | str | os.PathLike[str] | bool | None = None,
    threads: int = 1,
    max_texts: int = 32,
    timeout_s: float = 120.0,
) -> Service:
    """Start the app's web service on 127.0.0.1 in a child process; return once it has answered.

    ``model``: a sentence encoder (path, sample, ModelRef, optimize ``Variant``)
    or a ship folder from :func:`bundle` (its own ``app.py`` and files: start only
    folders you made or trust, as with any program). ``port``
    0 picks a free port. ``corpus``: the sentences ``/search`` ranks (a list, a
    text file; default ``compare.corpus()``, or a ship folder's ``corpus.txt``;
    False for none). ``threads``: ONNX Runtime threads per request (requests run
    in parallel). ``max_texts``: the most texts one ``/embed`` request may send.

    The child is started through the kit's one child-process helper: it dies with
    this process. It waits for ``GET /health``, then sends one ``POST /embed``
    (the cold start). A child that exits first raises
    :class:`~localml_kit.errors.ChildProcessFailedError` with its last output;
    one not ready within ``timeout_s`` is killed and raises
    :class:`~localml_kit.errors.ChildTimeoutError`.

    Example:
        >>> service = start("all-minilm-l6-v2", corpus=["A cat sleeps.", "Stocks fell."])
        >>> service.url
        'http://127.0.0.1:...'
        >>> service.model, service.corpus, bool(service.cold_start_s >= service.ready_s > 0)
        ('all-minilm-l6-v2', 2, True)
        >>> service.stop()
        -15

    An optimized variant, or a ship folder, starts the same way::

        v = optimize.quantize_int8("all-minilm-l6-v2")
        service = start(v)
        service = start(serve.bundle(v, "ship-minilm"))  # runs the folder's own app.py
    """
    _check(port, threads, max_texts, timeout_s)
    work = Path(tempfile.mkdtemp(prefix="localml-serve-"))
    try:
        argv, label = _app_argv(model, tokenizer, threads, corpus, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    port_file, log = work / "port.json", work / "service.log"
    argv += ["serve", "--port", str(port), "--port-file", str(port_file)]
    argv += ["--max-texts", str(max_texts)]
    started = time.perf_counter()
    with log.open("wb") as out:
        try:
            proc = _proc.start(
                argv, what=f"the service for {label}", stdout=out, stderr=subprocess.STDOUT
            )
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    try:
        return _wait(proc, label, work, log, started, started + timeout_s, timeout_s, threads)
    except BaseException:
        _cleanup(proc, work)
        raise


def _wait(
    proc: subprocess.Popen,
    label: str,
    work: Path,
    log: Path,
    started: float,
    deadline: float,
    timeout_s: float,
    threads: int,
) -> Service:
    port_file = work / "port.json"
    health: Response | None = None
    url = ""
    while health is None:
        code = proc.poll()
        if code is not None:
            said = _proc.tail(log.read_bytes(), lines=4) or "no output"
            raise errors.ChildProcessFailedError(
                f"the service for {label} stopped before it was ready (exit code {code}): {said}"
            )
        if time.perf_counter() > deadline:
            said = _proc.tail(log.read_bytes(), lines=3)
            raise errors.ChildTimeoutError(
                f"the service for {label} was not ready within {timeout_s:g} s and was stopped"
                + (f"; its last output: {said}" if said else "")
                + ". Give a larger timeout_s on a slow or busy machine."
            )
        if not url and port_file.is_file():
            url = f"http://127.0.0.1:{json.loads(port_file.read_text())['port']}"
        if url:
            with contextlib.suppress(errors.ServiceError):
                answer = request(url, "/health", timeout_s=2.0)
                if answer.ok:
                    health = answer
                    break
        time.sleep(0.02)
    ready_s = time.perf_counter() - started
    first = request(url, "/embed", {"texts": ["The first request after the start."]})
    if not first.ok:
        raise errors.ChildProcessFailedError(
            f"the service for {label} started but its first /embed failed ({first.status}): "
            f"{first.error}"
        )
    return Service(
        url=url,
        pid=proc.pid,
        model=label,
        ready_s=round(ready_s, 3),
        cold_start_s=round(time.perf_counter() - started, 3),
        first_answer_ms=first.ms,
        corpus=int(health.body.get("corpus", 0)),
        threads=threads,
        _proc=proc,
        _work=work,
        _log=log,
    )


@dataclass(frozen=True)
class AppRun:
    """One run of the app's command line: the arguments, what it printed, how long it took."""

    args: tuple[str, ...]
    stdout: str
    seconds: float

    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def run_app(
    model: Any = DEFAULT_MODEL,
    args: Sequence[str] = ("search", "How do I keep my data private?"),
    *,
    tokenizer: str | os.PathLike[str] | None = None,
    corpus: Sequence[str] | str | os.PathLike[str] | None = None,
    threads: int = 1,
    timeout_s: float = 120.0,
) -> AppRun:
    """Run the app's command line (``embed TEXT...``, ``search QUERY [-k N]``) in a child process.

    ``model`` as for :func:`start` (a ship folder runs its own ``app.py``). Each
    run pays the whole cold start (process, imports, model load, corpus), which
    is what a command-line tool costs per call. A failure raises
    :class:`~localml_kit.errors.ChildProcessFailedError` with the app's error line.

    Example:
        >>> corpus = ["A cat sleeps on the sofa.", "Stocks fell today."]
        >>> run = run_app("all-minilm-l6-v2", ["search", "a kitten", "-k", "1"], corpus=corpus)
        >>> run.lines(), run.seconds > 0
        (['1  0.508  A cat sleeps on the sofa.'], True)
    """
    args = tuple(str(a) for a in args)
    if not args or args[0] not in ("embed", "search"):
        raise errors.ConfigError(
            f"args must start with 'embed' or 'search', not {args[:1]}: e.g. "
            "['search', 'a kitten', '-k', '3'] (serve.start runs the web service)."
        )
    work = Path(tempfile.mkdtemp(prefix="localml-app-"))
    try:
        argv, label = _app_argv(model, tokenizer, threads, corpus, work)
        started = time.perf_counter()
        done = _proc.run([*argv, *args], what=f"the app ({label})", timeout=timeout_s)
        return AppRun(args, done.stdout, round(time.perf_counter() - started, 3))
    finally:
        shutil.rmtree(work, ignore_errors=True)
