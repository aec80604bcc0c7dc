"""The Hugging Face Hub and the ONNX Model Zoo (the ``onnxmodelzoo`` organisation on the Hub).

Every call honours the offline switch and ``HF_ENDPOINT`` (read at call time),
probes the endpoint first so an unreachable Hub answers in seconds, and has a
total deadline. A per-read timeout is not enough: a Hub that sends one byte
every few seconds never trips it, and huggingface_hub's own requests retry for
minutes from threads of their own. So each call (a listing, a card, a download)
runs huggingface_hub in a child process (``_hubworker.py``, started through
``_proc``) that the kit kills when the call is over its time: the deadline
(``timeout``, default ``LOCALML_HUB_TIMEOUT``) for searches and cards, and for
a download a watchdog that stops it once no byte has reached the model's cache
folder for ``stall_s`` seconds. Nothing of a call (no thread, no retry, no log
line) is left once it returns. Downloads land in the normal HF cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localml_kit import _download, _proc, config, errors, hardware
from localml_kit.zoo import _facts
from localml_kit.zoo._card import CardFile, ModelCard
from localml_kit.zoo._source import check_sort

# Fields a listing asks the Hub for (``expand``), enough for a card without a second call.
_LIST_FIELDS = (
    "author",
    "downloads",
    "likes",
    "tags",
    "pipeline_tag",
    "library_name",
    "lastModified",
    "siblings",
    "safetensors",
    "gguf",
    "sha",
)
_HUB_SORT = {"downloads": "downloads", "likes": "likes", "last_modified": "lastModified"}
PROBE_TIMEOUT_S = 3.0


WORKER = Path(__file__).with_name("_hubworker.py")
_POLL_S = 0.1


class _HubFailed(Exception):
    """What a Hub call in the child raised: its class names (most derived first) and a reason."""

    def __init__(self, types: Sequence[str], reason: str) -> None:
        super().__init__(reason)
        self.types = frozenset(types)
        self.reason = reason


def _in_child(
    job: dict[str, Any],
    *,
    late: str,
    deadline_s: float | None,
    watch: Path | None = None,
    stall_s: float = 60.0,
    bar: Any = None,
) -> Any:
    """Run one Hub call (``_hubworker.py``'s job) in a child; its value, else ``_HubFailed``.

    The child is killed (with its process group) when the call has run
    ``deadline_s`` seconds (HubTimeoutError saying ``late``), or when ``watch``,
    a folder, has not changed size for ``stall_s`` seconds; ``bar`` (a tqdm) is
    moved by the bytes ``watch`` gains. However it ends, the child is gone on return.
    """
    with tempfile.TemporaryDirectory(prefix="localml-hub-") as tmp:
        work = Path(tmp)
        result = work / "result.json"
        job_file = work / "job.json"
        job_file.write_text(json.dumps({**job, "result": str(result)}), encoding="utf-8")
        # The kit shows its own progress (the child's bars would only fill its log), and the
        # child sends only the call asked for: no telemetry lookup (the agent registry) first.
        env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        with (work / "log").open("wb") as log:
            proc = _proc.start(
                [sys.executable, "-P", WORKER, job_file],
                what="a Hugging Face Hub call",
                stdout=log,
                stderr=log,
                env=env,
            )
        try:
            started = time.monotonic()
            seen = peak = (
                hardware.folder_bytes(watch) if watch is not None and watch.is_dir() else 0
            )
            since = started
            while True:
                try:
                    proc.wait(timeout=_POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if deadline_s is not None and now - started > deadline_s:
                    raise errors.HubTimeoutError(
                        f"{late} within {deadline_s:g} s, so the kit stopped waiting. Try again, "
                        "allow more time (LOCALML_HUB_TIMEOUT, or timeout=), or check the "
                        "network or HF_ENDPOINT."
                    )
                if watch is None:
                    continue
                size = hardware.folder_bytes(watch) if watch.is_dir() else 0
                if size != seen:
                    if bar is not None and size > peak:
                        bar.update(size - peak)
                    seen, peak, since = size, max(peak, size), now
                elif now - since > stall_s:
                    raise errors.HubTimeoutError(
                        f"the Hub stopped answering: nothing arrived for {stall_s:g} s. "
                        "Check the network or HF_ENDPOINT and fetch again (finished files are kept)."
                    )
        finally:
            _proc.kill(proc)  # at once when it already ended; else it and its group go now
        try:
            outcome = json.loads(result.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            said = _proc.tail((work / "log").read_bytes())
            raise errors.DownloadError(
                f"the Hub call ended without an answer (exit code {proc.returncode})"
                + (f": {said}" if said else "")
                + ". Check that huggingface_hub is installed and works, then try again."
            ) from None
    if "error" in outcome:
        raise _HubFailed(outcome["error"]["types"], outcome["error"]["reason"])
    return outcome["ok"]


def hub_problem(endpoint: str) -> str | None:
    """Why the Hub cannot be searched now (offline mode, or no TCP connection), or None."""
    if config.is_offline():
        return "offline mode is on (LOCALML_OFFLINE / HF_HUB_OFFLINE)"
    return _download._reachable(endpoint, PROBE_TIMEOUT_S)


def _license(info: Any) -> str | None:
    data = info.card_data
    value = getattr(data, "license", None) if data is not None else None
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    if value:
        return str(value)
    return next((t.split(":", 1)[1] for t in info.tags or () if t.startswith("license:")), None)


def card_from_info(info: Any, source: str, wanted_format: str | None = None) -> ModelCard:
    """A ModelCard from a huggingface_hub ``ModelInfo`` (listing or ``model_info``)."""
    tags = tuple(str(t) for t in info.tags or ())
    files = tuple(CardFile(s.rfilename, s.size) for s in info.siblings or ())
    formats = _facts.formats_of((f.name for f in files), tags, info.library_name)
    fmt = wanted_format if wanted_format in formats else (formats[0] if formats else None)
    size, quantization, main_file = _facts.weights(files, fmt)
    gguf = info.gguf if isinstance(info.gguf, dict) else {}
    safetensors = info.safetensors
    parameters = (safetensors.total if safetensors else None) or gguf.get("total")
    hub_config = info.config if isinstance(info.config, dict) else {}
    card_config: dict[str, Any] = {k: hub_config[k] for k in _facts.CONFIG_KEYS if k in hub_config}
    for key in ("architecture", "context_length"):
        if gguf.get(key) is not None:
            card_config[key] = gguf[key]
    data = info.card_data
    description = data.get("description") if data is not None else None
    author = info.author or (info.id.split("/", 1)[0] if "/" in info.id else None)
    return ModelCard(
        id=info.id,
        source=source,
        task=info.pipeline_tag,
        format=fmt,
        size_bytes=size,
        parameters=int(parameters) if parameters else None,
        quantization=quantization or _facts.quantization_of_tags(tags),
        license=_license(info),
        downloads=info.downloads,
        likes=info.likes,
        tags=tags,
        files=files,
        description=str(description) if description else None,
        author=author,
        last_modified=info.last_modified.isoformat() if info.last_modified else None,
        config=card_config,
        extra={
            "library": info.library_name,
            "sha": info.sha,
            "formats": list(formats),
            "main_file": main_file,
            "gated": info.gated,
        },
    )


class HubSource:
    """Models on the Hugging Face Hub (``HF_ENDPOINT``, default huggingface.co).

    ``timeout`` is the total time a search or a card may take (default
    ``LOCALML_HUB_TIMEOUT``, 20 s); a download is stopped once nothing has
    arrived for ``stall_s`` seconds.

    Example:
        >>> hub = HubSource(timeout=10)
        >>> hub.name, hub.remote
        ('hub', True)

    Usage (it needs the Hub)::

        cards = hub.search("smollm2", format="gguf", limit=5)
        hub.fetch("HuggingFaceTB/SmolLM2-135M-Instruct", allow_patterns=["*.json"])
    """

    name = "hub"
    remote = True
    author: str | None = None

    def __init__(
        self, *, endpoint: str | None = None, timeout: float | None = None, stall_s: float = 60.0
    ) -> None:
        self._endpoint = endpoint
        self.timeout = timeout
        self.stall_s = stall_s

    @property
    def endpoint(self) -> str:
        """The endpoint in use: the one given, else ``HF_ENDPOINT`` now."""
        return (self._endpoint or _download.hub_endpoint()).rstrip("/")

    @property
    def deadline_s(self) -> float:
        """Seconds one call may take in all: ``timeout`` if given, else ``LOCALML_HUB_TIMEOUT``."""
        return self.timeout if self.timeout is not None else config.hub_timeout_s()

    def _ready(self, what: str) -> None:
        problem = hub_problem(self.endpoint)
        if problem is None:
            return
        if config.is_offline():
            raise errors.OfflineError(
                f"{what} needs the Hub and {problem}. Unset it to use the Hub, or search "
                "the local sources: zoo.search(sources=['cache', 'local', 'samples'])."
            )
        raise errors.DownloadError(
            f"{what}: the Hub is unreachable ({problem}). Check the network or HF_ENDPOINT."
        )

    def _get(self, path: str, params: dict[str, Any], late: str) -> Any:
        """The JSON the Hub answers at ``path``, within the deadline (``_HubFailed`` if it refused)."""
        job = {
            "kind": "get",
            "url": f"{self.endpoint}{path}",
            "params": params,
            "timeout": self.deadline_s,
        }
        return _in_child(job, late=f"the Hub at {self.endpoint} {late}", deadline_s=self.deadline_s)

    def search(
        self,
        query: str = "",
        *,
        task: str | None = None,
        format: str | None = None,
        limit: int = 50,
        sort: str | None = None,
    ) -> list[ModelCard]:
        """Hub models matching ``query``; ``task`` is the pipeline tag, ``format`` a tag (onnx, gguf...)."""
        check_sort(sort)
        self._ready(f"searching {self.name}")
        from huggingface_hub import ModelInfo

        params: dict[str, Any] = {"limit": max(1, min(limit, 1000)), "expand": list(_LIST_FIELDS)}
        if query:
            params["search"] = query
        if self.author:
            params["author"] = self.author
        if task:
            params["pipeline_tag"] = task
        if format:
            params["filter"] = [format]
        if sort in _HUB_SORT:
            params["sort"] = _HUB_SORT[sort]
        try:
            items = self._get("/api/models", params, "did not answer the search")
            infos = [ModelInfo(**{"siblings": None, **item}) for item in items]
        except (_HubFailed, TypeError, ValueError, AttributeError) as exc:
            reason = exc.reason if isinstance(exc, _HubFailed) else f"unexpected answer: {exc}"
            raise errors.DownloadError(
                f"the Hub at {self.endpoint} did not answer the search ({reason}). "
                "Try again, or check the network or HF_ENDPOINT."
            ) from None
        return [card_from_info(i, self.name, format) for i in infos[:limit]]

    def card(self, id: str) -> ModelCard:
        """The full card of one Hub model: every file with its size, parameters, licence."""
        self._ready(f"the card of {id}")
        return card_from_info(self._info(id, files_metadata=True), self.name)

    def _info(self, id: str, *, files_metadata: bool) -> Any:
        """The model's ``ModelInfo`` (``/api/models/{id}``) within the deadline, failures as kit errors."""
        from huggingface_hub import ModelInfo
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(id)
        except ValueError as exc:
            raise errors.ModelNotFoundError(
                f"{id!r} is not a Hub model id ({exc}). Use owner/name, e.g. from zoo.search()."
            ) from None
        params = {"blobs": True} if files_metadata else {}
        try:
            return ModelInfo(
                **self._get(f"/api/models/{id}", params, f"did not send the card of {id}")
            )
        except _HubFailed as exc:
            if exc.types & _NOT_FOUND:
                raise errors.ModelNotFoundError(
                    f"no model {id!r} on the Hub at {self.endpoint} (or it is private or gated: "
                    "log in with `hf auth login`). Check the id (owner/name), e.g. with zoo.search()."
                ) from None
            raise errors.DownloadError(
                f"could not read the card of {id} from the Hub ({exc.reason}). "
                "Try again, or check the network or HF_ENDPOINT."
            ) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise errors.DownloadError(
                f"could not read the card of {id} from the Hub (unexpected answer: {exc}). "
                "Try again, or check HF_ENDPOINT."
            ) from None

    def fetch(
        self, id: str, *, allow_patterns: Sequence[str] | None = None, progress: bool = True
    ) -> Path:
        """Download a model (or the files matching ``allow_patterns``) into the HF cache.

        Files already cached are not downloaded again; offline, or with the Hub
        unreachable, a complete cached copy is returned. The download runs in a
        child process that is stopped once nothing has arrived for ``stall_s``
        seconds; when this returns or raises, nothing of it is still running.
        """
        patterns = list(allow_patterns) if allow_patterns else None
        problem = hub_problem(self.endpoint)
        if problem is not None:
            folder = self._cached(id, patterns, problem)
        else:
            # The listing, within the deadline: an unknown id fails here, and it gives the sizes.
            info = self._info(id, files_metadata=True)
            options = {
                "allow_patterns": patterns,
                "endpoint": self.endpoint,
                "cache_dir": str(config.hf_hub_cache()),
                "etag_timeout": min(self.deadline_s, self.stall_s),
            }
            # Bytes arrive as files under blobs/ (snapshots/ holds links to them).
            blobs = config.hf_hub_cache() / f"models--{id.replace('/', '--')}" / "blobs"
            bar = _progress_bar(id, _bytes_wanted(info, patterns)) if progress else None
            try:
                job = {"kind": "fetch", "repo_id": id, "options": options}
                late = f"the download of {id}"
                folder = Path(
                    _in_child(
                        job, late=late, deadline_s=None, watch=blobs, stall_s=self.stall_s, bar=bar
                    )
                )
            except _HubFailed as exc:
                if exc.types & _NOT_FOUND:
                    raise errors.ModelNotFoundError(
                        f"no model {id!r} on the Hub at {self.endpoint} (or it is private or "
                        "gated: log in with `hf auth login`). Check the id, e.g. with zoo.search()."
                    ) from None
                raise errors.DownloadError(
                    f"could not download {id} from the Hub ({exc.reason}). "
                    "Check the network or HF_ENDPOINT, then try again."
                ) from None
            else:
                if bar is not None and bar.total:  # it may have finished between two looks
                    bar.update(max(0, bar.total - bar.n))
            finally:
                if bar is not None:
                    bar.close()
        if patterns and not _any_match(folder, patterns):
            raise errors.ModelNotFoundError(
                f"no file of {id} matches {patterns}; see its files with zoo.card({id!r}).files."
            )
        return folder

    def _cached(self, id: str, patterns: list[str] | None, problem: str) -> Path:
        """The complete cached copy of ``id`` (no network: the Hub is off or unreachable)."""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(
                snapshot_download(
                    id,
                    allow_patterns=patterns,
                    cache_dir=config.hf_hub_cache(),
                    endpoint=self.endpoint,
                    local_files_only=True,
                )
            )
        except LocalEntryNotFoundError as exc:
            if config.is_offline():
                raise errors.OfflineError(
                    f"{id} is not in the HF cache ({config.hf_hub_cache()}) and {problem}. "
                    f"Unset it and run `localml-kit zoo fetch {id}` once with network."
                ) from exc
            raise errors.DownloadError(
                f"{id} is not in the HF cache ({config.hf_hub_cache()}) and the Hub is "
                f"unreachable ({problem}). Check the network or HF_ENDPOINT and try again."
            ) from exc
        except (OSError, ValueError) as exc:
            raise errors.DownloadError(
                f"could not read {id} from the HF cache ({type(exc).__name__}: {exc}). "
                "Check the id (owner/name) and the cache folder."
            ) from exc


# What huggingface_hub raises for a repository or revision that is not there (or not for you).
_NOT_FOUND = frozenset({"RepositoryNotFoundError", "RevisionNotFoundError", "GatedRepoError"})


def _bytes_wanted(info: Any, patterns: list[str] | None) -> int | None:
    """The bytes of the files a fetch will get (None when the listing lacks a size)."""
    from huggingface_hub.utils import filter_repo_objects

    siblings = list(
        filter_repo_objects(info.siblings or [], allow_patterns=patterns, key=lambda s: s.rfilename)
    )
    sizes = [s.size for s in siblings]
    return sum(sizes) if all(isinstance(n, int) for n in sizes) else None


def _progress_bar(id: str, total: int | None) -> Any:
    """A bytes bar for a fetch (huggingface_hub's tqdm: off with HF_HUB_DISABLE_PROGRESS_BARS)."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    return hf_tqdm(total=total, unit="B", unit_scale=True, desc=f"Fetching {id}")


def _any_match(folder: Path, patterns: list[str]) -> bool:
    from huggingface_hub.utils import filter_repo_objects

    if not folder.is_dir():
        return False
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return any(True for _ in filter_repo_objects(names, allow_patterns=patterns))


class OnnxZooSource(HubSource):
    """The ONNX Model Zoo: its models live in the ``onnxmodelzoo`` organisation on the Hub.

    Example:
        >>> OnnxZooSource().name
        'onnx-zoo'

    Usage (it needs the Hub)::

        OnnxZooSource().search("resnet", limit=3)
    """

    name = "onnx-zoo"
    author = "onnxmodelzoo"
