"""One way to open an ONNX Runtime session for an app: a resolved model, spinning off, a CPU fallback."""

from __future__ import annotations

import os
from typing import Any

from localml_kit import errors, models, providers

__all__ = ["open_session"]


def open_session(
    model: str | os.PathLike[str] | models.ModelRef | Any,
    *,
    threads: int | None = None,
    provider: str | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``model``, as the kit's apps open one.

    ``model`` is anything :func:`localml_kit.models.resolve` takes (or an
    optimize ``Variant``). ``threads`` sets the intra-op threads (ONNX Runtime's
    default when None); idle threads sleep instead of spinning, which keeps a
    busy machine responsive. ``provider`` (else the one the reference names,
    ``model.onnx@openvino``, else the CPU) comes first, with the CPU provider
    behind it for the nodes it cannot run. A provider this ONNX Runtime lacks
    raises :class:`~localml_kit.errors.ProviderUnavailableError`; a file it
    cannot load, :class:`~localml_kit.errors.ModelFormatError`.

    Example:
        >>> session = open_session("digits-mlp", threads=1)
        >>> [i.name for i in session.get_inputs()], session.get_providers()
        (['X'], ['CPUExecutionProvider'])
    """
    import onnxruntime as ort

    ref = models.as_ref(model)
    if ref is None:
        raise errors.ModelNotFoundError(
            f"{model!r} does not name a model: give a path to an .onnx file, a sample name "
            "or a ModelRef."
        )
    ref = ref.require_onnx("an app session")
    wanted = providers.resolve(provider) if provider else ref.provider_name
    have = ort.get_available_providers()
    if wanted not in have:
        package = providers.PACKAGES.get(wanted, "")
        raise errors.ProviderUnavailableError(
            f"{wanted} is not available in this ONNX Runtime ({', '.join(have)})"
            + (f"; it ships in the {package} package." if package else ".")
        )
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        so.intra_op_num_threads = int(threads)
    chain = [wanted] if wanted == providers.CPU else [wanted, providers.CPU]
    try:
        return ort.InferenceSession(str(ref.path), so, providers=chain)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise errors.ModelFormatError(
            f"ONNX Runtime cannot load {ref.path}: {first}. Check that the file is a complete "
            "ONNX model (graph.summarize shows what it holds)."
        ) from exc
