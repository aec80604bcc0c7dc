"""The run plan: models x providers x threads x batch sizes x optimization levels (x arena,
spinning, IO binding).

A :class:`Plan` expands into :class:`Configuration` records, each a plain,
JSON-serialisable job that one worker process measures. A distributed engine
could run the same list of jobs elsewhere without changing the measurement code.
"""

from __future__ import annotations

import itertools
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from localml_kit import config, envs, errors, providers
from localml_kit import models as model_refs

PROVIDER_ALIASES = providers.ALIASES
OPTIMIZATION_LEVELS = providers.OPTIMIZATION_LEVELS
GPU_PROVIDERS = providers.GPU_PROVIDERS
known_providers = providers.known
resolve_provider = providers.resolve
short_name = providers.short_name
_main_providers = providers.available


def default_threads() -> int:
    """One intra-op thread per free core: physical cores, less those busy right now (>= 1).

    "Busy" is a logical CPU above 50% use over the next 0.2 s. Spinning threads
    on a busy machine collapse throughput, so the kit never asks for more
    threads than there are free cores.

    Example:
        >>> default_threads() >= 1
        True
    """
    physical = psutil.cpu_count(logical=False) or 1
    logical = psutil.cpu_count(logical=True) or physical
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = logical
    busy = sum(1 for p in psutil.cpu_percent(interval=0.2, percpu=True) if p > 50.0)
    free_logical = max(1, min(allowed, logical) - busy)
    per_core = max(1, logical // physical)
    return max(1, min(physical, free_logical // per_core or 1))


MEMORY_CAP_FRACTION = 0.8


def default_memory_cap_mb() -> float:
    """The memory one configuration may use unless told otherwise: 80% of this machine's RAM.

    Example:
        >>> default_memory_cap_mb() > 0
        True
    """
    return round(psutil.virtual_memory().total * MEMORY_CAP_FRACTION / 1e6)


@dataclass(frozen=True)
class Configuration:
    """One configuration to measure: a plain, JSON-serialisable job for one worker process.

    Example:
        >>> c = Configuration(index=0, model="m", model_path="m.onnx",
        ...                   provider="CPUExecutionProvider", python="python")
        >>> Configuration.from_dict(c.to_dict()) == c
        True
    """

    index: int
    model: str
    model_path: str
    provider: str
    python: str
    environment: str = "main"
    threads: int = 1
    batch: int | None = 1
    optimization: str = "all"
    cpu_arena: bool = True
    spinning: bool = False
    io_binding: bool = False
    warmup: int = 5
    min_iterations: int = 50
    min_seconds: float = 2.0
    timeout_s: float = 300.0
    provider_options: dict[str, Any] = field(default_factory=dict)
    operator_profile: bool = True
    strict: bool = False
    max_memory_mb: float | None = None

    @property
    def label(self) -> str:
        """A short label: ``model · provider · threads · batch · optimization [· arena/spin]``."""
        parts = [
            self.model,
            short_name(self.provider),
            f"{self.threads}t",
            f"b{self.batch if self.batch is not None else '?'}",
            self.optimization,
        ]
        if not self.cpu_arena:
            parts.append("no-arena")
        if self.spinning:
            parts.append("spin")
        if self.io_binding:
            parts.append("iobind")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Configuration:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, str | bytes | Path | int | float | bool | model_refs.ModelRef):
        return [value]
    return list(value)


def _model_refs(given: Any) -> dict[str, model_refs.ModelRef]:
    """``{label: ModelRef}``, each model resolved once; labels made unique."""
    if isinstance(given, Mapping):
        return {str(k): model_refs.resolve(v, label=str(k)) for k, v in given.items()}
    out: dict[str, model_refs.ModelRef] = {}
    for item in _as_list(given):
        ref = model_refs.resolve(item)
        label = ref.label
        if label in out and ref.sample is None:
            label = f"{ref.path.parent.name}/{ref.path.name}"
        base, n = label, 2
        while label in out:
            label, n = f"{base}#{n}", n + 1
        out[label] = ref.with_label(label)
    return out


@dataclass
class Plan:
    """What to measure: models x providers x threads x batch sizes x optimization levels.

    ``models``: a path, a sample name (``"all-minilm-l6-v2"``, with
    ``":variant"`` for a variant), a list of them, or ``{label: reference}``
    to compare variants. ``providers``: aliases (``cpu``, ``cuda``,
    ``openvino``...) or ONNX Runtime names. ``threads`` empty means one per free
    core (:func:`default_threads`). ``batches`` empty means the batch from
    ``dims`` (by the leading dim's name), else 1.

    Inputs: ``inputs=None`` uses a sample's own realistic inputs when it has
    some, else makes inputs from the model's input specs (``dims`` names the
    symbolic dims, ``vocab_size`` bounds token ids); ``"synthetic"`` forces
    the latter; a ``{name: array}`` mapping is used as given (repeated along
    axis 0 to each batch size).

    ``max_memory_mb`` caps each configuration's resident memory (default
    :func:`default_memory_cap_mb`, 80% of RAM): a worker over it is killed and
    its row says ``oom``. Thread counts above the machine's logical cores are
    capped with a :class:`~localml_kit.errors.ResourceCapWarning`.

    ``pythons`` maps a provider to the Python that serves it (default: this
    one when it offers the provider, else a provider environment from
    :mod:`localml_kit.envs`). ``strict`` makes a session fail rather than put
    nodes on the CPU provider. ``io_binding`` (one value or ``[False, True]``)
    runs through ``run_with_iobinding``: inputs copied to the provider's device
    once, outputs bound there and reused, so a GPU run pays no copies; on the
    CPU provider it only saves the outputs' allocation.

    Engines (``tract``, ``web``) are named like providers; a thread count they
    cannot honour is flagged in the row, and IO binding does not apply to them.

    Example:
        >>> plan = Plan("digits-mlp", providers=["cpu"], threads=[1, 2], batches=[1, 64])
        >>> len(plan.configurations())
        4
    """

    models: Any
    providers: Sequence[str] = ("cpu",)
    threads: Sequence[int] = ()
    batches: Sequence[int] = ()
    optimizations: Sequence[str] = ("all",)
    dims: Mapping[str, int] = field(default_factory=dict)
    vocab_size: int | None = None
    inputs: Mapping[str, np.ndarray] | str | None = None
    warmup: int = 5
    min_iterations: int = 50
    min_seconds: float = 2.0
    cpu_arena: bool | Sequence[bool] = True
    spinning: bool | Sequence[bool] = False
    io_binding: bool | Sequence[bool] = False
    timeout_s: float = 300.0
    pythons: Mapping[str, str] = field(default_factory=dict)
    provider_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    operator_profile: bool = True
    strict: bool = False
    seed: int = 0
    max_memory_mb: float | None = None

    def __post_init__(self) -> None:
        self.models = _model_refs(self.models)
        if not self.models:
            raise errors.ConfigError("a plan needs at least one model.")
        self.providers = tuple(_as_list(self.providers)) or ("cpu",)
        self.threads = tuple(int(t) for t in _as_list(self.threads))
        self.batches = tuple(int(b) for b in _as_list(self.batches))
        self.optimizations = tuple(str(o).lower() for o in _as_list(self.optimizations)) or ("all",)
        self.dims = {str(k): int(v) for k, v in dict(self.dims).items()}
        if isinstance(self.inputs, str) and self.inputs not in {"sample", "synthetic"}:
            raise errors.ConfigError(
                f"inputs={self.inputs!r}: use None (automatic), 'sample', 'synthetic' "
                "or a {name: array} mapping."
            )
        problems = []
        if any(t < 1 for t in self.threads):
            problems.append(f"threads must be >= 1 (got {list(self.threads)})")
        if any(b < 1 for b in self.batches):
            problems.append(f"batch sizes must be >= 1 (got {list(self.batches)})")
        bad = [o for o in self.optimizations if o not in OPTIMIZATION_LEVELS]
        if bad:
            problems.append(
                f"optimization levels {bad} unknown; use {', '.join(OPTIMIZATION_LEVELS)}"
            )
        if self.warmup < 0 or self.min_iterations < 1 or self.min_seconds < 0:
            problems.append("warmup >= 0, min_iterations >= 1 and min_seconds >= 0 are required")
        if self.timeout_s <= 0:
            problems.append("timeout_s must be > 0")
        if self.max_memory_mb is not None and not self.max_memory_mb > 0:
            problems.append(f"max_memory_mb must be > 0 (got {self.max_memory_mb})")
        if problems:
            raise errors.ConfigError("; ".join(problems) + ".")
        # Fail on an unknown provider name before anything runs.
        for name in self.providers:
            resolve_provider(name)
        cores = os.cpu_count() or 1
        if any(t > cores for t in self.threads):
            warnings.warn(
                f"threads {list(self.threads)}: this machine has {cores} logical cores; "
                f"more threads than cores only contend, so they are capped at {cores}.",
                errors.ResourceCapWarning,
                stacklevel=3,
            )
            self.threads = tuple(dict.fromkeys(min(t, cores) for t in self.threads))

    def python_for(self, provider: str) -> tuple[str, str]:
        """(python, environment label) that serves ``provider`` for this plan."""
        for key, python in self.pythons.items():
            if resolve_provider(key) == provider:
                return os.fspath(python), "custom"
        if provider in _main_providers():
            return sys.executable, "main"
        env = envs.find(provider)
        if env is not None:
            return env.python, env.name
        return sys.executable, "main"

    def _options_for(self, provider: str, threads: int) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if provider == "OpenVINOExecutionProvider":
            # OpenVINO runs its own thread pool: give it the same thread count.
            options = {"device_type": "CPU", "num_of_threads": threads}
        elif provider == "CUDAExecutionProvider":
            options = {"device_id": 0}
        elif provider == "TensorrtExecutionProvider":
            options = {
                "device_id": 0,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(config.home() / "tensorrt-cache"),
            }
        for key, given in self.provider_options.items():
            if resolve_provider(key) == provider:
                options.update(given)
        return options

    def configurations(self) -> list[Configuration]:
        """Expand the plan into one :class:`Configuration` per combination, in a stable order.

        Example:
            >>> [c.label for c in Plan("digits-mlp", threads=[1], batches=[1, 8]).configurations()]
            ['digits-mlp · cpu · 1t · b1 · all', 'digits-mlp · cpu · 1t · b8 · all']
            >>> [c.label for c in Plan("digits-mlp", threads=[1]).configurations()]  # the model's batch
            ['digits-mlp · cpu · 1t · b? · all']
        """
        threads = self.threads or (default_threads(),)
        batches: tuple[int | None, ...] = tuple(self.batches) or (None,)
        arenas = tuple(bool(a) for a in _as_list(self.cpu_arena)) or (True,)
        spins = tuple(bool(s) for s in _as_list(self.spinning)) or (False,)
        bindings = tuple(bool(b) for b in _as_list(self.io_binding)) or (False,)
        providers = list(dict.fromkeys(resolve_provider(p) for p in self.providers))
        memory_cap = self.max_memory_mb or default_memory_cap_mb()
        paths = {label: str(ref.path) for label, ref in self.models.items()}
        out: list[Configuration] = []
        for label, provider, t, b, opt, arena, spin, bind in itertools.product(
            self.models, providers, threads, batches, self.optimizations, arenas, spins, bindings
        ):
            python, environment = self.python_for(provider)
            out.append(
                Configuration(
                    index=len(out),
                    model=label,
                    model_path=paths[label],
                    provider=provider,
                    python=python,
                    environment=environment,
                    threads=t,
                    batch=b,
                    optimization=opt,
                    cpu_arena=arena,
                    spinning=spin,
                    io_binding=bind,
                    warmup=self.warmup,
                    min_iterations=self.min_iterations,
                    min_seconds=self.min_seconds,
                    timeout_s=self.timeout_s,
                    provider_options=self._options_for(provider, t),
                    operator_profile=self.operator_profile,
                    strict=self.strict,
                    max_memory_mb=memory_cap,
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-safe data (given input arrays are summarised by shape and dtype)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["models"] = {label: ref.text for label, ref in self.models.items()}
        if isinstance(self.inputs, Mapping):
            data["inputs"] = {
                k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)}
                for k, v in self.inputs.items()
            }
        for key in ("providers", "threads", "batches", "optimizations"):
            data[key] = list(data[key])
        for key in ("cpu_arena", "spinning", "io_binding"):
            data[key] = _as_list(data[key])
        data["pythons"] = {k: os.fspath(v) for k, v in self.pythons.items()}
        data["provider_options"] = {k: dict(v) for k, v in self.provider_options.items()}
        return data
