"""Inputs for any model, one way: a sample's realistic inputs, else inputs made from its specs.

:func:`inputs_for` is what profile, compare, optimize (comparison and
calibration) and the widgets call. For a sample with example inputs it uses
them; for any other ONNX model it makes inputs from the input specs, choosing
the symbolic dims a user would expect:

* the leading dim is the batch: ``batch`` (default 1); a model with a fixed
  leading dim keeps it (a larger ``batch`` is cut to what the model allows,
  with a note);
* sequence-like dims (names with ``seq``, ``len``, ``token``, ``time``...; the
  second dim of integer ids; the middle dim of ``[batch, ?, features]``) are
  :data:`SEQUENCE_DEFAULT` (128);
* image sides (names with ``height``/``width``, ``h``/``w``; the last two dims of
  an NCHW image, the middle two of NHWC) are :data:`IMAGE_SIDE_DEFAULT` (224);
* ``dims`` overrides any of them by name (``{"seq": 16}``) or position
  (``{"x[2]": 48}``); a dim with no sensible default (a feature size) raises
  :class:`~localml_kit.errors.InputError` naming it.

The dims chosen travel with the inputs (:attr:`Feeds.dims`) so every result
can report them.

Example:
    >>> import onnx
    >>> from onnx import TensorProto, helper
    >>> from localml_kit.inputs import inputs_for
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 8])
    >>> graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    >>> onnx.save(helper.make_model(graph), "my-model.onnx")
    >>> feeds = inputs_for("my-model.onnx", batch=4)
    >>> feeds.dims, feeds.source
    ({'batch': 4, 'seq': 128}, 'synthetic')
    >>> inputs_for("my-model.onnx", dims={"seq": 16}).shapes_text()
    'x 1x16x8'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from localml_kit import errors, models, samples
from localml_kit.models import InputSpec

__all__ = [
    "IMAGE_SIDE_DEFAULT",
    "SEQUENCE_DEFAULT",
    "Feeds",
    "check",
    "dims_of",
    "fit_batch",
    "inputs_for",
    "resolve_shapes",
    "synthesize",
]

SEQUENCE_DEFAULT = 128
IMAGE_SIDE_DEFAULT = 224
# The most elements one made-up input may hold (4 GiB of float32): a larger batch or dim is a typo.
MAX_ELEMENTS = 2**30

_SEQUENCE = re.compile(r"seq|len|token|time|frame|step|word|char|position|sentence", re.I)
_IMAGE = re.compile(r"height|width|^h$|^w$|^img_?[hw]$|^image_?[hw]$|_h$|_w$|side", re.I)


@dataclass(frozen=True)
class Feeds:
    """Inputs for one run and how they were chosen.

    ``arrays`` maps input names to arrays; ``source`` is ``sample`` (the
    sample's realistic inputs), ``synthetic`` (made from the specs) or
    ``given``; ``dims`` the value of every symbolic dim (by name, or
    ``input[axis]`` for unnamed ones; the leading dim as ``batch``); ``notes``
    what was changed from what was asked.

    Example:
        >>> f = Feeds({"x": np.zeros((2, 3))}, "given", {"batch": 2})
        >>> f.shapes_text(), f.dims_text(), f.batch
        ('x 2x3', 'batch=2', 2)
    """

    arrays: dict[str, np.ndarray]
    source: str
    dims: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def batch(self) -> int | None:
        """The leading dim of the first input with one (None when every input is a scalar)."""
        return next((int(v.shape[0]) for v in self.arrays.values() if np.ndim(v) > 0), None)

    def shapes_text(self) -> str:
        """``"input_ids 8x128, attention_mask 8x128"``."""
        return ", ".join(f"{k} {'x'.join(map(str, np.shape(v)))}" for k, v in self.arrays.items())

    def dims_text(self) -> str:
        """``"batch=8, sequence=128"``."""
        return ", ".join(f"{k}={v}" for k, v in self.dims.items())


def _is(name: str, *words: str) -> bool:
    lowered = name.lower()
    return any(w in lowered for w in words)


def _default_for(spec: InputSpec, axis: int, dim: str | None) -> int | None:
    """The documented default for a symbolic dim, or None where none makes sense."""
    name = dim or ""
    rank = len(spec.shape)
    floating = spec.dtype.startswith("float")
    if name and _IMAGE.search(name):
        return IMAGE_SIDE_DEFAULT
    if name and _SEQUENCE.search(name):
        return SEQUENCE_DEFAULT
    if rank == 4 and floating:
        if spec.shape[1] in (1, 3, 4) and axis in (2, 3):
            return IMAGE_SIDE_DEFAULT
        if spec.shape[3] in (1, 3, 4) and axis in (1, 2):
            return IMAGE_SIDE_DEFAULT
    if axis == 1 and rank == 2 and not floating and spec.dtype != "bool":
        return SEQUENCE_DEFAULT  # token ids: [batch, sequence]
    if axis == 1 and rank == 3 and isinstance(spec.shape[2], int):
        return SEQUENCE_DEFAULT  # [batch, sequence, features]
    return None


def _flags(example: Mapping[str, str]) -> str:
    return ",".join(f"{k}=N" for k in example)


def resolve_shapes(
    specs: Sequence[InputSpec],
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
) -> tuple[dict[str, tuple[int, ...]], dict[str, int], list[str]]:
    """Concrete shapes for every input, the dims chosen, and notes on what was changed.

    See the module docstring for the defaults. A dim with none raises
    InputError naming it (with ``dims=`` for Python and ``--dims`` for the
    command line).

    Example:
        >>> spec = InputSpec("x", "float32", ("batch", "seq", 64))
        >>> resolve_shapes([spec], batch=2)[:2]
        ({'x': (2, 128, 64)}, {'batch': 2, 'seq': 128})
    """
    given = {str(k): int(v) for k, v in dict(dims or {}).items()}
    bad = {k: v for k, v in given.items() if v < 1}
    if bad or (batch is not None and int(batch) < 1):
        shown = {**bad, **({"batch": batch} if batch is not None and int(batch) < 1 else {})}
        raise errors.InputError(
            f"dims and batch must be positive integers; got {shown}.",
            cli=f"--dims and --batch take positive integers; got {shown}.",
        )
    used: set[str] = set()
    chosen: dict[str, int] = {}
    notes: list[str] = []
    unresolved: dict[str, list[str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        shape: list[int] = []
        for axis, dim in enumerate(spec.shape):
            where = f"{spec.name}[{axis}]"
            named = isinstance(dim, str) and dim not in {"?", ""}
            key = str(dim) if named else where
            if where in given:
                used.add(where)
                value = given[where]
            elif isinstance(dim, int):
                value = dim
                if axis == 0 and batch is not None and int(batch) != dim:
                    note = (
                        f"input {spec.name!r} has a fixed batch of {dim} "
                        f"(shape {spec.shape_text()}): using {dim}, not {batch}"
                    )
                    if note not in notes:
                        notes.append(note)
            elif axis == 0:
                if batch is not None:
                    value = int(batch)
                elif named and key in given:
                    used.add(key)
                    value = given[key]
                else:
                    used.add("batch")
                    value = given.get("batch", 1)
            elif named and key in given:
                used.add(key)
                value = given[key]
            elif key in chosen:
                value = chosen[key]
            else:
                default = _default_for(spec, axis, key if named else None)
                if default is None:
                    unresolved.setdefault(key, []).append(where)
                    value = -1
                else:
                    value = default
            if not isinstance(dim, int):
                chosen.setdefault(key, value)
            shape.append(value)
        shapes[spec.name] = tuple(shape)
    if unresolved:
        parts = [f"{key!r} (in {', '.join(wheres)})" for key, wheres in unresolved.items()]
        example = ", ".join(f"{key!r}: N" for key in unresolved)
        unused = sorted(set(given) - used - {"batch"})
        extra = f" The dims given but not in this model: {', '.join(unused)}." if unused else ""
        what = f"no default for dims {'; '.join(parts)} (not a batch, sequence or image side)."
        raise errors.InputError(
            f"{what} Pass dims={{{example}}}.{extra}",
            cli=f"{what} Pass --dims {_flags({k: '' for k in unresolved})}.{extra}",
        )
    for name, made in shapes.items():
        count = int(np.prod(made, dtype=np.float64)) if made else 1
        if count > MAX_ELEMENTS:
            raise errors.InputError(
                f"input {name!r} would hold {count:,} values ({'x'.join(map(str, made))}): "
                f"more than the {MAX_ELEMENTS:,} the kit makes up. Give a smaller batch or dims.",
                cli=f"input {name!r} would hold {count:,} values ({'x'.join(map(str, made))}): "
                f"more than the {MAX_ELEMENTS:,} the kit makes up. Give a smaller --batch or --dims.",
            )
    return shapes, _dims(specs, shapes), notes


def _vocab_from_meta(meta: Mapping[str, str]) -> int | None:
    for key, value in meta.items():
        if "vocab_size" in key.lower():
            try:
                return int(value)
            except ValueError:
                continue
    return None


def synthesize(
    specs: Sequence[InputSpec],
    shapes: Mapping[str, tuple[int, ...]],
    *,
    vocab_size: int | None = None,
    meta: Mapping[str, str] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Inputs made from specs: token ids in range, masks of ones, floats (images) in [0, 1).

    Integer inputs: names with ``mask`` are ones; ``token_type``/``segment``
    are zeros; ``position`` counts 0..n-1 along the last axis; any other
    integer input is drawn in ``[0, V)`` where V is the embedding table it
    indexes, else ``vocab_size``, else a ``vocab_size`` from the metadata.

    Example:
        >>> x = synthesize([InputSpec("x", "float32", (1, 2))], {"x": (1, 2)})["x"]
        >>> x.shape, bool((x >= 0).all() and (x < 1).all())
        ((1, 2), True)
    """
    rng = np.random.default_rng(seed)
    meta_vocab = _vocab_from_meta(meta or {})
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = shapes[spec.name]
        if spec.dtype.startswith("onnx-type") or spec.dtype in {"object", "str"}:
            raise errors.InputError(
                f"input {spec.name!r} has type {spec.dtype}, which the kit cannot make up; "
                "pass inputs={...} yourself.",
                cli=f"input {spec.name!r} has type {spec.dtype}, which the kit cannot make up; "
                "pass --inputs FILE.npz.",
            )
        dtype = np.dtype(spec.dtype)
        if dtype == np.bool_:
            out[spec.name] = np.ones(shape, dtype=bool)
        elif np.issubdtype(dtype, np.floating):
            out[spec.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        elif _is(spec.name, "mask"):
            out[spec.name] = np.ones(shape, dtype=dtype)
        elif _is(spec.name, "token_type", "segment"):
            out[spec.name] = np.zeros(shape, dtype=dtype)
        elif _is(spec.name, "position") and shape:
            out[spec.name] = np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
        else:
            high = spec.high or vocab_size or meta_vocab
            if not high:
                raise errors.InputError(
                    f"integer input {spec.name!r} needs a value range and the model shows none: "
                    "pass vocab_size=N (token ids are drawn in [0, N)) or inputs={...}.",
                    cli=f"integer input {spec.name!r} needs a value range and the model shows "
                    "none: pass --vocab-size N (ids are drawn in [0, N)) or --inputs FILE.npz.",
                )
            if spec.high and vocab_size and vocab_size > spec.high:
                high = spec.high  # never index past the embedding table
            out[spec.name] = rng.integers(0, high, size=shape, dtype=np.int64).astype(dtype)
    return out


def check(specs: Sequence[InputSpec], inputs: Mapping[str, np.ndarray]) -> None:
    """Raise InputError naming the input, the expected and the given when inputs do not fit.

    Example:
        >>> check([InputSpec("x", "float32", ("n", 4))], {"x": np.zeros((1, 5), np.float32)})
        Traceback (most recent call last):
        localml_kit.errors.InputError: input 'x': expected shape [n, 4], given [1, 5].
    """
    names = [s.name for s in specs]
    missing = [n for n in names if n not in inputs]
    extra = [n for n in inputs if n not in names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"not in the model: {', '.join(map(repr, extra))}")
        expected = ", ".join(f"{s.name} {s.dtype}{s.shape_text()}" for s in specs)
        raise errors.InputError(
            f"inputs do not match the model ({'; '.join(parts)}); it expects {expected}."
        )
    seen: dict[str, tuple[int, str]] = {}
    for spec in specs:
        value = np.asarray(inputs[spec.name])
        if value.dtype.name != spec.dtype:
            raise errors.InputError(
                f"input {spec.name!r}: expected dtype {spec.dtype}, given {value.dtype.name} "
                f"(convert it with .astype(np.{spec.dtype}))."
            )
        if len(value.shape) != len(spec.shape) or any(
            isinstance(d, int) and d != g for d, g in zip(spec.shape, value.shape, strict=False)
        ):
            raise errors.InputError(
                f"input {spec.name!r}: expected shape {spec.shape_text()}, given {list(value.shape)}."
            )
        for dim, got in zip(spec.shape, value.shape, strict=True):
            if isinstance(dim, str) and dim not in {"?", ""}:
                if dim in seen and seen[dim][0] != got:
                    raise errors.InputError(
                        f"dim {dim!r} is {seen[dim][0]} in input {seen[dim][1]!r} but {got} in "
                        f"input {spec.name!r}; inputs sharing a dim name must agree."
                    )
                seen.setdefault(dim, (int(got), spec.name))


def _dims(specs: Sequence[InputSpec], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        shape = shapes.get(spec.name)
        if shape is None:
            continue
        for axis, (dim, got) in enumerate(zip(spec.shape, shape, strict=False)):
            if isinstance(dim, int):
                continue
            if axis == 0:
                key = "batch"
            elif dim in (None, "?", ""):
                key = f"{spec.name}[{axis}]"
            else:
                key = str(dim)
            out.setdefault(key, int(got))
    return out


def dims_of(specs: Sequence[InputSpec], arrays: Mapping[str, np.ndarray]) -> dict[str, int]:
    """The value every symbolic dim takes in ``arrays`` (the leading one as ``batch``).

    Example:
        >>> dims_of([InputSpec("x", "float32", ("n", "seq", 4))], {"x": np.zeros((2, 7, 4))})
        {'batch': 2, 'seq': 7}
    """
    return _dims(specs, {k: tuple(np.shape(v)) for k, v in arrays.items()})


def fit_batch(inputs: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Repeat (or cut) given inputs along axis 0 to ``batch`` rows; scalars stay as they are.

    Example:
        >>> fit_batch({"x": np.arange(2)}, 5)["x"].tolist()
        [0, 1, 0, 1, 0]
    """
    out = {}
    for name, value in inputs.items():
        arr = np.asarray(value)
        if arr.ndim == 0 or arr.shape[0] == batch:
            out[name] = arr
        else:
            out[name] = np.take(arr, np.arange(batch) % arr.shape[0], axis=0)
    return out


def _sample_rows(
    specs: Sequence[InputSpec], batch: int | None, dims: Mapping[str, int]
) -> tuple[int, list[str]]:
    lead = specs[0].shape[0] if specs and specs[0].shape else None
    if isinstance(lead, int):
        notes = []
        if batch is not None and batch != lead:
            notes.append(
                f"input {specs[0].name!r} has a fixed batch of {lead}: using {lead}, not {batch}"
            )
        return lead, notes
    if batch is not None:
        return int(batch), []
    if isinstance(lead, str) and lead in dims:
        return int(dims[lead]), []
    return int(dims.get("batch", 1)), []


def inputs_for(
    model: str | os.PathLike[str] | models.ModelRef,
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    vocab_size: int | None = None,
    synthetic: bool = False,
) -> Feeds:
    """Inputs for ``model``: a sample's realistic inputs, else made from its input specs.

    ``batch`` sets the leading dim (default 1; a fixed leading dim wins, with a
    note); ``dims`` names other dims (``{"seq": 16}`` or ``{"x[2]": 48}``);
    ``synthetic=True`` makes inputs from the specs even for a sample;
    ``vocab_size`` bounds token ids the graph gives no range for. The result
    says which dims were chosen (:attr:`Feeds.dims`).

    Example:
        >>> feeds = inputs_for("all-minilm-l6-v2", batch=2)
        >>> feeds.source, feeds.arrays["input_ids"].shape[0]
        ('sample', 2)
    """
    ref = models.resolve(model)
    io = ref.require_onnx("making inputs").io
    specs = list(io.inputs)
    given = {str(k): int(v) for k, v in dict(dims or {}).items()}
    if batch is not None and int(batch) < 1:
        raise errors.InputError(
            f"batch must be at least 1 (got {batch}).",
            cli=f"--batch must be at least 1 (got {batch}).",
        )
    if ref.sample and not synthetic and samples.get(ref.sample).inputs:
        rows, notes = _sample_rows(specs, batch, given)
        arrays = samples.example_inputs(ref.sample, batch=rows, dims=given, seed=seed)
        check(specs, arrays)
        return Feeds(arrays, "sample", dims_of(specs, arrays), tuple(notes))
    shapes, _chosen, notes = resolve_shapes(specs, batch=batch, dims=given)
    arrays = synthesize(specs, shapes, vocab_size=vocab_size, meta=io.metadata, seed=seed)
    return Feeds(arrays, "synthetic", dims_of(specs, arrays), tuple(notes))


def given(
    model: str | os.PathLike[str] | models.ModelRef,
    arrays: Mapping[str, Any],
    *,
    batch: int | None = None,
) -> Feeds:
    """Inputs the user gave, checked against the model (repeated along axis 0 to ``batch``).

    Example:
        >>> feeds = given("digits-mlp", {"X": np.zeros((1, 64), np.float32)}, batch=3)
        >>> feeds.source, feeds.shapes_text()
        ('given', 'X 3x64')
    """
    ref = models.resolve(model)
    specs = list(ref.require_onnx("checking inputs").io.inputs)
    feeds = {k: np.asarray(v) for k, v in arrays.items()}
    if batch is not None:
        feeds = fit_batch(feeds, batch)
    check(specs, feeds)
    return Feeds(feeds, "given", dims_of(specs, feeds))
