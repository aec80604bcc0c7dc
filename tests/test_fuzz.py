"""Damaged model files through ``graph.summarize`` and ``localml-kit inspect``: kit errors, never crashes.

Seeds are a tiny valid ONNX model (``onnx.helper``) and a tiny valid GGUF file
(the ``gguf`` package's writer), both made here. Hypothesis flips bits, cuts
the file short, overwrites bytes, and writes huge values into length and count
fields (protobuf varints, GGUF's u64 counts and string lengths). Every example
must end in success or a ``LocalMLError``: no other exception, no hang (an
alarm stops an example after a few seconds, and hypothesis' ``deadline``
reports a slow one), and bounded memory (the address space is capped a little
above what the process already uses, so a huge allocation fails at once
instead of swapping, and resident memory may not grow much over the run).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import struct
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from localml_kit import errors, graph
from localml_kit.cli import main

EXAMPLES = 150  # per format and entry point; the whole file runs in well under 30 s here
ALARM_S = 5.0  # an example that runs this long is a hang
ADDRESS_SPACE_HEADROOM = 1 << 30  # at most 1 GiB more address space while fuzzing
RSS_GROWTH_LIMIT = 200 * 1024**2
HUGE = [2**64 - 1, 2**63, 2**63 - 1, 2**32 - 1, 2**32, 2**31, 10**12, 0xFFFF_FFFF_FFFF_FFF0]


def onnx_seed() -> bytes:
    """x[batch, 4] -> MatMul(W) -> Add(b) -> Relu -> y, with a Constant and a subgraph (If)."""
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    b = numpy_helper.from_array(np.zeros((3,), np.float16), "b")
    branch = helper.make_graph(
        [helper.make_node("Relu", ["a"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["m", "bf"], ["a"]),
        helper.make_node(
            "Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])
        ),
        helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch),
    ]
    g = helper.make_graph(
        nodes,
        "fuzz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[w, b],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="fuzz")
    helper.set_model_props(model, {"author": "tests"})
    return model.SerializeToString()


def gguf_seed(folder: Path) -> bytes:
    """A llama-shaped GGUF: a few metadata keys (a string array among them) and two tensors."""
    import gguf

    path = folder / "seed.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("fuzz")
    writer.add_context_length(256)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"t{i}" for i in range(20)])
    writer.add_array("fuzz.numbers", list(range(20)))
    writer.add_tensor("token_embd.weight", np.ones((20, 8), np.float32))
    writer.add_tensor("output_norm.weight", np.ones((8,), np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length_fields(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[int]:
    """Offsets of the length varints of the protobuf's length-delimited fields (a few levels deep)."""
    end = len(data) if end is None else end
    found: list[int] = []
    pos = start
    while pos < end:
        key, pos = _read_varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            found.append(pos)
            length, pos = _read_varint(data, pos)
            if depth < 3:
                with contextlib.suppress(IndexError, ValueError):
                    found += length_fields(data, pos, pos + length, depth + 1)
            pos += length
        else:
            raise ValueError("not a message")
    return found


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def gguf_fields(data: bytes) -> list[int]:
    """Offsets of GGUF's u64 header counts and of every u64 string length in the metadata."""
    found = [8, 16]  # tensor count, key/value count
    pos = 24
    (kv_count,) = struct.unpack_from("<Q", data, 16)
    with contextlib.suppress(struct.error, ValueError):
        for _ in range(kv_count):
            found.append(pos)
            (length,) = struct.unpack_from("<Q", data, pos)
            pos += 8 + length
            (kind,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if kind == 8:
                found.append(pos)
                (length,) = struct.unpack_from("<Q", data, pos)
                pos += 8 + length
            elif kind == 9:
                (item, count) = struct.unpack_from("<IQ", data, pos)
                found.append(pos + 4)  # the array's length
                pos += 12
                for _ in range(count):
                    if item == 8:
                        found.append(pos)
                        (length,) = struct.unpack_from("<Q", data, pos)
                        pos += 8 + length
                    else:
                        pos += 4 if item in (4, 5, 6) else 8
            else:
                pos += {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1}.get(kind, 8)
    return found


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, fields: list[int], varints: bool) -> bytes:
    """``seed`` after one to four random edits, huge values in its length fields among them."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "byte", "truncate", "huge", "field", "insert"]))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "byte":
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            where = draw(st.sampled_from(fields)) if edit == "field" and fields else at
            value = draw(st.sampled_from(HUGE))
            if varints:  # a protobuf length: a longer or shorter varint in place of the old one
                old_end = where
                while old_end < len(data) and data[old_end] & 0x80:
                    old_end += 1
                data[where : old_end + 1] = _varint(value)
            else:
                data[where : where + 8] = struct.pack("<Q", value)
    return bytes(data)


INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 1, 2**62, 2**63 - 1]))
INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.one_of(
    st.text(max_size=300), st.sampled_from(["", ".", "..", "../x", "/etc/passwd", "a/b"])
)


@st.composite
def odd_onnx(draw: st.DrawFn) -> bytes:
    """The ONNX seed, well-formed protobuf, with odd values in the fields the kit reads.

    Bit flips rarely make these: negative or huge dims, unknown element types,
    external-data entries that are not numbers or point outside the folder, any text
    in names, domains and metadata, odd opsets and attributes.
    """
    model = onnx.ModelProto()
    model.ParseFromString(ONNX)
    g = model.graph
    for _ in range(draw(st.integers(1, 4))):
        tensor = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        node = g.node[draw(st.integers(0, len(g.node) - 1))]
        edit = draw(
            st.sampled_from(
                ["dims", "data_type", "external", "io", "opset", "text", "attribute", "ir"]
            )
        )
        if edit == "dims":
            del tensor.dims[:]
            tensor.dims.extend(draw(st.lists(INT64, max_size=6)))
        elif edit == "data_type":
            tensor.data_type = draw(INT32)
        elif edit == "external":
            tensor.ClearField("raw_data")
            tensor.data_location = draw(st.sampled_from([0, 1]))
            for key in draw(st.lists(st.sampled_from(["location", "offset", "length", "x"]))):
                tensor.external_data.add(key=key, value=draw(TEXT))
        elif edit == "io":
            value = draw(st.sampled_from([*g.input, *g.output]))
            value.type.tensor_type.elem_type = draw(INT32)
            dim = value.type.tensor_type.shape.dim.add()
            if draw(st.booleans()):
                dim.dim_value = draw(INT64)
            else:
                dim.dim_param = draw(TEXT)
        elif edit == "opset":
            opset = model.opset_import.add() if draw(st.booleans()) else model.opset_import[0]
            opset.domain, opset.version = draw(TEXT), draw(INT64)
        elif edit == "text":
            node.op_type, node.domain = draw(TEXT), draw(TEXT)
            model.producer_name, g.name, g.doc_string = draw(TEXT), draw(TEXT), draw(TEXT)
            model.metadata_props.add(key=draw(TEXT), value=draw(TEXT))
        elif edit == "attribute":
            kind = draw(st.sampled_from(sorted(onnx.AttributeProto.AttributeType.values())))
            attr = node.attribute.add(name=draw(TEXT), type=kind, i=draw(INT64))
            attr.floats.extend(draw(st.lists(st.floats(), max_size=20)))
            attr.ints.extend(draw(st.lists(INT64, max_size=20)))
        else:
            model.ir_version = draw(INT64)
    return model.SerializeToString()


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread if the block runs past ``seconds``."""

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"an example ran past {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def capped_memory() -> Iterator[None]:
    """Cap the address space a little above today's use for the module; check RSS after."""
    process = psutil.Process()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = process.memory_info().vms + ADDRESS_SPACE_HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    rss = process.memory_info().rss
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        with pytest.raises(MemoryError):  # the cap holds: 2 GiB at once is refused
            bytearray(2 * ADDRESS_SPACE_HEADROOM)
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    grown = process.memory_info().rss - rss
    assert grown < RSS_GROWTH_LIMIT, f"resident memory grew by {grown / 1e6:.0f} MB while fuzzing"


