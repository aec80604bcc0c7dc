"""A ship folder: everything the app needs on another machine, with sizes, hashes and a checklist."""

from __future__ import annotations

import hashlib
import html
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from localml_kit import _proc, config, errors, samples
from localml_kit.serve import _app
from localml_kit.serve._resolve import DEFAULT_MODEL, AppModel, app_model

MB = 1024 * 1024
MANIFEST = "manifest.json"
KIND = "localml-kit ship folder"
# What the shipped app imports (module names); requirements.txt pins their distributions.
SERVICE_MODULES = ("onnxruntime", "numpy", "tokenizers", "starlette", "uvicorn")


@dataclass(frozen=True)
class ShippedFile:
    """One file of a ship folder: its name in the folder, what it is for, size and sha256."""

    name: str
    role: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ChecklistItem:
    """One line of the shipping checklist: done (True), not done (False) or unknown (None)."""

    item: str
    done: bool | None
    detail: str


@dataclass(frozen=True)
class ShipManifest:
    """What :func:`bundle` wrote: the folder, every file (size, sha256), requirements, budget, checklist.

    ``memory`` holds the profiler's figures for the worst request the service
    accepts (``session_mb``, ``run_peak_mb``, ``baseline_mb``, ``budget_mb``,
    ``batch``, ``tokens``); empty when it was not measured. It is also written as
    ``manifest.json`` in the folder; :meth:`read` loads it back.

    Example (a quick bundle: no ORT format, no memory budget):
        >>> ship = bundle("all-minilm-l6-v2", "ship-minilm", ort_format=False, memory=False)
        >>> ship.frame()[["name", "role"]]
                       name                           role
        0        model.onnx                   model (ONNX)
        1    tokenizer.json                      tokenizer
        2       corpus.txt  search corpus (209 sentences)
        3            app.py   the app: CLI and web service
        4  requirements.txt      pip requirements (pinned)
        5         README.md                  how to run it
        >>> again = ShipManifest.read("ship-minilm")
        >>> again.files == ship.files, again.license, again.memory
        (True, 'Apache-2.0', {})
        >>> again.verify()  # every file still matches its sha256
    """

    folder: Path
    model: str
    files: tuple[ShippedFile, ...]
    requirements: tuple[str, ...]
    license: str
    memory: dict[str, float] = field(default_factory=dict)
    checklist: tuple[ChecklistItem, ...] = ()
    onnxruntime: str = ""
    created: str = ""
    notes: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)

    def path(self, name: str) -> Path:
        """The path of one shipped file (``ship.path("model.ort")``)."""
        if name not in {f.name for f in self.files}:
            raise errors.ModelNotFoundError(
                f"the ship folder has no {name!r}; it holds {', '.join(f.name for f in self.files)}."
            )
        return self.folder / name

    def frame(self) -> pd.DataFrame:
        """One row per file: name, role, size in MB, sha256 (first 16 hex digits)."""
        rows = [
            {
                "name": f.name,
                "role": f.role,
                "size_mb": round(f.size_bytes / 1e6, 3),
                "sha256": f.sha256[:16],
            }
            for f in self.files
        ]
        return pd.DataFrame(rows, columns=["name", "role", "size_mb", "sha256"])

    def checklist_frame(self) -> pd.DataFrame:
        """The checklist as a table: item, done, detail."""
        return pd.DataFrame([asdict(c) for c in self.checklist], columns=["item", "done", "detail"])

    def verify(self) -> None:
        """Re-hash every file against the manifest; a changed or missing file raises ChecksumError."""
        for f in self.files:
            path = self.folder / f.name
            if not path.is_file():
                raise errors.ModelNotFoundError(
                    f"{path} is missing from the ship folder: bundle again."
                )
            actual = _sha256(path)
            if actual != f.sha256:
                raise errors.ChecksumError(str(path), f.sha256, actual)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``manifest.json`` holds)."""
        data = asdict(self)
        data["folder"] = str(self.folder)
        data["kind"] = KIND
        return data

    @classmethod
    def read(cls, folder: str | os.PathLike[str]) -> ShipManifest:
        """Load the manifest of a ship folder written by :func:`bundle`."""
        path = Path(folder) / MANIFEST
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise errors.ModelNotFoundError(
                f"no readable {MANIFEST} in {folder}: it is not a ship folder (make one with "
                "serve.bundle)."
            ) from exc
        if data.pop("kind", None) != KIND:
            raise errors.ModelNotFoundError(
                f"{path} is not a ship folder's manifest (make one with serve.bundle)."
            )
        data["folder"] = Path(folder)
        data["files"] = tuple(ShippedFile(**f) for f in data["files"])
        data["checklist"] = tuple(ChecklistItem(**c) for c in data.get("checklist", ()))
        data["requirements"] = tuple(data["requirements"])
        data["notes"] = tuple(data.get("notes", ()))
        return cls(**data)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(f.name)}</code></td><td>{html.escape(f.role)}</td>"
            f"<td style='text-align:right'>{f.size_bytes / 1e6:,.2f} MB</td>"
            f"<td><code>{f.sha256[:16]}</code></td></tr>"
            for f in self.files
        )
        ticks = "".join(
            f"<li>{'&#9745;' if c.done else '&#9744;' if c.done is False else '?'} "
            f"<b>{html.escape(c.item)}</b>: {html.escape(c.detail)}</li>"
            for c in self.checklist
        )
        return (
            f"<p><b>Ship folder for {html.escape(self.model)}</b>: "
            f"<code>{html.escape(str(self.folder))}</code>, "
            f"{self.total_bytes / 1e6:,.1f} MB in {len(self.files)} files</p>"
            f"<table><tr><th>file</th><th>role</th><th>size</th><th>sha256</th></tr>{rows}</table>"
            f"<ul>{ticks}</ul>"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def requirements() -> list[str]:
    """The shipped app's requirements, pinned to the versions installed here.

    Only what ``app.py`` imports: ONNX Runtime (whichever package provides it
    here), numpy, tokenizers, starlette and uvicorn; never the kit itself.

    Example:
        >>> [r.split("==")[0] for r in requirements()]
        ['onnxruntime', 'numpy', 'tokenizers', 'starlette', 'uvicorn']
    """
    from importlib import metadata

    providers = metadata.packages_distributions()
    out = []
    for module in SERVICE_MODULES:
        for name in [*providers.get(module, ()), module]:
            try:
                out.append(f"{name}=={metadata.version(name)}")
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            raise errors.OptionalDependencyError(
                f"{module} is not installed, and the app needs it: "
                'pip install "localml-kit[serve]".'
            )
    return out


def _external_data(model: Path) -> list[str]:
    """The external-data files an ONNX model refers to (relative to its folder)."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    found: list[str] = []

    def visit(graph: Any) -> None:
        tensors = list(graph.initializer)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    tensors.append(attr.t)
                tensors.extend(attr.tensors)
                if attr.HasField("g"):
                    visit(attr.g)
                for sub in attr.graphs:
                    visit(sub)
        for tensor in tensors:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                where = next((e.value for e in tensor.external_data if e.key == "location"), "")
                if where and where not in found:
                    found.append(where)

    visit(proto.graph)
    for where in found:
        path = Path(where)
        if path.is_absolute() or ".." in path.parts:
            raise errors.ModelFormatError(
                f"{model.name} keeps weights in {where!r}, outside its own folder: save it with "
                "its external data next to it (onnx.save(..., location='model.onnx.data'))."
            )
        if not (model.parent / path).is_file():
            raise errors.ModelFormatError(
                f"{model.name} refers to external data {where!r}, which is not next to it: "
                "copy it there, or export the model again."
            )
    return found


