"""Sources on this machine: the Hugging Face cache, folders of model files, the kit's samples."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localml_kit import config, errors, hardware
from localml_kit.zoo import _facts
from localml_kit.zoo._card import CardFile, ModelCard
from localml_kit.zoo._source import DiskSource

# Folders never worth scanning for models.
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "dist-packages"}
_MODEL_SUFFIXES = (".onnx", ".gguf")


def summarized(path: Path) -> dict[str, Any]:
    """Card facts from ``graph.summarize`` (headers only); a damaged file gives an ``error`` fact."""
    from localml_kit import graph

    try:
        return _facts.summary_facts(graph.summarize(path))
    except (errors.LocalMLError, OSError, ValueError) as exc:
        return {"extra": {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}}


def file_card(path: Path, *, id: str, source: str, title: str = "", **fields: Any) -> ModelCard:
    """The card of one .onnx/.gguf file: its summary plus the fields given (which win)."""
    facts = summarized(path)
    extra = {**facts.pop("extra", {}), **fields.pop("extra", {})}
    config_ = {**facts.pop("config", {}), **fields.pop("config", {})}
    facts.setdefault("format", _facts.format_of(path.name))
    facts.setdefault("size_bytes", path.stat().st_size if path.exists() else None)
    facts.setdefault("quantization", _facts.quantization_of(path.name))
    files = fields.pop("files", None) or (CardFile(path.name, facts["size_bytes"]),)
    merged = {**facts, **{k: v for k, v in fields.items() if v is not None}}
    return ModelCard(
        id=id,
        source=source,
        title=title or path.name,
        local_path=path,
        files=tuple(files),
        config=config_,
        extra=extra,
        **merged,
    )


class CacheSource(DiskSource):
    """Models in the local Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``).

    Example:
        >>> snapshot = Path("hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/0123abc")
        >>> snapshot.mkdir(parents=True)  # a cache as huggingface_hub lays it out
        >>> _ = (snapshot / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
        >>> [c.id for c in CacheSource("hub").search("smollm2")]
        ['HuggingFaceTB/SmolLM2-135M-Instruct']
    """

    name = "cache"

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self._cache_dir = Path(cache_dir) if cache_dir else None

    @property
    def cache_dir(self) -> Path:
        """The cache folder: the one given, else the HF cache now."""
        return self._cache_dir or config.hf_hub_cache()

    def where(self) -> str:
        return f"HF cache {self.cache_dir}"

    def hint(self, id: str) -> str:
        return f"Download it with zoo.fetch({id!r}) or `localml-kit zoo fetch {id}`."

    def cards(self) -> list[ModelCard]:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        if not self.cache_dir.is_dir():
            return []
        try:
            info = scan_cache_dir(self.cache_dir)
        except CacheNotFound:
            return []
        repos = sorted((r for r in info.repos if r.repo_type == "model"), key=lambda r: r.repo_id)
        return [card for card in map(self._card, repos) if card is not None]

    def _card(self, repo: Any) -> ModelCard | None:
        if not repo.revisions:
            return None
        revision = repo.refs.get("main") or max(repo.revisions, key=lambda r: r.last_modified)
        folder = Path(revision.snapshot_path)
        paths = sorted(f.file_path for f in revision.files)
        files = tuple(
            CardFile(Path(p).relative_to(folder).as_posix(), Path(p).stat().st_size)
            for p in paths
            if Path(p).exists()
        )
        formats = _facts.formats_of(f.name for f in files)
        fmt = formats[0] if formats else None
        size, quantization, main_file = _facts.weights(files, fmt)
        facts: dict[str, Any] = {}
        if fmt in ("gguf", "onnx") and main_file:
            facts = summarized(folder / main_file)
        parameters = facts.get("parameters")
        if fmt == "safetensors":
            parameters, dtype = _facts.safetensors_parameters(
                folder / f.name for f in files if f.name.endswith(".safetensors")
            )
            quantization = quantization or dtype
        card_config = facts.get("config") or _facts.config_facts(folder)
        return ModelCard(
            id=repo.repo_id,
            source=self.name,
            task=facts.get("task"),
            format=fmt,
            size_bytes=size,
            parameters=parameters,
            quantization=quantization or facts.get("quantization"),
            license=facts.get("license"),
            files=files,
            local_path=folder,
            author=repo.repo_id.split("/", 1)[0] if "/" in repo.repo_id else None,
            last_modified=datetime.fromtimestamp(revision.last_modified, UTC).isoformat(),
            config=card_config,
            extra={
                "revision": revision.commit_hash,
                "size_on_disk": revision.size_on_disk,
                "formats": list(formats),
                "main_file": main_file,
            },
        )


def _walk(folder: Path, depth: int, max_folders: int = 2000) -> Iterator[Path]:
    """.onnx and .gguf files under ``folder``, ``depth`` levels down, breadth first.

    Hidden and tool folders are skipped, and at most ``max_folders`` folders are
    read, so pointing it at a home directory stays fast.
    """
    queue = deque([(folder, depth)])
    while queue and max_folders > 0:
        current, left = queue.popleft()
        max_folders -= 1
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_file() and entry.name.lower().endswith(_MODEL_SUFFIXES):
                    yield Path(entry.path)
                elif entry.is_dir() and left > 0 and entry.name not in _SKIP_DIRS:
                    queue.append((Path(entry.path), left - 1))
            except OSError:
                continue


class LocalSource(DiskSource):
    """.onnx and .gguf files in folders (``LOCALML_MODEL_DIRS``, default the current directory).

    Folders are scanned ``depth`` levels down; hidden folders, ``node_modules``
    and ``site-packages`` are skipped. The id of a model is its path.

    Example:
        >>> import onnx
        >>> from onnx import TensorProto, helper
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
        >>> graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
        >>> Path("models/nested").mkdir(parents=True)
        >>> onnx.save(helper.make_model(graph), "models/nested/tiny.onnx")
        >>> [(c.id, c.format) for c in LocalSource(["models"]).search(format="onnx")]
        [('.../models/nested/tiny.onnx', 'onnx')]
    """

    name = "local"

    def __init__(
        self, folders: Sequence[str | os.PathLike[str]] | None = None, *, depth: int = 3
    ) -> None:
        self._folders = tuple(Path(f).expanduser() for f in folders) if folders else None
        self.depth = depth

    @property
    def folders(self) -> tuple[Path, ...]:
        """The folders scanned: those given, else ``config.model_dirs()`` now."""
        return self._folders or config.model_dirs()

    def where(self) -> str:
        return "folders " + ", ".join(str(f) for f in self.folders)

    def hint(self, id: str) -> str:
        return "Give a path to an .onnx or .gguf file, or add its folder to LOCALML_MODEL_DIRS."

    def cards(self) -> list[ModelCard]:
        seen: dict[Path, None] = {}
        for folder in self.folders:
            for path in _walk(folder.resolve(), self.depth):
                seen.setdefault(path, None)
        return [file_card(p, id=str(p), source=self.name) for p in seen]

    def card(self, id: str) -> ModelCard:
        path = Path(id).expanduser()
        if path.is_file() and path.name.lower().endswith(_MODEL_SUFFIXES):
            return file_card(path.resolve(), id=str(path.resolve()), source=self.name)
        return super().card(id)


class SamplesSource(DiskSource):
    """The kit's offline sample models; ready ones carry their local path.

    Example:
        >>> [c.id for c in SamplesSource().search("digits")]
        ['digits-mlp', 'digits-forest']
    """

    name = "samples"

    def where(self) -> str:
        return f"samples in {config.samples_dir()}"

    def hint(self, id: str) -> str:
        return "List them with `localml-kit samples list`."

    def cards(self) -> list[ModelCard]:
        from localml_kit import samples

        return [self._card(samples.get(n), samples.status(n)) for n in samples.names()]

    def _card(self, sample: Any, status: Any) -> ModelCard:
        from localml_kit import samples

        variant = sample.default_variant
        path = samples.path(sample.name) if status.ready else None
        size = _size(path) if path is not None else None
        fmt = "gguf" if variant == "gguf" else "onnx"
        quantization = next((q for q in ("int4", "int8", "fp16", "fp32") if q in variant), None)
        if quantization is None and "gguf" in variant and "gguf" in sample.variants:
            # The GGUF's own blocks, carried: its quantization is the GGUF file's.
            quantization = _facts.quantization_of(Path(sample.variants["gguf"]).name)
        folder = path if path is not None and path.is_dir() else None
        return ModelCard(
            id=sample.name,
            source=self.name,
            title=sample.title,
            task=sample.task,
            format=fmt,
            size_bytes=size,
            quantization=quantization,
            license=sample.license,
            tags=tuple(sample.tags),
            files=tuple(CardFile(v) for v in {**sample.variants, **sample.files}.values()),
            local_path=path,
            description=sample.description,
            config=_facts.config_facts(folder) if folder else {},
            extra={
                "ready": status.ready,
                "reason": status.reason,
                "hub_repo": sample.hub_repo,
                "variants": list(sample.variants),
                "origin": status.source,
            },
        )

    def fetch(
        self, id: str, *, allow_patterns: Sequence[str] | None = None, progress: bool = True
    ) -> Path:
        """Fetch and build the sample once (``samples.fetch``); returns its default variant's path."""
        from localml_kit import samples

        return samples.fetch(id, progress=progress)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else hardware.folder_bytes(path)
