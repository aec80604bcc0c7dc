"""All network access of the kit goes through here.

Every download honours the offline switch (``LOCALML_OFFLINE`` / ``HF_HUB_OFFLINE``),
checks the sha256 of what arrives before anything uses it, keeps verified files
in the downloads cache, and reuses that cache first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import filelock

from localml_kit import _proc, config, errors

_CHUNK = 1 << 20


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face Hub repository, pinned by its sha256."""

    repo: str
    filename: str
    dest: str
    sha256: str
    revision: str = "main"


def _index_args() -> list[str]:
    """pip's arguments for the configured package index (none when pip's own settings apply)."""
    index = config.pip_index_url()
    if not index:
        return []
    args = ["--index-url", index]
    host = urlparse(index).hostname
    return [*args, "--trusted-host", host] if host else args


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _cached(path: Path, sha256: str) -> bool:
    """True when path holds the expected bytes; a corrupt or partial file is removed."""
    if not path.is_file():
        return False
    if sha256_file(path) == sha256:
        return True
    path.unlink()
    return False


def _offline_error(what: str) -> errors.OfflineError:
    return errors.OfflineError(
        f"{what} is not in the cache ({config.downloads_dir()}) and offline mode is on "
        "(LOCALML_OFFLINE / HF_HUB_OFFLINE). Unset it and run "
        "`localml-kit samples fetch --all` once with network."
    )


def pip_wheel(requirement: str, filename: str, sha256: str) -> Path:
    """A verified wheel from the package index (``pip download --no-deps``), cached.

    Usage::

        pip_wheel("rapidocr-onnxruntime==1.4.4",
                  "rapidocr_onnxruntime-1.4.4-py3-none-any.whl", "971d...")

    Offline, only the cache answers:

        >>> os.environ["LOCALML_HOME"] = "kit"  # a new, empty cache here
        >>> os.environ["LOCALML_OFFLINE"] = "1"
        >>> pip_wheel("tiny==0.1", "tiny-0.1-py3-none-any.whl", "0" * 64)
        Traceback (most recent call last):
        localml_kit.errors.OfflineError: tiny-0.1-py3-none-any.whl is not in the cache (...) and offline mode is on ...
    """
    downloads = config.downloads_dir()
    downloads.mkdir(parents=True, exist_ok=True)
    cached = downloads / filename
    if _cached(cached, sha256):
        return cached
    if config.is_offline():
        raise _offline_error(filename)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--timeout",
        "30",
        "--retries",
        "2",
        "-q",
        "-d",
        "DEST",
        requirement,
    ]
    cmd += _index_args()
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".pip-") as tmp:
        cmd[cmd.index("DEST")] = tmp
        try:
            proc = _proc.run(cmd, what=f"pip download {requirement}", timeout=600, check=False)
        except errors.ChildTimeoutError as exc:
            raise errors.DownloadError(
                f"pip download {requirement} did not finish in 10 minutes; "
                "check the network or the package index (LOCALML_PIP_INDEX_URL)."
            ) from exc
        if proc.returncode != 0:
            lines = [
                ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if "ERROR" in ln
            ]
            detail = " ".join(lines[-2:]) or f"pip exited with {proc.returncode}"
            raise errors.DownloadError(
                f"could not download {requirement} from the package index: {detail} "
                "Check the network, or point LOCALML_PIP_INDEX_URL at an index that has it."
            )
        _keep_verified(Path(tmp), filename, sha256, f"pip download {requirement}", cached)
    return cached


def _keep_verified(folder: Path, filename: str, sha256: str, what: str, cached: Path) -> None:
    """Move ``folder/filename`` to ``cached`` once its sha256 is the pinned one."""
    path = folder / filename
    if not path.is_file():
        found = ", ".join(p.name for p in folder.iterdir()) or "nothing"
        raise errors.DownloadError(f"{what} gave {found}, not {filename}.")
    actual = sha256_file(path)
    if actual != sha256:
        raise errors.ChecksumError(f"{filename} (from {what})", sha256, actual)
    os.replace(path, cached)


