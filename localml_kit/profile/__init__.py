"""Profile latency and memory per execution provider, each configuration in a fresh process.

A :class:`Plan` names models, providers, intra-op thread counts, batch sizes
and graph-optimization levels (plus warm-up, minimum iterations and seconds,
CPU arena, thread spinning, inputs). :func:`run` measures every combination in
its own worker process: session load time, first run, warm-up, then latency
samples until both the minimum count and the minimum time are reached;
percentiles, throughput, peak memory during load and during runs, which
provider ran each node (loudly flagging CPU fallback), and the time per
operator from ONNX Runtime's profiling trace. The result is a
:class:`ProfileResult` (a DataFrame, JSON, plots) whose table has one
:class:`ProfileRow` per configuration (the row's fields are the columns).

Example:
    >>> from localml_kit import profile
    >>> plan = profile.Plan("all-minilm-l6-v2", providers=["cpu", "openvino"],
    ...                     threads=[1, 2], batches=[1, 8], min_seconds=1)
    >>> len(plan.configurations())  # profile.run(plan) measures each for min_seconds or more
    8
    >>> quick = profile.Plan("digits-mlp", threads=[1], batches=[1, 8],
    ...                      warmup=1, min_iterations=5, min_seconds=0)
    >>> result = profile.run(quick, progress=False)
    >>> result.summary()[["label", "status"]]
                                  label status
    0  digits-mlp · cpu · 1t · b1 · all     ok
    1  digits-mlp · cpu · 1t · b8 · all     ok
    >>> bool((result.table["p50_ms"] > 0).all())
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from localml_kit import envs, hardware
from localml_kit.profile._fleet import local_cluster, machines, resource_name, worker_resources
from localml_kit.profile._inputs import InputSpec
from localml_kit.profile._inputs import check as _check
from localml_kit.profile._inputs import read_specs as _read_specs
from localml_kit.profile._plan import (
    OPTIMIZATION_LEVELS,
    PROVIDER_ALIASES,
    Configuration,
    Plan,
    default_threads,
    known_providers,
    resolve_provider,
    short_name,
)
from localml_kit.profile._result import ProfileResult, ProfileRow
from localml_kit.profile._runner import run, session_memory, summarise_error
from localml_kit.profile._trace import (
    kernel_events,
    load_trace,
    node_providers,
    node_times,
    operator_times,
)

__all__ = [
    "OPTIMIZATION_LEVELS",
    "PROVIDER_ALIASES",
    "Configuration",
    "InputSpec",
    "Plan",
    "ProfileResult",
    "ProfileRow",
    "check_inputs",
    "default_threads",
    "input_specs",
    "kernel_events",
    "known_providers",
    "load_trace",
    "local_cluster",
    "machines",
    "make_inputs",
    "model_choices",
    "node_providers",
    "node_times",
    "operator_times",
    "providers_table",
    "resolve_provider",
    "resource_name",
    "run",
    "session_memory",
    "short_name",
    "summarise_error",
    "worker_resources",
]


def _model_file(model: str | os.PathLike[str]) -> str:
    from localml_kit import models

    return str(models.resolve(model).path)


def input_specs(model: str | os.PathLike[str]) -> list[InputSpec]:
    """The model's inputs: name, dtype, shape (ints fixed, strings symbolic), id bound.

    Example:
        >>> [s.name for s in input_specs("all-minilm-l6-v2")]
        ['input_ids', 'attention_mask', 'token_type_ids']
        >>> input_specs("all-minilm-l6-v2")[0].high  # the vocabulary: ids stay below it
        30522
    """
    return _read_specs(_model_file(model))[0]


def make_inputs(
    model: str | os.PathLike[str],
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
    vocab_size: int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Inputs made from the model's input specs (for realistic ones see ``samples.example_inputs``).

    Symbolic dims come from ``dims`` by name (``{"sequence": 128}``) or by
    position (``{"x[2]": 48}``); the leading dim is ``batch`` (else
    ``dims[its name]``, else 1); sequence-like dims default to 128 and image
    sides to 224 (see :mod:`localml_kit.inputs`). A dim with no default raises
    :class:`~localml_kit.errors.InputError` naming it. Token ids are drawn
    below the size of the embedding table they index (else ``vocab_size``, else
    a ``vocab_size`` in the metadata); masks are ones; floats (images) lie in [0, 1).

    Example:
        >>> feeds = make_inputs("all-minilm-l6-v2", batch=8, dims={"sequence": 128})
        >>> feeds["input_ids"].shape
        (8, 128)
    """
    from localml_kit.inputs import inputs_for

    feeds = inputs_for(
        model, batch=batch, dims=dims, vocab_size=vocab_size, seed=seed, synthetic=True
    )
    return feeds.arrays


def check_inputs(model: str | os.PathLike[str], inputs: Mapping[str, np.ndarray]) -> None:
    """Raise InputError naming the input, the expected and the given when inputs do not fit.

    Example:
        >>> check_inputs("digits-mlp", {"X": np.zeros((1, 64), np.float64)})
        Traceback (most recent call last):
        localml_kit.errors.InputError: input 'X': expected dtype float32, given float64 ...
    """
    _check(_read_specs(_model_file(model))[0], inputs)


def providers_table() -> pd.DataFrame:
    """Every well-known provider: available here or in a provider environment, and its package.

    Example:
        >>> table = providers_table()
        >>> bool(table.set_index("provider").loc["CPUExecutionProvider", "available"])
        True
    """
    table = hardware.providers_table()
    where, python = [], []
    for name, here in zip(table["provider"], table["available"], strict=True):
        env = None if here else envs.find(name)
        where.append("main" if here else env.name if env else "")
        python.append("" if env is None else env.python)
    table["available"] = [w != "" for w in where]
    table["environment"] = where
    table["python"] = python
    return table


def model_choices() -> list[str]:
    """The ready sample models that plain ONNX Runtime sessions can profile (``name[:variant]``).

    ONNX Runtime GenAI folders (the language model's decoder) are left out:
    profile those with ``localml_kit.slm``.

    Example:
        >>> "all-minilm-l6-v2" in model_choices(), "smollm2-135m-instruct" in model_choices()
        (True, False)
    """
    from pathlib import Path

    from localml_kit import models
    from localml_kit.profile._inputs import is_genai_folder

    return [
        c for c in models.sample_choices((".onnx",)) if not is_genai_folder(Path(_model_file(c)))
    ]
