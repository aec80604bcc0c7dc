"""A short, bounded load test against a service on this machine: latency percentiles, throughput."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import errors
from localml_kit.serve._service import loopback

MAX_CLIENTS = 64
MAX_REQUESTS = 10_000
MAX_SECONDS = 300.0


@dataclass(frozen=True)
class LoadTest:
    """What a load test measured: requests, failures, wall time, latency percentiles, throughput.

    ``latencies_ms`` holds every answered request's round trip, in the order
    they finished. ``cut_short`` is True when ``max_seconds`` ended it early.

    Example:
        >>> LoadTest("/search", 4, 8, 8, 0, 0.1, 5.0, 9.0, 9.5, 6.0, 80.0).p99_ms
        9.5
    """

    path: str
    clients: int
    requests: int
    ok: int
    failed: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput_rps: float
    max_ms: float = float("nan")
    cut_short: bool = False
    errors: tuple[str, ...] = ()
    latencies_ms: tuple[float, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The figures as a dict (without the per-request latencies)."""
        data = asdict(self)
        data.pop("latencies_ms")
        data["errors"] = list(self.errors)
        return data

    def frame(self) -> pd.DataFrame:
        """One row of figures (``pd.concat`` rows of several runs to compare them)."""
        return pd.DataFrame([self.to_dict()])

    def plot(self, ax: Any = None) -> Any:
        """A histogram of the round trips, p50 and p99 marked; returns the figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise errors.OptionalDependencyError(
                'plots need matplotlib: pip install "localml-kit[notebooks]" (or matplotlib).'
            ) from exc
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.5, 3.2))
        else:
            fig = ax.figure
        ax.hist(self.latencies_ms, bins=40, color="#4c72b0", alpha=0.8)
        for value, name in ((self.p50_ms, "p50"), (self.p99_ms, "p99")):
            ax.axvline(value, color="#c44e52" if name == "p99" else "#55a868", linestyle="--")
            ax.annotate(
                f"{name} {value:.1f} ms",
                (value, ax.get_ylim()[1] * 0.9),
                fontsize=9,
                xytext=(4, 0),
                textcoords="offset points",
            )
        ax.set_xlabel(f"round trip (ms), {self.clients} clients, POST {self.path}")
        ax.set_ylabel("requests")
        ax.grid(alpha=0.3)
        return fig


def _default_payloads(path: str) -> list[dict[str, Any]]:
    from localml_kit import compare

    texts = compare.corpus()[:50]
    if path == "/embed":
        return [{"texts": [t]} for t in texts]
    return [{"query": t, "k": 5} for t in texts]


def load_test(
    url: str,
    clients: int = 4,
    requests: int = 200,
    *,
    path: str = "/search",
    payloads: Sequence[Mapping[str, Any]] | None = None,
    warmup: int = 4,
    max_seconds: float = 60.0,
    timeout_s: float = 30.0,
) -> LoadTest:
    """Send ``requests`` POSTs to ``url + path`` from ``clients`` threads; latency and throughput.

    Bounded by design: only services on 127.0.0.1, at most 64 clients and 10,000
    requests, and never longer than ``max_seconds`` (the result then says
    ``cut_short``). Each client keeps one HTTP/1.1 connection open, as a real
    client would. ``payloads`` are cycled (default: queries from
    ``compare.corpus()``, or one-text ``/embed`` requests); ``warmup`` requests
    go first and are not counted.

    Example (a short one; a real measurement sends a few hundred requests):
        >>> from localml_kit import serve
        >>> with serve.start("all-minilm-l6-v2", corpus=["A cat sleeps.", "Stocks fell."]) as s:
        ...     result = load_test(s.url, clients=2, requests=20, path="/embed")
        >>> result.ok, result.failed, result.cut_short, len(result.latencies_ms)
        (20, 0, False, 20)
        >>> bool(result.p50_ms <= result.p99_ms <= result.max_ms), result.throughput_rps > 0
        (True, True)
        >>> load_test("http://example.com:80")
        Traceback (most recent call last):
        ...
        localml_kit.errors.ConfigError: 'http://example.com:80': the kit sends requests only to ...
    """
    host, port = loopback(url)
    problems = []
    if not 1 <= clients <= MAX_CLIENTS:
        problems.append(f"clients must be 1 to {MAX_CLIENTS}, not {clients}")
    if not 1 <= requests <= MAX_REQUESTS:
        problems.append(f"requests must be 1 to {MAX_REQUESTS:,}, not {requests}")
    if not 0 < max_seconds <= MAX_SECONDS:
        problems.append(f"max_seconds must be above 0 and at most {MAX_SECONDS:g}")
    if warmup < 0:
        problems.append(f"warmup must be >= 0, not {warmup}")
    if problems:
        raise errors.ConfigError("; ".join(problems) + ".")
    bodies = [json.dumps(p).encode() for p in (payloads or _default_payloads(path))]
    if not bodies:
        raise errors.InputError("payloads is empty: give at least one request body.")
    headers = {"Content-Type": "application/json"}

    tickets = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    deadline = [0.0]

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            while True:
                n = next(tickets)
                if n >= requests or time.perf_counter() > deadline[0]:
                    return
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body=bodies[n % len(bodies)], headers=headers)
                    answer = conn.getresponse()
                    answer.read()
                    status = answer.status
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                ms = (time.perf_counter() - t0) * 1e3
                with lock:
                    if 200 <= status < 300:
                        latencies.append(ms)
                    else:
                        failures.append(f"HTTP {status}")
        finally:
            conn.close()

    for n in range(warmup):
        _warm(host, port, path, bodies[n % len(bodies)], timeout_s)
    started = time.perf_counter()
    deadline[0] = started + max_seconds
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + timeout_s + 5)
    seconds = time.perf_counter() - started
    done = np.array(latencies) if latencies else np.array([np.nan])
    answered = len(latencies)

    def pct(q: float) -> float:
        return round(float(np.percentile(done, q)), 3) if answered else float("nan")

    return LoadTest(
        path=path,
        clients=clients,
        requests=requests,
        ok=answered,
        failed=len(failures),
        seconds=round(seconds, 3),
        p50_ms=pct(50),
        p90_ms=pct(90),
        p99_ms=pct(99),
        mean_ms=round(float(done.mean()), 3) if answered else float("nan"),
        throughput_rps=round(answered / seconds, 1) if seconds > 0 else float("nan"),
        max_ms=round(float(done.max()), 3) if answered else float("nan"),
        cut_short=answered + len(failures) < requests,
        errors=tuple(dict.fromkeys(failures))[:5],
        latencies_ms=tuple(round(x, 3) for x in latencies),
    )


def _warm(host: str, port: int, path: str, body: bytes, timeout_s: float) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
    except (OSError, http.client.HTTPException) as exc:
        raise errors.ServiceError(
            f"no answer from http://{host}:{port}{path} ({type(exc).__name__}: {exc}): is the "
            "service running?"
        ) from exc
    finally:
        conn.close()
