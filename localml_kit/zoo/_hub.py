"""The Hugging Face Hub and the ONNX Model Zoo (the ``onnxmodelzoo`` organisation on the Hub).

Every call honours the offline switch and ``HF_ENDPOINT`` (read at call time),
probes the endpoint first so an unreachable Hub answers in seconds, and carries
a timeout. huggingface_hub's ``list_models`` takes no timeout (its shared
client has none), so listings call the same ``/api/models`` endpoint through
huggingface_hub's session with one; cards come from ``HfApi.model_info`` and
downloads from ``snapshot_download`` into the normal HF cache. Some of
``snapshot_download``'s own requests have no timeout, and its file requests
retry for minutes, so a fetch runs under a watchdog: when no byte arrives in the
model's cache folder for ``stall_s`` seconds, it stops waiting with a
``DownloadError``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localml_kit import _download, config, errors, hardware
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


def _network_errors() -> tuple[type[Exception], ...]:
    """The exceptions huggingface_hub lets through for HTTP and transport failures."""
    from huggingface_hub.errors import HfHubHTTPError

    found: list[type[Exception]] = [HfHubHTTPError, OSError, ValueError]
    for module in ("httpx2", "httpx", "requests"):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        base = getattr(mod, "HTTPError", None) or getattr(mod, "RequestException", None)
        if isinstance(base, type) and issubclass(base, Exception):
            found.append(base)
    return tuple(found)


def _first_line(exc: BaseException) -> str:
    """A short reason: ``HTTP 503 Service Unavailable``, else the error's first line."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status} {getattr(response, 'reason_phrase', '') or ''}".strip()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


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

    Example:
        >>> hub = HubSource(timeout=10)
        >>> cards = hub.search("smollm2", format="gguf", limit=5)  # doctest: +SKIP
        >>> hub.fetch("HuggingFaceTB/SmolLM2-135M-Instruct",
        ...           allow_patterns=["*.json"])  # doctest: +SKIP
    """

    name = "hub"
    remote = True
    author: str | None = None

    def __init__(
        self, *, endpoint: str | None = None, timeout: float = 15.0, stall_s: float = 60.0
    ) -> None:
        self._endpoint = endpoint
        self.timeout = timeout
        self.stall_s = stall_s

    @property
    def endpoint(self) -> str:
        """The endpoint in use: the one given, else ``HF_ENDPOINT`` now."""
        return (self._endpoint or _download.hub_endpoint()).rstrip("/")

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
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

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
        url = f"{self.endpoint}/api/models"
        try:
            response = get_session().get(
                url, params=params, headers=build_hf_headers(), timeout=self.timeout
            )
            hf_raise_for_status(response)
            items = response.json()
            infos = [ModelInfo(**{"siblings": None, **item}) for item in items]
        except _network_errors() as exc:
            raise errors.DownloadError(
                f"the Hub at {self.endpoint} did not answer the search ({_first_line(exc)}). "
                "Try again, or check the network or HF_ENDPOINT."
            ) from exc
        return [card_from_info(i, self.name, format) for i in infos[:limit]]

    def card(self, id: str) -> ModelCard:
        """The full card of one Hub model: every file with its size, parameters, licence."""
        self._ready(f"the card of {id}")
        return card_from_info(self._info(id, files_metadata=True), self.name)

    def _info(self, id: str, *, files_metadata: bool) -> Any:
        """``HfApi.model_info`` with a timeout, its failures as kit errors."""
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        api = HfApi(endpoint=self.endpoint)
        try:
            return api.model_info(id, files_metadata=files_metadata, timeout=self.timeout)
        except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
            raise errors.ModelNotFoundError(
                f"no model {id!r} on the Hub at {self.endpoint} (or it is private or gated: "
                "log in with `hf auth login`). Check the id (owner/name), e.g. with zoo.search()."
            ) from exc
        except _network_errors() as exc:
            raise errors.DownloadError(
                f"could not read the card of {id} from the Hub ({_first_line(exc)}). "
                "Try again, or check the network or HF_ENDPOINT."
            ) from exc

    def fetch(
        self, id: str, *, allow_patterns: Sequence[str] | None = None, progress: bool = True
    ) -> Path:
        """Download a model (or the files matching ``allow_patterns``) into the HF cache.

        Files already cached are not downloaded again; offline, or with the Hub
        unreachable, a complete cached copy is returned.
        """
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        patterns = list(allow_patterns) if allow_patterns else None
        problem = hub_problem(self.endpoint)
        if problem is None:
            # huggingface_hub lists the repo without a timeout: ask first, with one.
            self._info(id, files_metadata=False)
        options: dict[str, Any] = {
            "allow_patterns": patterns,
            "endpoint": self.endpoint,
            "cache_dir": config.hf_hub_cache(),
            "etag_timeout": self.timeout,
            "local_files_only": problem is not None,
        }
        if not progress:
            options["tqdm_class"] = _silent_tqdm()
        try:
            repo = config.hf_hub_cache() / f"models--{id.replace('/', '--')}"
            folder = Path(_watched(lambda: snapshot_download(id, **options), repo, self.stall_s))
        except errors.LocalMLError:
            raise
        except LocalEntryNotFoundError as exc:
            if problem is not None and config.is_offline():
                raise errors.OfflineError(
                    f"{id} is not in the HF cache ({config.hf_hub_cache()}) and {problem}. "
                    f"Unset it and run `localml-kit zoo fetch {id}` once with network."
                ) from exc
            if problem is not None:
                raise errors.DownloadError(
                    f"{id} is not in the HF cache ({config.hf_hub_cache()}) and the Hub is "
                    f"unreachable ({problem}). Check the network or HF_ENDPOINT and try again."
                ) from exc
            raise errors.DownloadError(
                f"could not download {id} from the Hub ({_first_line(exc)}). "
                "Check the network or HF_ENDPOINT, then try again."
            ) from exc
        except (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError) as exc:
            raise errors.ModelNotFoundError(
                f"no model {id!r} on the Hub at {self.endpoint} (or it is private or gated: "
                "log in with `hf auth login`). Check the id, e.g. with zoo.search()."
            ) from exc
        except _network_errors() as exc:
            raise errors.DownloadError(
                f"could not download {id} from the Hub ({_first_line(exc)}). "
                "Check the network or HF_ENDPOINT, then try again."
            ) from exc
        if patterns and not _any_match(folder, patterns):
            raise errors.ModelNotFoundError(
                f"no file of {id} matches {patterns}; see its files with zoo.card({id!r}).files."
            )
        return folder


def _watched(work: Callable[[], Any], folder: Path, stall_s: float) -> Any:
    """``work()`` in a thread, given up on once ``folder`` has not grown for ``stall_s`` seconds.

    The thread is a daemon: a request that never returns is left behind, not waited for.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="localml-fetch", daemon=True)
    thread.start()
    seen, since = -1, time.monotonic()
    while thread.is_alive():
        thread.join(min(0.5, stall_s / 4))
        size = hardware.folder_bytes(folder) if folder.is_dir() else 0
        if size != seen:
            seen, since = size, time.monotonic()
        elif thread.is_alive() and time.monotonic() - since > stall_s:
            raise errors.DownloadError(
                f"the Hub stopped answering: nothing arrived for {stall_s:.0f} s. "
                "Check the network or HF_ENDPOINT and fetch again (finished files are kept)."
            )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _any_match(folder: Path, patterns: list[str]) -> bool:
    from huggingface_hub.utils import filter_repo_objects

    if not folder.is_dir():
        return False
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return any(True for _ in filter_repo_objects(names, allow_patterns=patterns))


def _silent_tqdm() -> type:
    """huggingface_hub's tqdm with every bar turned off."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class Silent(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent


class OnnxZooSource(HubSource):
    """The ONNX Model Zoo: its models live in the ``onnxmodelzoo`` organisation on the Hub.

    Example:
        >>> OnnxZooSource().search("resnet", limit=3)  # doctest: +SKIP
    """

    name = "onnx-zoo"
    author = "onnxmodelzoo"