def _target(out_dir: str | os.PathLike[str] | None, label: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-") or "model"
    out = Path(out_dir).expanduser() if out_dir is not None else config.home() / "ship" / slug
    if out.exists() and not out.is_dir():
        raise errors.ConfigError(f"{out} is a file; give a folder for the ship folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise errors.ConfigError(
            f"{out} is not empty and is no ship folder (no {MANIFEST}): give a new or empty "
            "folder; nothing was written.",
            cli=f"{out} is not empty and is no ship folder (no {MANIFEST}): give a new or empty "
            "folder to --bundle; nothing was written.",
        )
    return out


def _convert_to_ort(folder: Path, target_platform: str, timeout_s: float) -> None:
    _proc.run(
        [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            str(folder / "model.onnx"),
            "--output_dir",
            str(folder),
            "--optimization_style",
            "Fixed",
            "--target_platform",
            target_platform,
        ],
        what="ONNX Runtime's ORT-format converter",
        timeout=timeout_s,
    )
    config_file = folder / "model.required_operators.config"
    if config_file.is_file():  # the converter names the absolute paths of this machine: drop them
        text = config_file.read_text().replace(str(folder) + os.sep, "")
        config_file.write_text(text)


def _worst_case_inputs(app: AppModel, tokens: int) -> dict[str, np.ndarray]:
    """One row of ``tokens`` real tokens (the most the app reads per text)."""
    from tokenizers import Tokenizer

    from localml_kit import compare

    tok = Tokenizer.from_file(str(app.tokenizer))
    tok.no_padding()
    tok.enable_truncation(max_length=tokens)
    enc = tok.encode(" ".join(compare.corpus()))
    names = {spec.name for spec in app.ref.io.inputs}
    feeds = {
        "input_ids": np.array([enc.ids], dtype=np.int64),
        "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
    }
    return {k: v for k, v in feeds.items() if k in names}


def _memory(app: AppModel, model: Path, threads: int, batch: int, tokens: int) -> dict[str, float]:
    from localml_kit import profile

    plan = profile.Plan(
        {app.label: str(model)},
        providers=["cpu"],
        threads=[threads],
        batches=sorted({1, batch}),
        inputs=_worst_case_inputs(app, tokens),
        warmup=1,
        min_iterations=3,
        min_seconds=0,
        operator_profile=False,
    )
    table = profile.run(plan, progress=False).table
    ok = table[table["status"] == "ok"]
    if ok.empty:
        reason = "; ".join(str(e) for e in table["error"] if e)[:300]
        raise errors.ProfileRunError(
            f"the profiler could not measure {app.label}'s memory ({reason or 'no detail'}); "
            "bundle with memory=False to skip the budget."
        )
    worst = ok.sort_values("batch").iloc[-1]
    return {
        "batch": int(worst["batch"]),
        "tokens": tokens,
        "baseline_mb": round(float(worst["baseline_mb"]), 1),
        "session_mb": round(float(ok["session_mb"].max()), 1),
        "run_peak_mb": round(float(worst["run_peak_mb"]), 1),
        "run_peak_mb_batch1": round(float(ok.sort_values("batch").iloc[0]["run_peak_mb"]), 1),
        "budget_mb": round(float(worst["baseline_mb"] + worst["run_peak_mb"]), 1),
    }


def _license(app: AppModel, given: str | None) -> tuple[str, str]:
    if given:
        return given, "as given"
    if app.sample:
        sample = samples.get(app.sample)
        return sample.license, f"from the sample's card: {sample.title}"
    return "unknown", "unknown: read the model's card and licence before you ship it"


def bundle(
    model: Any = DEFAULT_MODEL,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    tokenizer: str | os.PathLike[str] | None = None,
    corpus: Sequence[str] | None = None,
    ort_format: bool = True,
    target_platform: str | None = None,
    memory: bool = True,
    threads: int = 1,
    max_texts: int = _app.Limits.max_texts,
    license: str | None = None,
    timeout_s: float = 600.0,
) -> ShipManifest:
    """Write a ship folder: the model, its tokenizer, the app, its requirements, a README, a manifest.

    The folder (default ``<kit home>/ship/<model label>``; a folder that holds an
    earlier bundle is replaced, any other non-empty one is refused) gets:
    ``model.onnx`` (and its external-data files), ``tokenizer.json``,
    ``corpus.txt`` (default ``compare.corpus()``), ``app.py`` (the app, needing
    only ``requirements.txt``), ``model.ort`` and ``model.required_operators.config``
    (``ort_format``: ONNX Runtime's ORT format and the operator list for a minimal or
    mobile build, made by ONNX Runtime's converter in a child process for
    ``target_platform`` ``amd64`` or ``arm``, default this machine's), ``README.md``
    and ``manifest.json`` (sizes and sha256 of every file, the memory budget, the
    licence, the checklist). It is built in a staging folder and renamed into
    place, so a failure leaves no half folder.

    ``memory`` measures the budget with the profiler (a fresh process): the
    session, and the run peak for ``max_texts`` texts of 128 tokens, the largest
    request the service accepts.

    Example (without the ORT converter and the profiler, which take a minute):
        >>> ship = bundle("all-minilm-l6-v2", "ship", ort_format=False, memory=False)
        >>> ship.folder.name, ship.model, ship.license, bool(ship.total_bytes > 50e6)
        ('ship', 'all-minilm-l6-v2', 'Apache-2.0', True)
        >>> sorted(p.name for p in ship.folder.iterdir())
        ['README.md', 'app.py', 'corpus.txt', 'manifest.json', 'model.onnx', 'requirements.txt', 'tokenizer.json']

    The whole bundle, as notebook 09 makes it (ORT format and operator list, memory
    budget)::

        ship = bundle(optimize.quantize_int8("all-minilm-l6-v2"), "ship-minilm")
        ship.memory["budget_mb"], ship.license      # (311.0, 'Apache-2.0')
    """
    import onnxruntime as ort

    started = time.perf_counter()
    app = app_model(model, tokenizer)
    if target_platform is None:
        arm = platform.machine().lower() in ("arm64", "aarch64", "armv8l")
        target_platform = "arm" if arm else "amd64"
    if target_platform not in ("amd64", "arm"):
        raise errors.ConfigError(f"target_platform {target_platform!r}: use 'amd64' or 'arm'.")
    if max_texts < 1 or threads < 1:
        raise errors.ConfigError("max_texts and threads must be >= 1.")
    reqs = requirements()
    data_files = _external_data(app.path)
    texts = _app._check_texts(list(corpus) if corpus is not None else _default_corpus())
    out = _target(out_dir, app.label)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        roles = {"model.onnx": "model (ONNX)"}
        shutil.copyfile(app.path, staging / "model.onnx")
        for where in data_files:
            (staging / where).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(app.path.parent / where, staging / where)
            roles[where] = "model's external data"
        shutil.copyfile(app.tokenizer, staging / "tokenizer.json")
        roles["tokenizer.json"] = "tokenizer"
        (staging / "corpus.txt").write_text(
            "".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8"
        )
        roles["corpus.txt"] = f"search corpus ({len(texts)} sentences)"
        shutil.copyfile(_app.__file__, staging / "app.py")
        roles["app.py"] = "the app: CLI and web service"
        (staging / "requirements.txt").write_text("\n".join(reqs) + "\n")
        roles["requirements.txt"] = "pip requirements (pinned)"
        if ort_format:
            _convert_to_ort(staging, target_platform, timeout_s)
            roles["model.ort"] = f"model (ORT format, {target_platform})"
            roles["model.required_operators.config"] = "operators for a minimal build"
        budget = _memory(app, staging / "model.onnx", threads, max_texts, 128) if memory else {}
        lic, lic_note = _license(app, license)
        checklist = _checklist(app, roles, reqs, lic, lic_note, budget, ort_format, max_texts)
        files = [
            ShippedFile(name, role, (staging / name).stat().st_size, _sha256(staging / name))
            for name, role in roles.items()
        ]
        manifest = ShipManifest(
            folder=out,
            model=app.label,
            files=tuple(files),
            requirements=tuple(reqs),
            license=lic,
            memory=budget,
            checklist=checklist,
            onnxruntime=ort.__version__,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            notes=(f"bundled in {time.perf_counter() - started:.1f} s",),
        )
        readme = _readme(manifest, target_platform, max_texts)
        (staging / "README.md").write_text(readme, encoding="utf-8")
        size = (staging / "README.md").stat().st_size
        readme_file = ShippedFile(
            "README.md", "how to run it", size, _sha256(staging / "README.md")
        )
        manifest = _with_file(manifest, readme_file)
        written = manifest.to_dict()
        written.pop("folder")  # where it lies is where it is read from, not this machine's path
        (staging / MANIFEST).write_text(json.dumps(written, indent=2) + "\n")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _default_corpus() -> list[str]:
    from localml_kit import compare

    return compare.corpus()


def _with_file(manifest: ShipManifest, extra: ShippedFile) -> ShipManifest:
    data = {k: getattr(manifest, k) for k in manifest.__dataclass_fields__}
    data["files"] = (*manifest.files, extra)
    return ShipManifest(**data)


def _replace(staging: Path, out: Path) -> None:
    """Put the staging folder where ``out`` is; an earlier bundle there goes away."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _checklist(
    app: AppModel,
    roles: dict[str, str],
    reqs: list[str],
    lic: str,
    lic_note: str,
    budget: dict[str, float],
    ort_format: bool,
    max_texts: int,
) -> tuple[ChecklistItem, ...]:
    data = [n for n, r in roles.items() if r == "model's external data"]
    if app.method is not None:
        checked, check_detail = app.checked, f"{app.label}: {app.check_note}"
    elif app.sample:
        checked = True
        check_detail = "the sample itself; its export was checked against PyTorch when built"
    else:
        checked, check_detail = None, "not checked: compare it with its source (compare.outputs)"
    limits = _app.Limits(max_texts=max_texts)
    return (
        ChecklistItem(
            "model and its external data",
            True,
            "model.onnx" + (f" + {', '.join(data)}" if data else " (no external data)"),
        ),
        ChecklistItem("tokenizer", True, "tokenizer.json (the model's own)"),
        ChecklistItem(
            "ORT format for minimal and mobile builds",
            True if ort_format else None,
            "model.ort + model.required_operators.config"
            if ort_format
            else "skipped (ort_format=False)",
        ),
        ChecklistItem("requirements pinned", True, ", ".join(reqs)),
        ChecklistItem("licence known", lic != "unknown", f"{lic} ({lic_note})"),
        ChecklistItem("accuracy checked against the original", checked, check_detail),
        ChecklistItem(
            "memory budget measured",
            bool(budget) or None,
            (
                f"{budget['budget_mb']:.0f} MB for {budget['batch']} texts x {budget['tokens']} "
                f"tokens (session {budget['session_mb']:.0f} MB, run peak "
                f"{budget['run_peak_mb']:.0f} MB above a {budget['baseline_mb']:.0f} MB Python)"
            )
            if budget
            else "not measured (memory=False)",
        ),
        ChecklistItem(
            "requests bounded",
            True,
            f"at most {limits.max_texts} texts of {limits.max_chars:,} characters (128 tokens "
            f"read), k <= {limits.max_k}, bodies <= {limits.max_body_bytes // 1024} KiB",
        ),
        ChecklistItem(
            "data stays on the device",
            True,
            "listens on 127.0.0.1 only; the app opens no network connection of its own",
        ),
        ChecklistItem("every file hashed", True, "sha256 of each file in manifest.json"),
    )


def _readme(m: ShipManifest, target_platform: str, max_texts: int) -> str:
    files = "\n".join(
        f"| `{f.name}` | {f.role} | {f.size_bytes / 1e6:,.2f} MB | `{f.sha256[:16]}...` |"
        for f in m.files
    )
    ticks = "\n".join(f"- [{'x' if c.done else ' '}] **{c.item}**: {c.detail}" for c in m.checklist)
    budget = (
        f"Measured with localml-kit's profiler (ONNX Runtime {m.onnxruntime}, CPU, a fresh "
        f"process) for the largest request the service accepts ({m.memory['batch']} texts of "
        f"{m.memory['tokens']} tokens): Python with ONNX Runtime {m.memory['baseline_mb']:.0f} MB, "
        f"the session {m.memory['session_mb']:.0f} MB, the run peak "
        f"{m.memory['run_peak_mb']:.0f} MB above Python (one text: "
        f"{m.memory['run_peak_mb_batch1']:.0f} MB). Plan for about "
        f"**{m.memory['budget_mb']:.0f} MB** per service process, plus the web server."
        if m.memory
        else "Not measured (bundled with memory=False)."
    )
    return f"""# {m.model}: sentence embeddings and semantic search, run locally

Made by localml-kit on {m.created}. Licence of the model: **{m.license}**.

## Run it

```bash
python -m venv .venv && . .venv/bin/activate
pip install -r requirements.txt
python app.py search "How do I keep my data private?" -k 3
python app.py embed "first text" "second text"          # one JSON line per text
python app.py serve --port 8000                         # listens on 127.0.0.1 only
```

The service:

| request | body | answer |
|---|---|---|
| `POST /embed` | `{{"texts": ["...", ...]}}` (at most {max_texts}) | `{{"model", "dim", "vectors": [[...]], "ms"}}`: unit-length vectors |
| `POST /search` | `{{"query": "...", "k": 5}}` | `{{"query", "hits": [{{"rank", "index", "score", "text"}}], "ms"}}` |
| `GET /health` | | model, dim, corpus size, limits, pid |

A bad request gets a 400 (413 when too large) with `{{"error": "..."}}`. To serve
other sentences, replace `corpus.txt` (one a line). To reach it from other
machines, put a reverse proxy in front of it: it never listens beyond 127.0.0.1.

## What is inside

| file | role | size | sha256 |
|---|---|---|---|
{files}

`manifest.json` holds the full sha256 of every file. `model.ort` is the same
model in ONNX Runtime's ORT format, optimized for {target_platform} (bundle with
`target_platform="arm"` for ARM phones and boards), for the minimal and mobile
builds of ONNX Runtime: `python app.py --model model.ort ...` runs it with the
full package too; `model.required_operators.config` lists the
operators to build a minimal ONNX Runtime with (`--include_ops_by_config`).

## Memory budget

{budget}

## Checklist

{ticks}

## Privacy

Inference runs on the machine the app runs on: the texts sent to it, their
vectors and the corpus never leave it. The app has no telemetry and opens no
network connection of its own; it listens on 127.0.0.1, so only programs on the
same machine can reach it.
"""
