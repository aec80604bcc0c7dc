"""Run a plan on the machines of a Dask cluster: one row per configuration per machine.

The client (this process) makes the inputs once, asks every chosen worker for its
hardware report and whether it already has each model file, sends the files a
worker lacks (once per worker; the worker keeps them under its kit home, by
sha256), then hands each machine one configuration at a time. On the worker the
configuration is measured exactly as on this machine: in a fresh process started
through :mod:`localml_kit._proc`, with the worker's own ONNX Runtime or provider
environment. A machine that leaves the cluster during a configuration gives a
``lost`` row; its remaining configurations wait for a worker of the same name to
come back (a nanny restarts a killed worker) and are ``lost`` too if none does.

Routing: a worker advertises the providers it serves as Dask resources
(``dask worker ADDRESS --resources "CPU=1 OPENVINO=1"``, see :func:`worker_resources`);
a configuration goes only to the machines that advertise its provider, and its
task asks the scheduler for that resource. A worker that advertises no provider
at all is taken to serve the CPU provider only.

The functions whose names start with ``_on_worker`` run inside the Dask workers
(they need localml-kit installed there, with the ``fleet`` extra).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from localml_kit import __version__ as KIT_VERSION
from localml_kit import _download, config, engines, envs, errors, models, providers
from localml_kit.profile._plan import Configuration, Plan
from localml_kit.profile._result import ProfileResult, ProfileRow, frame

ROW_FIELDS = tuple(f.name for f in dataclasses.fields(ProfileRow))

POLL_S = 0.2
# Configurations handed to one machine at once: one measuring, the next waiting behind it (the
# scheduler's resources and the worker's lock keep them apart), so no dispatch gap between them.
IN_FLIGHT = 2
REJOIN_S = 30.0
STOP_CHECK_S = 0.5
# One configuration at a time in one worker process, even when two clients share the worker.
_MACHINE_LOCK = threading.Lock()


def resource_name(provider: str) -> str:
    """The Dask resource a worker advertises for a provider: its short name in capitals.

    Example:
        >>> resource_name("OpenVINOExecutionProvider"), resource_name("cuda")
        ('OPENVINO', 'CUDA')
    """
    return providers.short_name(providers.resolve(provider)).upper()


def worker_resources() -> dict[str, int]:
    """The resources a worker on this machine should advertise: one per provider it serves.

    The providers of this Python's ONNX Runtime and of every ready provider
    environment (:mod:`localml_kit.envs`), and the engines that can run here (``TRACT``,
    ``ONNXRUNTIME-WEB``), as ``{"CPU": 1, "OPENVINO": 1, ...}``.
    ``dask worker ADDRESS --resources "CPU=1 OPENVINO=1"`` advertises them.

    Example:
        >>> worker_resources()["CPU"]
        1
    """
    offered = list(providers.available())
    table = envs.list()
    for text in table.loc[table["ready"], "providers"]:
        offered += [p.strip() for p in str(text).split(",") if p.strip()]
    offered += [e for e in providers.ENGINES if engines.status(e).available]
    skip = {"AzureExecutionProvider"}
    return {resource_name(p): 1 for p in dict.fromkeys(offered) if p not in skip}


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise errors.OptionalDependencyError(
            'profiling on a cluster needs Dask: pip install "localml-kit[fleet]" '
            "(or distributed), here and on every worker."
        ) from exc
    return distributed


def local_cluster(
    workers: int | Mapping[str, Mapping[str, Any]] = 2,
    *,
    threads: int = 1,
    resources: Mapping[str, int] | None = None,
) -> Any:
    """A Dask cluster of worker processes on this machine, bound to 127.0.0.1; close it after.

    ``workers`` is a count (workers named ``worker-0``, ``worker-1``...) or
    ``{name: options}`` with ``resources`` (the providers the worker advertises,
    default :func:`worker_resources`), ``threads`` (its Dask threads) and ``env``
    (extra environment variables). Each worker process dies with this one.
    ``profile.run(plan, cluster=cluster)`` takes it as it takes a scheduler's address.

    Example:
        >>> from localml_kit import profile
        >>> cluster = profile.local_cluster({"a": {"resources": {"CPU": 1}}, "b": {}})
        >>> sorted(profile.machines(cluster))
        ['a', 'b']
        >>> cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        True
        >>> cluster.close()
    """
    distributed = _distributed()
    specs = (
        {f"worker-{i}": {} for i in range(int(workers))}
        if isinstance(workers, int)
        else {str(k): dict(v) for k, v in workers.items()}
    )
    if not specs:
        raise errors.ConfigError("a local cluster needs at least one worker.")
    default = dict(resources) if resources is not None else worker_resources()
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    worker_specs = {}
    for name, opts in specs.items():
        unknown = set(opts) - {"resources", "threads", "env"}
        if unknown:
            raise errors.ConfigError(
                f"worker {name!r}: unknown options {sorted(unknown)}; use resources, threads, env."
            )
        worker_specs[name] = {
            "cls": distributed.Nanny,
            "options": {
                "nthreads": int(opts.get("threads", threads)),
                "host": "127.0.0.1",
                "resources": dict(opts.get("resources", default)),
                "env": {"PYTHONPATH": path, **dict(opts.get("env", {}))},
                "dashboard": False,
                "preload": ["localml_kit.profile._preload"],
                "silence_logs": 40,
            },
        }
    with _quiet_dask():
        return distributed.SpecCluster(
            scheduler={
                "cls": distributed.Scheduler,
                "options": {"host": "127.0.0.1", "dashboard": False},
            },
            workers=worker_specs,
            silence_logs=40,
        )


@contextlib.contextmanager
def _quiet_dask() -> Any:
    """Dask's informational log lines (every worker's start and stop) kept out of notebooks."""
    import logging

    loggers = [logging.getLogger(n) for n in ("distributed", "distributed.scheduler")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _address(cluster: Any) -> str | None:
    if isinstance(cluster, str | os.PathLike):
        text = os.fspath(cluster).strip()
        if "://" not in text:
            text = f"tcp://{text}"
        scheme, _, rest = text.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in {"tcp", "tls", "inproc", "ws", "wss"} or not host or not port.isdigit():
            raise errors.ConfigError(
                f"cluster {os.fspath(cluster)!r} is not a scheduler address; "
                "use tcp://HOST:PORT (a `dask scheduler` prints its own, default port 8786).",
                cli=f"--cluster {os.fspath(cluster)!r} is not a scheduler address; "
                "use --cluster tcp://HOST:PORT (a `dask scheduler` prints its own).",
            )
        return text
    return getattr(cluster, "scheduler_address", None)


def connect(cluster: Any, timeout_s: float = 10.0) -> tuple[Any, bool]:
    """(a Dask client, whether this call made it): from a client, a cluster or an address.

    A scheduler that cannot be reached within ``timeout_s`` raises
    :class:`~localml_kit.errors.ClusterError` saying what to check.
    """
    distributed = _distributed()
    if isinstance(cluster, distributed.Client):
        return cluster, False
    address = _address(cluster)
    if address is None:
        raise errors.ConfigError(
            f"cluster={type(cluster).__name__}: give a dask.distributed Client, a cluster "
            "(LocalCluster, profile.local_cluster()) or a scheduler address tcp://HOST:PORT."
        )
    try:
        with _quiet_dask():
            client = distributed.Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise errors.ClusterError(
            f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
            f"({type(exc).__name__}). Check the address and that `dask scheduler` runs there "
            "and that its port is open to this machine.",
            cli=f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s. "
            "Check --cluster and that `dask scheduler` runs there.",
        ) from exc
    return client, True


def _workers(client: Any) -> dict[str, dict[str, Any]]:
    """``{address: worker info}`` of every worker connected now."""
    info = client.scheduler_info(n_workers=-1)
    return dict(info.get("workers", {}))


def machines(cluster: Any, timeout_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """The cluster's machines now: ``{name: {"address", "resources", "threads"}}``.

    A machine is one Dask worker, named by its ``--name`` (else its address).
    ``cluster`` is what :func:`localml_kit.profile.run` takes (a client, a
    cluster, an address); the docstring of :func:`local_cluster` shows one.

    Example:
        >>> machines("tcp://127.0.0.1:9", timeout_s=1)
        Traceback (most recent call last):
        localml_kit.errors.ClusterError: cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s ...
    """
    client, own = connect(cluster, timeout_s)
    try:
        return {
            str(w.get("name", addr)): {
                "address": addr,
                "resources": dict(w.get("resources") or {}),
                "threads": int(w.get("nthreads", 1)),
            }
            for addr, w in _workers(client).items()
        }
    finally:
        if own:
            client.close()


def _choose(found: Mapping[str, Mapping[str, Any]], wanted: str | Sequence[str]) -> list[str]:
    if isinstance(wanted, str):
        if wanted != "all":
            wanted = [w.strip() for w in wanted.split(",") if w.strip()]
        else:
            if not found:
                raise errors.ClusterError(
                    "the cluster has no workers; start one per machine with "
                    "`dask worker tcp://SCHEDULER:8786 --name NAME --resources CPU=1`."
                )
            return sorted(found)
    chosen: list[str] = []
    missing: list[str] = []
    by_address = {str(m["address"]): name for name, m in found.items()}
    for item in wanted:
        name = item if item in found else by_address.get(item)
        (chosen if name is not None else missing).append(name or item)
    if missing or not chosen:
        raise errors.ConfigError(
            f"machines {missing or list(wanted)} are not in the cluster; it has "
            f"{', '.join(sorted(found)) or 'no workers'}. Use machines='all' or those names.",
            cli=f"--machines {','.join(missing or list(wanted))}: not in the cluster; it has "
            f"{', '.join(sorted(found)) or 'no workers'}. Use --machines all or those names.",
        )
    return list(dict.fromkeys(chosen))


def _advertised(resources: Mapping[str, Any]) -> set[str]:
    """The provider resources a worker advertises (the CPU provider when it names none)."""
    known = {resource_name(p) for p in providers.known() if not providers.is_engine(p)}
    known |= {resource_name(p) for p in providers.ENGINES}
    have = {k for k, v in resources.items() if k in known and float(v) >= 1}
    return have or {"CPU"}


# --- the model files ------------------------------------------------------------------------


def _model_spec(ref: models.ModelRef) -> dict[str, Any]:
    """The model's file and its external-data files: names (relative), sizes, sha256."""
    from localml_kit.graph._netron import served_files

    files = []
    for name, path in served_files(ref.path).items():
        files.append(
            {"name": name, "size": path.stat().st_size, "sha256": _download.sha256_file(path)}
        )
    main = files[0]
    return {
        "path": str(ref.path.absolute()),  # "the same path" on another machine: the absolute one
        "name": ref.path.name,
        "sha256": main["sha256"],
        "files": files,
    }


