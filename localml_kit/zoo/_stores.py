"""The model stores of local LLM apps on disk: Ollama and LM Studio.

Both hold GGUF files; each card comes from the kit's own GGUF header reader
(``graph.summarize``), so parameters, quantization and the architecture facts
for the memory estimate are read from the file, not guessed from a name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from localml_kit import config
from localml_kit.zoo._card import CardFile, ModelCard
from localml_kit.zoo._local import file_card
from localml_kit.zoo._source import DiskSource

_DEFAULT_REGISTRY = "registry.ollama.ai"
_MEDIA = "application/vnd.ollama.image."


class OllamaSource(DiskSource):
    """Models pulled with ``ollama pull``: ``$OLLAMA_MODELS`` or ``~/.ollama/models``.

    Reads ``manifests/<registry>/<namespace>/<model>/<tag>`` and the blobs they
    name (``blobs/sha256-<hex>``). Ids are Ollama's: ``smollm2:135m``, or
    ``namespace/model:tag`` outside the ``library`` namespace.

    Example:
        >>> import json, os
        >>> from localml_kit import samples
        >>> store = Path("ollama")  # a store as `ollama pull smollm2:135m` leaves it
        >>> (store / "blobs").mkdir(parents=True)
        >>> os.symlink(samples.path("smollm2-135m-instruct", "gguf"), store / "blobs/sha256-1234")
        >>> manifest = store / "manifests/registry.ollama.ai/library/smollm2/135m"
        >>> manifest.parent.mkdir(parents=True)
        >>> layer = {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:1234"}
        >>> _ = manifest.write_text(json.dumps({"layers": [layer]}))
        >>> [(c.id, c.format, c.quantization) for c in OllamaSource(store).search("smollm2")]
        [('smollm2:135m', 'gguf', 'Q4_1')]
    """

    name = "ollama"

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._root = Path(root).expanduser() if root else None

    @property
    def root(self) -> Path:
        """The store: the folder given, else ``config.ollama_models_dir()`` now."""
        return self._root or config.ollama_models_dir()

    def where(self) -> str:
        return f"Ollama store {self.root}"

    def hint(self, id: str) -> str:
        name = id if ":" in id else f"{id}:latest"
        return f"Get it with `ollama pull {name}` (Ollama downloads it), then search again."

    def _blob(self, digest: str) -> Path:
        return self.root / "blobs" / digest.replace(":", "-")

    def manifests(self) -> list[tuple[str, Path]]:
        """(id, manifest path) of every model in the store."""
        top = self.root / "manifests"
        found = []
        for manifest in sorted(top.glob("*/*/*/*")):
            if not manifest.is_file():
                continue
            registry, namespace, model, tag = manifest.relative_to(top).parts
            if registry == _DEFAULT_REGISTRY:
                name = model if namespace == "library" else f"{namespace}/{model}"
            else:
                name = f"{registry}/{namespace}/{model}"
            found.append((f"{name}:{tag}", manifest))
        return found

    def cards(self) -> list[ModelCard]:
        return [c for c in (self._card(i, m) for i, m in self.manifests()) if c is not None]

    def card(self, id: str) -> ModelCard:
        wanted = id if ":" in id.rsplit("/", 1)[-1] else f"{id}:latest"
        for model_id, manifest in self.manifests():
            if model_id == wanted:
                card = self._card(model_id, manifest)
                if card is not None:
                    return card
        return super().card(wanted)

    def _card(self, id: str, manifest: Path) -> ModelCard | None:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        layers = [x for x in data.get("layers", []) if isinstance(x, dict)]
        by_kind: dict[str, dict[str, Any]] = {}
        for layer in layers:
            kind = str(layer.get("mediaType", "")).removeprefix(_MEDIA).split(";")[0]
            by_kind.setdefault(kind, layer)
        model = by_kind.get("model")
        if model is None or not isinstance(model.get("digest"), str):
            return None
        blob = self._blob(model["digest"])
        image = self._json_blob((data.get("config") or {}).get("digest"))
        files = tuple(
            CardFile(f"blobs/{str(x.get('digest', '')).replace(':', '-')}", x.get("size"))
            for x in layers
        )
        fields: dict[str, Any] = {
            "license": self._license(by_kind.get("license")),
            "tags": tuple(str(t) for t in image.get("model_families") or () if t),
            "files": files,
            "extra": {
                "manifest": str(manifest),
                "digest": model["digest"],
                "layers": {kind: layer.get("digest") for kind, layer in by_kind.items()},
                "family": image.get("model_family"),
                "parameter_size": image.get("model_type"),
            },
        }
        if not blob.is_file():
            return ModelCard(
                id=id,
                source=self.name,
                format="gguf",
                size_bytes=model.get("size"),
                quantization=image.get("file_type"),
                files=files,
                extra={**fields["extra"], "error": f"blob {blob} is missing: pull it again"},
            )
        return file_card(blob, id=id, source=self.name, title=id, format="gguf", **fields)

    def _json_blob(self, digest: object) -> dict[str, Any]:
        if not isinstance(digest, str):
            return {}
        try:
            data = json.loads(self._blob(digest).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _license(self, layer: dict[str, Any] | None) -> str | None:
        if not layer or not isinstance(layer.get("digest"), str):
            return None
        try:
            with self._blob(layer["digest"]).open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.strip():
                        return line.strip()[:200]
        except OSError:
            return None
        return None


class LMStudioSource(DiskSource):
    """GGUF models in LM Studio's folder: ``<publisher>/<repo>/<file>.gguf``.

    The folder is ``LOCALML_LMSTUDIO_MODELS``, else ``~/.lmstudio/models``
    (or the older ``~/.cache/lm-studio/models``). Ids are ``publisher/repo/file.gguf``.

    Example:
        >>> import os
        >>> from localml_kit import samples
        >>> gguf = samples.path("smollm2-135m-instruct", "gguf")
        >>> repo = Path("lmstudio/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
        >>> repo.mkdir(parents=True)
        >>> os.symlink(gguf, repo / gguf.name)
        >>> [c.id for c in LMStudioSource("lmstudio").search(format="gguf")]
        ['HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf']
    """

    name = "lmstudio"

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._root = Path(root).expanduser() if root else None

    @property
    def root(self) -> Path:
        """The models folder: the one given, else ``config.lmstudio_models_dir()`` now."""
        return self._root or config.lmstudio_models_dir()

    def where(self) -> str:
        return f"LM Studio folder {self.root}"

    def hint(self, id: str) -> str:
        return "Download it in LM Studio (or `lms get`), or point LOCALML_LMSTUDIO_MODELS at its folder."

    def cards(self) -> list[ModelCard]:
        cards = []
        for path in sorted(self.root.glob("*/*/*.gguf")):
            if path.name.lower().startswith("mmproj"):
                continue  # a vision projector, not a model of its own
            publisher, repo = path.relative_to(self.root).parts[:2]
            cards.append(
                file_card(
                    path,
                    id=path.relative_to(self.root).as_posix(),
                    source=self.name,
                    author=publisher,
                    extra={"repo": f"{publisher}/{repo}"},
                )
            )
        return cards