def hub_endpoint() -> str:
    """The Hub's base URL: ``HF_ENDPOINT``, read at call time, or the public Hub."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def _reachable(url: str, timeout: float = 5.0) -> str | None:
    """None when a TCP connection to the URL's host opens within the timeout, else why not.

    The Hub client retries a refused connection for about 30 s; this answers in
    at most ``timeout`` seconds so that an unreachable Hub never looks like a hang.
    """
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{parsed.hostname}:{port} unreachable ({exc.strerror or type(exc).__name__})"


def hub_file(file: HubFile) -> Path:
    """A verified file from the Hugging Face Hub (``HF_ENDPOINT`` is honoured), cached.

    Usage::

        hub_file(HubFile("sentence-transformers/all-MiniLM-L6-v2", "config.json",
                         "config.json", "953f..."))

    Offline, only the cache answers:

        >>> os.environ["LOCALML_HOME"] = "kit"  # a new, empty cache here
        >>> os.environ["LOCALML_OFFLINE"] = "1"
        >>> hub_file(HubFile("me/tiny", "config.json", "config.json", "0" * 64))
        Traceback (most recent call last):
        localml_kit.errors.OfflineError: me/tiny/config.json is not in the cache (...) and offline mode is on ...
    """
    downloads = config.downloads_dir() / "hub"
    downloads.mkdir(parents=True, exist_ok=True)
    cached = downloads / f"{file.sha256[:16]}-{Path(file.filename).name}"
    if _cached(cached, file.sha256):
        return cached
    label = f"{file.repo}/{file.filename}"
    if config.is_offline():
        raise _offline_error(label)
    endpoint = hub_endpoint()
    problem = _reachable(endpoint)
    if problem:
        raise errors.DownloadError(
            f"could not download {label} from the Hub: {problem}. Check the network or HF_ENDPOINT."
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    with tempfile.TemporaryDirectory(dir=downloads, prefix=".hub-") as tmp:
        try:
            got = Path(
                hf_hub_download(
                    file.repo,
                    file.filename,
                    revision=file.revision,
                    local_dir=tmp,
                    etag_timeout=10,
                    endpoint=endpoint,
                )
            )
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
            raise errors.DownloadError(
                f"could not download {label} from the Hub: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''} Check the network or HF_ENDPOINT."
            ) from exc
        actual = sha256_file(got)
        if actual != file.sha256:
            raise errors.ChecksumError(f"{label} (from the Hub)", file.sha256, actual)
        shutil.move(str(got), cached)
    return cached


def pip_install(
    python: str | os.PathLike[str], requirements: list[str], *, timeout: float = 1800
) -> None:
    """Install packages into another Python environment with its own pip.

    Honours the offline switch and ``LOCALML_PIP_INDEX_URL`` like the sample
    downloads; pip's own configuration (certificates, proxies) applies too.

    Usage::

        pip_install("/home/me/.cache/localml-kit/envs/openvino/bin/python",
                    ["onnxruntime-openvino==1.24.1"])

    Offline, it refuses at once:

        >>> os.environ["LOCALML_OFFLINE"] = "1"
        >>> pip_install(sys.executable, ["onnxruntime-openvino==1.24.1"])
        Traceback (most recent call last):
        localml_kit.errors.OfflineError: installing onnxruntime-openvino==1.24.1 needs the package index, and offline mode is on ...
    """
    label = " ".join(requirements)
    if config.is_offline():
        raise errors.OfflineError(
            f"installing {label} needs the package index, and offline mode is on "
            "(LOCALML_OFFLINE / HF_HUB_OFFLINE). Unset it and try again with network."
        )
    cmd = [
        os.fspath(python),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--timeout",
        "30",
        "--retries",
        "2",
        "-q",
        *requirements,
    ]
    cmd += _index_args()
    try:
        proc = _proc.run(cmd, what=f"pip install {label}", timeout=timeout, check=False)
    except errors.ChildTimeoutError as exc:
        raise errors.DownloadError(
            f"pip install {label} did not finish in {timeout:.0f} s; check the network "
            "or the package index (LOCALML_PIP_INDEX_URL)."
        ) from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if "ERROR" in ln]
        detail = " ".join(lines[-2:]) or f"pip exited with {proc.returncode}"
        raise errors.DownloadError(
            f"could not install {label} from the package index: {detail} "
            "Check the network, or point LOCALML_PIP_INDEX_URL at an index that has it."
        )


def npm_pack(spec: str, filename: str, sha256: str, *, timeout: float = 600) -> Path:
    """A verified npm package tarball (``npm pack NAME@VERSION``), cached in the downloads folder.

    npm's own configuration (registry, proxy, certificates) applies; the offline
    switch is honoured. A missing ``npm`` raises
    :class:`~localml_kit.errors.BuildDependencyError` saying to install Node.js.

    Usage (it runs npm against the registry)::

        npm_pack("onnxruntime-web@1.30.0", "onnxruntime-web-1.30.0.tgz", "d222...")
    """
    downloads = config.downloads_dir()
    downloads.mkdir(parents=True, exist_ok=True)
    cached = downloads / filename
    if _cached(cached, sha256):
        return cached
    if config.is_offline():
        raise _offline_error(filename)
    npm = shutil.which("npm")
    if npm is None:
        raise errors.BuildDependencyError(
            f"npm is not installed, so {spec} cannot be fetched: install Node.js (it brings "
            "npm), then run `make samples` (or `python -m localml_kit.engines setup`)."
        )
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".npm-") as tmp:
        cmd = [npm, "pack", spec, "--pack-destination", tmp, "--silent", "--no-fund"]
        try:
            proc = _proc.run(cmd, what=f"npm pack {spec}", timeout=timeout, check=False)
        except errors.ChildTimeoutError as exc:
            raise errors.DownloadError(
                f"npm pack {spec} did not finish in {timeout:.0f} s; check the network or "
                "npm's registry setting (`npm config get registry`)."
            ) from exc
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
            detail = " ".join(lines[-2:]) or f"npm exited with {proc.returncode}"
            raise errors.DownloadError(
                f"could not fetch {spec} from the npm registry: {detail} Check the network, "
                "or npm's registry setting (`npm config get registry`)."
            )
        _keep_verified(Path(tmp), filename, sha256, f"npm pack {spec}", cached)
    return cached


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package and the members kept from it (member path -> name kept as)."""

    name: str
    version: str
    sha256: str
    members: tuple[tuple[str, str], ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


NPM_MANIFEST = "manifest.json"


def npm_files_ready(target: Path, packages: tuple[NpmPackage, ...]) -> bool:
    """True when ``target`` holds every member kept from ``packages`` at its recorded size."""
    try:
        manifest = json.loads((target / NPM_MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = manifest.get("files", {})
    wanted = {name for package in packages for _, name in package.members}
    return set(files) == wanted and all(
        (target / name).is_file() and (target / name).stat().st_size == int(entry["size"])
        for name, entry in files.items()
    )


def npm_files(
    target: Path, packages: tuple[NpmPackage, ...], *, lock: str, force: bool = False
) -> Path:
    """Fetch ``packages`` with ``npm pack`` (once, verified) and keep their members in ``target``.

    The folder appears complete or not at all (a staging folder, a manifest of
    sizes and sha256s, one rename); ``lock`` names the file lock under the kit's
    home that keeps two processes from unpacking at once. Returns ``target``.
    """
    if npm_files_ready(target, packages) and not force:
        return target
    locks = config.home() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(locks / f"{lock}.lock"), timeout=1800):
        if npm_files_ready(target, packages) and not force:
            return target
        tarballs = [npm_pack(p.spec, p.tarball, p.sha256) for p in packages]
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".npm-files-"))
        try:
            files: dict[str, dict[str, object]] = {}
            for package, tarball in zip(packages, tarballs, strict=True):
                with tarfile.open(tarball, "r:gz") as archive:
                    for member, name in package.members:
                        _extract_member(archive, package, member, staging / name)
                        files[name] = {
                            "size": (staging / name).stat().st_size,
                            "sha256": sha256_file(staging / name),
                        }
            manifest = {
                "packages": {p.spec: p.sha256 for p in packages},
                "files": files,
            }
            (staging / NPM_MANIFEST).write_text(json.dumps(manifest, indent=2))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _extract_member(archive: tarfile.TarFile, package: NpmPackage, member: str, dest: Path) -> None:
    try:
        info = archive.getmember(member)
    except KeyError as exc:
        raise errors.EnvironmentCreateError(
            f"{package.tarball} has no {member.removeprefix('package/')}: the package changed "
            "shape; pin the version the kit knows."
        ) from exc
    source = archive.extractfile(info)
    if source is None or not info.isfile():
        raise errors.UnsafeArchiveError(f"{package.tarball}: {member} is not a file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source, dest.open("wb") as out:
        shutil.copyfileobj(source, out)