def _cache_folder(spec: Mapping[str, Any]) -> Path:
    return config.home() / "fleet" / "models" / str(spec["sha256"])


def _same_files(folder: Path, spec: Mapping[str, Any], *, check_sha: bool) -> bool:
    for entry in spec["files"]:
        path = folder / entry["name"]
        try:
            if path.stat().st_size != entry["size"]:
                return False
        except OSError:
            return False
        if check_sha and _download.sha256_file(path) != entry["sha256"]:
            return False
    return True


def _local_model(spec: Mapping[str, Any]) -> str | None:
    """Where this worker has the model: the same path with the same bytes, else its cache."""
    given = Path(spec["path"])
    # The external-data names are relative to the model's folder, as the model's own name is.
    if given.is_file() and _same_files(given.parent, spec, check_sha=True):
        return str(given)
    cached = _cache_folder(spec)
    if _same_files(cached, spec, check_sha=False):
        return str(cached / spec["name"])
    return None


def _on_worker_probe(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """On a worker: its hardware report and, per model, where it has it (None: send it)."""
    from localml_kit import hardware
    from localml_kit.profile import _runner

    rep = hardware.report()
    offered = list(rep.providers)
    ready = envs.list()
    for text in ready.loc[ready["ready"], "providers"]:
        offered += [p.strip() for p in str(text).split(",") if p.strip()]
    return {
        "machine": {
            "host": socket.gethostname(),
            **_runner._machine(rep),
            "providers": list(dict.fromkeys(offered)),
            "localml_kit": KIT_VERSION,
        },
        "models": {label: _local_model(spec) for label, spec in specs.items()},
    }


def _on_worker_receive(spec: Mapping[str, Any], blobs: Mapping[str, bytes]) -> str:
    """On a worker: keep a model's files under its kit home, by sha256; the model's path there."""
    folder = _cache_folder(spec)
    if _same_files(folder, spec, check_sha=False):
        return str(folder / spec["name"])
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for entry in spec["files"]:
            target = staging / entry["name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blobs[entry["name"]])
            got = _download.sha256_file(target)
            if got != entry["sha256"]:
                raise errors.ChecksumError(str(target), entry["sha256"], got)
        with contextlib.suppress(OSError):
            staging.rename(folder)  # another client may have put it there first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(folder / spec["name"])


# --- one configuration on a worker ----------------------------------------------------------


class _ClusterStop:
    """A stop flag the client sets through a Dask Event; read at most every 0.5 s."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._event: Any = None
        self._next = 0.0
        self._set = False

    def is_set(self) -> bool:
        if self._set or time.monotonic() < self._next:
            return self._set
        self._next = time.monotonic() + STOP_CHECK_S
        with contextlib.suppress(Exception):  # the scheduler gone: the worker goes too
            if self._event is None:
                self._event = _distributed().Event(self._name)
            self._set = bool(self._event.is_set())
        return self._set


def _python_here(provider: str, create_envs: bool) -> tuple[str, str] | str:
    """(python, environment) on this worker for ``provider``, or why it has none."""
    if providers.is_engine(provider) or provider in providers.available():
        return sys.executable, "main"
    env = envs.find(provider)
    if env is not None:
        return env.python, env.name
    recipe = next((r for r in envs.RECIPES.values() if provider in r.providers), None)
    if recipe is None:
        return (
            f"{provider} is not offered on this machine and the kit has no environment recipe "
            "for it; install its onnxruntime package there."
        )
    if not create_envs:
        return (
            f"{provider} needs the provider environment {recipe.name!r}, which this machine does "
            f"not have. Run `localml-kit envs create {recipe.name}` there, or pass "
            "create_envs=True (--create-envs) to create it on demand."
        )
    try:
        env = envs.create(recipe.name)
    except errors.LocalMLError as exc:
        return f"creating the provider environment {recipe.name!r} on this machine failed: {exc}"
    return env.python, env.name


def _on_worker_measure(
    job: Mapping[str, Any],
    model_path: str,
    npz: bytes,
    stop_name: str,
    create_envs: bool,
) -> dict[str, Any]:
    """On a worker: measure one configuration in a fresh process; its row as a dict."""
    from localml_kit.profile import _runner

    cfg = Configuration.from_dict(job)
    stop = _ClusterStop(stop_name)
    with tempfile.TemporaryDirectory(prefix="localml-fleet-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs.npz"
        inputs.write_bytes(npz)  # made ready while the configuration before it still runs
        with _MACHINE_LOCK:
            where = _python_here(cfg.provider, create_envs)
            if isinstance(where, str):
                cfg = dataclasses.replace(cfg, model_path=model_path, python=sys.executable)
                return _runner._row(cfg, {"status": "unavailable", "error": where}, None).to_dict()
            python, environment = where
            cfg = dataclasses.replace(
                cfg, model_path=model_path, python=python, environment=environment
            )
            if stop.is_set():
                res: dict[str, Any] = {"status": "stopped", "error": "stopped before it ran"}
            else:
                try:
                    ref = models.resolve(model_path)
                    res = _runner.measure(cfg, ref, inputs, work, stop, {})
                except errors.LocalMLError as exc:
                    res = {"status": "error", "error": str(exc)}
        return _runner._row(cfg, res, None).to_dict()


# --- the client side ------------------------------------------------------------------------


@dataclasses.dataclass
class _Machine:
    name: str
    address: str
    advertised: set[str]
    queue: list[Configuration]
    ready: bool = False
    # (future, the configuration as planned, as sent): at most IN_FLIGHT, run one at a time there.
    inflight: list[tuple[Any, Configuration, Configuration]] = dataclasses.field(
        default_factory=list
    )
    gone_since: float | None = None


def _placeholder(cfg: Configuration, status: str, error: str, machine: str) -> ProfileRow:
    from localml_kit.profile import _runner

    row = _runner._row(cfg, {"status": status, "error": error}, None)
    row.machine = machine
    return row


class _FleetRun:
    """One plan on a cluster: each machine's queue, what it has in flight, and the rows so far.

    :func:`run` sets it up and calls :meth:`tick` until no machine has work left.
    """

    def __init__(
        self,
        client: Any,
        configs: list[Configuration],
        found: dict[str, dict[str, Any]],
        chosen: list[str],
        specs: dict[str, dict[str, Any]],
        feeds: dict[tuple[str, int | None], Any],
        npz: dict[tuple[str, int | None], bytes],
        *,
        stop_name: str,
        create_envs: bool,
        on_result: Callable[[dict[str, Any], int, int], None] | None,
        bar: Any,
        rejoin_s: float,
    ) -> None:
        self.client, self.found, self.specs = client, found, specs
        self.feeds, self.npz = feeds, npz
        self.stop_name, self.create_envs, self.on_result = stop_name, create_envs, on_result
        self.bar, self.rejoin_s = bar, rejoin_s
        self.total = len(configs) * len(chosen)
        self.records: list[ProfileRow] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.local_paths: dict[tuple[str, str], str] = {}
        self.wake = threading.Event()
        self.stopped = False
        self.fleet: list[_Machine] = []
        for name in chosen:
            m = _Machine(
                name, str(found[name]["address"]), _advertised(found[name]["resources"]), []
            )
            for cfg in configs:
                if resource_name(cfg.provider) in m.advertised:
                    m.queue.append(cfg)
                else:
                    self.finish(
                        _placeholder(
                            cfg,
                            "unavailable",
                            f"machine {name} does not advertise {resource_name(cfg.provider)} "
                            f"(it advertises {', '.join(sorted(m.advertised))}); start its worker "
                            f"with --resources {resource_name(cfg.provider)}=1 where that "
                            "provider is installed.",
                            name,
                        ),
                        cfg,
                    )
            self.fleet.append(m)

    @property
    def busy(self) -> bool:
        return any(m.queue or m.inflight for m in self.fleet)

    def finish(self, row: ProfileRow, planned: Configuration) -> None:
        """Record one row (with what its inputs were) and report it."""
        made = self.feeds[(planned.model, planned.batch)][1]
        if made is not None:
            row.inputs, row.input_shapes = made.source, made.shapes_text()
            row.dims, row.input_notes = made.dims_text(), "; ".join(made.notes)
        self.records.append(row)
        self.bar.set_postfix_str(f"{row.label} @ {row.machine}", refresh=False)
        self.bar.update(1)
        if self.on_result is not None:
            self.on_result(row.to_dict(), len(self.records), self.total)

    def finish_queue(self, m: _Machine, status: str, error: str) -> None:
        """Every configuration still queued on ``m`` ends with ``status``."""
        for cfg in m.queue:
            self.finish(_placeholder(cfg, status, error, m.name), cfg)
        m.queue = []

    def prepare(self, m: _Machine) -> str | None:
        """Probe a worker and send it the model files it lacks; why it cannot run, or None."""
        try:
            probe = self.client.run(_on_worker_probe, self.specs, workers=[m.address])[m.address]
        except Exception as exc:  # whatever the worker raised, or could not unpickle
            return (
                f"the worker at {m.address} could not answer ({type(exc).__name__}: {exc}); "
                "install localml-kit with its fleet extra there (the same version as here)."
            )
        self.reports[m.name] = {
            **probe["machine"],
            "address": m.address,
            "resources": dict(self.found.get(m.name, {}).get("resources", {})),
        }
        for label, have in probe["models"].items():
            if have is None:
                spec = self.specs[label]
                folder = Path(spec["path"]).parent
                blobs = {e["name"]: (folder / e["name"]).read_bytes() for e in spec["files"]}
                try:
                    sent = self.client.run(_on_worker_receive, spec, blobs, workers=[m.address])
                except Exception as exc:
                    return (
                        f"sending {label} to the worker at {m.address} failed "
                        f"({type(exc).__name__}: {exc}); check its free disk space."
                    )
                have = sent[m.address]
            self.local_paths[(m.name, label)] = have
        return None

    def submit(self, m: _Machine, first: Configuration) -> None:
        """Hand ``first`` to machine ``m``, with the batch its inputs really have."""
        made = self.feeds[(first.model, first.batch)][1]
        batch = made.batch if made is not None and made.batch is not None else first.batch
        cfg = dataclasses.replace(first, batch=batch)
        resource = resource_name(cfg.provider)
        future = self.client.submit(
            _on_worker_measure,
            cfg.to_dict(),
            self.local_paths[(m.name, cfg.model)],
            self.npz[(first.model, first.batch)],
            self.stop_name,
            self.create_envs,
            key=f"localml-profile-{uuid.uuid4().hex[:12]}-c{cfg.index}-{m.name}",
            workers=[m.address],
            allow_other_workers=False,
            resources={resource: 1} if resource in self.found[m.name]["resources"] else None,
            pure=False,
            retries=0,
        )
        future.add_done_callback(lambda _: self.wake.set())
        m.inflight.append((future, first, cfg))

    def collect(self, m: _Machine, distributed: Any) -> None:
        """The rows of ``m``'s finished configurations."""
        for entry in [e for e in m.inflight if e[0].done()]:
            future, first, cfg = entry
            m.inflight.remove(entry)
            try:
                got = future.result()
                row = ProfileRow(**{k: got[k] for k in ROW_FIELDS if k in got})
            except (distributed.KilledWorker, CancelledError) as exc:
                row = _placeholder(
                    cfg,
                    "lost",
                    f"machine {m.name} lost this configuration ({type(exc).__name__}: "
                    f"{exc}); the plan went on.",
                    m.name,
                )
            except Exception as exc:  # raised on the worker, or a kit of another version
                row = _placeholder(
                    cfg,
                    "error",
                    f"on machine {m.name}: {type(exc).__name__}: {exc}. Check that it "
                    f"runs localml-kit {KIT_VERSION}, as this machine does.",
                    m.name,
                )
            row.machine, row.worker = m.name, m.address
            self.finish(row, first)

    def left(self, m: _Machine, now: float) -> None:
        """``m``'s worker is gone: the one measuring is lost, the one behind it waits again."""
        for future, _, _ in m.inflight:
            future.cancel()
        (_, first, cfg), *waiting = m.inflight
        m.inflight = []
        m.queue[:0] = [w[1] for w in waiting]
        row = _placeholder(
            cfg,
            "lost",
            f"machine {m.name} ({m.address}) left the cluster during this "
            "configuration (its worker died or was stopped); the plan went on.",
            m.name,
        )
        row.worker = m.address
        self.finish(row, first)
        m.ready, m.gone_since = False, now

    def schedule(self, m: _Machine, alive: dict[str, str], now: float) -> None:
        """Give ``m`` its next configurations, or end its queue (stopped, gone, unprepared)."""
        if not m.queue or len(m.inflight) >= IN_FLIGHT:
            return
        if self.stopped:
            self.finish_queue(m, "stopped", "stopped before it ran")
            return
        if m.inflight:  # a worker that still runs one gets the next one queued behind it
            self.submit(m, m.queue.pop(0))
            return
        if alive.get(m.name) is None:
            m.gone_since = m.gone_since or now
            if now - m.gone_since > self.rejoin_s:
                self.finish_queue(
                    m,
                    "lost",
                    f"machine {m.name} left the cluster and did not come back "
                    f"within {self.rejoin_s:g} s.",
                )
            return
        if alive[m.name] != m.address:
            m.address, m.ready = alive[m.name], False  # a restarted worker
        m.gone_since = None
        if not m.ready:
            why = self.prepare(m)
            if why is not None:
                self.finish_queue(m, "error", why)
                return
            m.ready = True
        while m.queue and len(m.inflight) < IN_FLIGHT:
            self.submit(m, m.queue.pop(0))

    def tick(self, distributed: Any) -> None:
        """One look at every machine, then wait for a result (or the next look)."""
        now = time.monotonic()
        alive = {str(w.get("name", a)): a for a, w in _workers(self.client).items()}
        for m in self.fleet:
            self.collect(m, distributed)
            if m.inflight and alive.get(m.name) != m.address:
                self.left(m, now)
            self.schedule(m, alive, now)
        self.wake.wait(POLL_S)
        self.wake.clear()


def run(
    plan: Plan,
    cluster: Any,
    *,
    machines: str | Sequence[str] = "all",
    progress: bool = True,
    stop: Any = None,
    on_result: Callable[[dict[str, Any], int, int], None] | None = None,
    create_envs: bool = False,
    connect_timeout_s: float = 10.0,
    rejoin_s: float = REJOIN_S,
) -> ProfileResult:
    """Measure every configuration of ``plan`` on every chosen machine (see the module doc)."""
    from localml_kit.profile import _runner

    distributed = _distributed()
    configs = plan.configurations()
    readable = _runner.check_models(plan)
    client, own = connect(cluster, connect_timeout_s)
    address = str(getattr(client.scheduler, "address", "") or "")
    stop_name = f"localml-stop-{uuid.uuid4().hex}"
    event = None
    fleet: _FleetRun | None = None
    bar = None
    chosen: list[str] = []
    try:
        found: dict[str, dict[str, Any]] = {
            str(w.get("name", addr)): {"address": addr, "resources": w.get("resources") or {}}
            for addr, w in _workers(client).items()
        }
        chosen = _choose(found, machines)
        specs = {label: _model_spec(ref) for label, ref in plan.models.items()}
        with tempfile.TemporaryDirectory(prefix="localml-fleet-") as tmp:
            feeds = _runner.write_feeds(plan, configs, readable, Path(tmp))
            npz = {key: path.read_bytes() for key, (path, _) in feeds.items()}
        event = distributed.Event(stop_name, client=client)
        bar = tqdm(
            total=len(configs) * len(chosen), desc="profile", unit="config", disable=not progress
        )
        fleet = _FleetRun(
            client,
            configs,
            found,
            chosen,
            specs,
            feeds,
            npz,
            stop_name=stop_name,
            create_envs=create_envs,
            on_result=on_result,
            bar=bar,
            rejoin_s=rejoin_s,
        )
        while fleet.busy:
            if not fleet.stopped and stop is not None and stop.is_set():
                fleet.stopped = True
                event.set()
            fleet.tick(distributed)
    finally:
        if bar is not None:
            bar.close()
        if event is not None:
            with contextlib.suppress(Exception):
                event.set()  # anything still running on a worker stops
        if own:
            with _quiet_dask():
                client.close()
    order = {name: i for i, name in enumerate(chosen)}
    records = sorted(fleet.records, key=lambda r: (r.config, order.get(r.machine, len(order))))
    return ProfileResult(
        table=frame(records),
        plan={**plan.to_dict(), "cluster": address, "machines": chosen},
        machine=_runner._machine(),
        machines=fleet.reports,
    )