def check(data: bytes, suffix: str, call: Callable[[Path], object]) -> None:
    """``call(path)`` on ``data`` in a file: success or a kit error, in bounded time."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_bytes(data)
        with (
            bounded(ALARM_S),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.suppress(errors.LocalMLError),
        ):
            call(path)


def inspect(path: Path) -> None:
    """The CLI: exit 0, or 2 with a kit error's line (any other exception reads "unexpected")."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["inspect", str(path)])
    said = err.getvalue()
    assert status in (0, 2) and "error: unexpected" not in said, said
    assert status == 0 or (said.startswith("error: ") and said.count("\n") == 1), said


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=3),
    derandomize=True,  # the same examples on every run: a failure here is a failure everywhere
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ONNX = onnx_seed()
with tempfile.TemporaryDirectory() as _tmp:
    GGUF = gguf_seed(Path(_tmp))


def test_the_seeds_are_valid_models(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(ONNX)
    (tmp_path / "m.gguf").write_bytes(GGUF)
    onnx_summary = graph.summarize(tmp_path / "m.onnx")
    assert onnx_summary.node_count == 7 and onnx_summary.parameter_count == 16
    gguf_summary = graph.summarize(tmp_path / "m.gguf")
    assert gguf_summary.architecture == "llama" and gguf_summary.context_length == 256
    assert gguf_summary.vocab_size == 20 and len(gguf_summary.tensors) == 2
    assert length_fields(ONNX) and len(gguf_fields(GGUF)) > 20


@pytest.mark.usefixtures("capped_memory")
@FUZZ
@given(data=mutated(ONNX, length_fields(ONNX), varints=True))
def test_damaged_onnx_summarize(data: bytes) -> None:
    check(data, ".onnx", graph.summarize)


@pytest.mark.usefixtures("capped_memory")
@FUZZ
@given(data=mutated(GGUF, gguf_fields(GGUF), varints=False))
def test_damaged_gguf_summarize(data: bytes) -> None:
    check(data, ".gguf", graph.summarize)


@pytest.mark.usefixtures("capped_memory")
@FUZZ
@given(data=odd_onnx())
def test_odd_onnx_fields_summarize(data: bytes) -> None:
    check(data, ".onnx", graph.summarize)


@pytest.mark.usefixtures("capped_memory")
@FUZZ
@given(
    data=st.one_of(
        odd_onnx().map(lambda d: (d, ".onnx")),
        mutated(ONNX, length_fields(ONNX), varints=True).map(lambda d: (d, ".onnx")),
        mutated(GGUF, gguf_fields(GGUF), varints=False).map(lambda d: (d, ".gguf")),
    )
)
def test_damaged_files_through_inspect(data: tuple[bytes, str]) -> None:
    check(data[0], data[1], inspect)


def test_a_huge_gguf_count_is_a_kit_error_at_once(tmp_path: Path) -> None:
    """Counts of 2**64 - 1 (tensors, keys, an array, a string) end as ModelFormatError, quickly."""
    for offset in gguf_fields(GGUF)[:6]:
        data = bytearray(GGUF)
        data[offset : offset + 8] = struct.pack("<Q", 2**64 - 1)
        path = tmp_path / f"huge-{offset}.gguf"
        path.write_bytes(bytes(data))
        with bounded(ALARM_S), pytest.raises(errors.ModelFormatError):
            graph.summarize(path)


def test_cli_inspect_of_a_damaged_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.onnx"
    path.write_bytes(ONNX[: len(ONNX) // 2])
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert os.fspath(path) in err


def _edited(edit: Callable[[onnx.ModelProto], object]) -> bytes:
    model = onnx.ModelProto()
    model.ParseFromString(ONNX)
    edit(model)
    return model.SerializeToString()


def _external(location: str, offset: str = "0", length: str = "48") -> Callable[[Any], None]:
    def edit(model: onnx.ModelProto) -> None:
        tensor = model.graph.initializer[0]
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", offset), ("length", length)):
            tensor.external_data.add(key=key, value=value)

    return edit


def _not_utf8(model: onnx.ModelProto) -> None:
    model.producer_name = "\N{LATIN SMALL LETTER E WITH ACUTE}"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # What the fuzzer found (each once crashed summarize with a non-kit error):
        (_external("w.bin", length="x"), "external data length='x', not a number"),
        (_external("w.bin", offset="-1"), "external data offset='-1', not a number"),
        (_external("../../../../etc/passwd"), "not a file inside the model's folder"),
        (_external("a" * 300), "keeps its weights in external data that is missing"),
        (lambda m: m.graph.initializer[0].dims.append(-3), "negative dimension"),
    ],
)
def test_damaged_onnx_fields_are_kit_errors(
    edit: Callable[[onnx.ModelProto], object], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(_edited(edit))
    with pytest.raises(errors.ModelFormatError, match=message):
        graph.summarize(path)


def test_text_that_is_not_utf8_and_unknown_types_are_handled(tmp_path: Path) -> None:
    data = bytearray(_edited(_not_utf8))
    at = data.index("\N{LATIN SMALL LETTER E WITH ACUTE}".encode())
    data[at] = 0xFF  # protobuf hands such a string over as bytes
    path = tmp_path / "model.onnx"
    path.write_bytes(bytes(data))
    with pytest.raises(errors.ModelFormatError, match="producer_name is not UTF-8"):
        graph.summarize(path)
    # An element type newer than this onnx: a summary, with the type by number.
    path.write_bytes(_edited(lambda m: setattr(m.graph.initializer[0], "data_type", 127)))
    summary = graph.summarize(path)
    assert summary.tensors[0].dtype == "type127" and summary.tensors[0].nbytes == 0
