"""Model inputs for profiling: read the input specs, make inputs from them, check given ones.

Pure functions over the ONNX file (read with ``onnx``, weights not loaded), so
the notebook kernel never creates an ONNX Runtime session just to learn shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localml_kit import errors

Dim = int | str | None


@dataclass(frozen=True)
class InputSpec:
    """One graph input: name, numpy dtype name, shape (int fixed, str symbolic, None unknown).

    ``high`` is an exclusive upper bound for integer values when the graph shows
    one (the row count of an embedding table the input indexes), else None.
    """

    name: str
    dtype: str
    shape: tuple[Dim, ...]
    high: int | None = None

    def shape_text(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


def _load(model: str | os.PathLike[str]):  # -> onnx.ModelProto
    import onnx

    try:
        return onnx.load(os.fspath(model), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError...
        raise errors.ModelFormatError(
            f"{model} is not a readable ONNX model ({type(exc).__name__}: {exc})."
        ) from exc


def read_specs(model: str | os.PathLike[str]) -> tuple[list[InputSpec], dict[str, str]]:
    """The graph inputs of an ONNX file (initializers excluded) and its metadata properties."""
    from onnx import helper

    proto = _load(model)
    graph = proto.graph
    tables = {init.name: list(init.dims) for init in graph.initializer}
    bounds: dict[str, int] = {}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) >= 2 and node.input[0] in tables:
            dims = tables[node.input[0]]
            if dims:
                bounds[node.input[1]] = min(bounds.get(node.input[1], dims[0]), dims[0])
    specs = []
    for value in graph.input:
        if value.name in tables:
            continue
        tensor = value.type.tensor_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
        except (KeyError, TypeError, ValueError):
            dtype = f"onnx-type-{tensor.elem_type}"
        shape: list[Dim] = []
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(int(dim.dim_value))
            elif dim.HasField("dim_param") and dim.dim_param:
                shape.append(dim.dim_param)
            else:
                shape.append(None)
        specs.append(InputSpec(value.name, dtype, tuple(shape), bounds.get(value.name)))
    meta = {p.key: p.value for p in proto.metadata_props}
    return specs, meta


def _vocab_from_meta(meta: Mapping[str, str]) -> int | None:
    for key, value in meta.items():
        if "vocab_size" in key.lower():
            try:
                return int(value)
            except ValueError:
                continue
    return None


def resolve_shapes(
    specs: list[InputSpec], *, batch: int | None = None, dims: Mapping[str, int] | None = None
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for every input; the error names each dim left unresolved.

    The leading dim of an input, when not fixed, is the batch: ``batch`` if
    given, else ``dims[its name]``, else 1. Other dims come from ``dims`` by
    name (``{"sequence": 128}``) or by position (``{"x[2]": 48}``).
    """
    dims = dict(dims or {})
    used: set[str] = set()
    unresolved: dict[str, list[str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        shape: list[int] = []
        for axis, dim in enumerate(spec.shape):
            where = f"{spec.name}[{axis}]"
            if where in dims:
                used.add(where)
                shape.append(int(dims[where]))
            elif isinstance(dim, int):
                if axis == 0 and batch is not None and batch != dim:
                    raise errors.InputError(
                        f"input {spec.name!r} has a fixed leading dim {dim}: batch {batch} "
                        f"is not possible for this model (its shape is {spec.shape_text()})."
                    )
                shape.append(dim)
            elif axis == 0 and batch is not None:
                shape.append(int(batch))
            elif isinstance(dim, str) and dim in dims:
                used.add(dim)
                shape.append(int(dims[dim]))
            elif axis == 0:
                shape.append(1)
            else:
                key = dim if isinstance(dim, str) and dim not in {"?", ""} else where
                unresolved.setdefault(key, []).append(where)
                shape.append(-1)
        shapes[spec.name] = tuple(shape)
    if unresolved:
        parts = [f"{key!r} (in {', '.join(wheres)})" for key, wheres in unresolved.items()]
        example = ", ".join(f"{key!r}: N" for key in unresolved)
        unused = sorted(set(dims) - used)
        extra = f" The dims given but not in this model: {', '.join(unused)}." if unused else ""
        raise errors.InputError(
            f"dims left unresolved: {'; '.join(parts)}. Pass dims={{{example}}}.{extra}"
        )
    bad = {k: v for k, v in dims.items() if int(v) < 1}
    if bad:
        raise errors.InputError(f"dims must be positive integers; got {bad}.")
    return shapes


def _is(name: str, *words: str) -> bool:
    lowered = name.lower()
    return any(w in lowered for w in words)


def synthesize(
    specs: list[InputSpec],
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
    """
    rng = np.random.default_rng(seed)
    meta_vocab = _vocab_from_meta(meta or {})
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = shapes[spec.name]
        if spec.dtype.startswith("onnx-type") or spec.dtype in {"object", "str"}:
            raise errors.InputError(
                f"input {spec.name!r} has type {spec.dtype}, which the kit cannot make up; "
                "pass inputs={...} yourself."
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
                    "pass vocab_size=N (token ids are drawn in [0, N)) or inputs={...}."
                )
            if spec.high and vocab_size and vocab_size > spec.high:
                high = spec.high  # never index past the embedding table
            out[spec.name] = rng.integers(0, high, size=shape, dtype=np.int64).astype(dtype)
    return out


def check(specs: list[InputSpec], inputs: Mapping[str, np.ndarray]) -> None:
    """Raise InputError naming the input, the expected and the given when inputs do not fit."""
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


def fit_batch(inputs: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Repeat (or cut) given inputs along axis 0 to ``batch`` rows; scalars stay as they are."""
    out = {}
    for name, value in inputs.items():
        arr = np.asarray(value)
        if arr.ndim == 0 or arr.shape[0] == batch:
            out[name] = arr
        else:
            out[name] = np.take(arr, np.arange(batch) % arr.shape[0], axis=0)
    return out


def is_genai_folder(path: Path) -> bool:
    """True for an ONNX Runtime GenAI model folder (a decoder with a KV cache)."""
    folder = path if path.is_dir() else path.parent
    return (folder / "genai_config.json").is_file()
