"""Read an ONNX file's structure without its weights.

``onnx.load`` parses every initializer's bytes into memory. To summarise a
model we only need the graph, the initializers' names, types and dims, and
where external data lives. This module walks the protobuf wire format over a
memory map and copies everything except the tensor payload fields of the main
graph's initializers into a small buffer, which protobuf then parses. Sizes
still follow from each initializer's dims and data type.

Wire format: each field is a varint key ``(number << 3) | wire_type``; wire
types 0 (varint), 1 (8 bytes), 2 (length-delimited) and 5 (4 bytes) are the
ones ONNX uses.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from localml_kit import errors

# ModelProto.graph, GraphProto.initializer
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
# TensorProto payload fields: float_data, int32_data, string_data, int64_data,
# raw_data, double_data, uint64_data.
_TENSOR_PAYLOAD = frozenset({4, 5, 6, 7, 9, 10, 11})


class _Truncated(Exception):
    pass


def _varint(buf: mmap.mmap | bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _Truncated
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Truncated


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(buf: mmap.mmap | bytes, start: int, end: int):
    """Yield (number, wire_type, field_start, payload_start, field_end) for each field."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(buf, pos, end)
            payload_start = pos
        elif wire_type == 1:
            payload_start, pos = pos, pos + 8
        elif wire_type == 2:
            length, payload_start = _varint(buf, pos, end)
            pos = payload_start + length
        elif wire_type == 5:
            payload_start, pos = pos, pos + 4
        else:
            raise _Truncated
        if pos > end or number == 0:
            raise _Truncated
        yield number, wire_type, field_start, payload_start, pos


def _copy_without(
    buf: mmap.mmap | bytes, start: int, end: int, drop: frozenset[int]
) -> tuple[bytes, int]:
    """The message in ``buf[start:end]`` without the fields in ``drop``; also the bytes dropped."""
    out = bytearray()
    dropped = 0
    for number, _, field_start, _, field_end in _fields(buf, start, end):
        if number in drop:
            dropped += field_end - field_start
        else:
            out += buf[field_start:field_end]
    return bytes(out), dropped


def _rewrite(
    buf: mmap.mmap | bytes, start: int, end: int, number_to_rewrite: int, rewrite
) -> tuple[bytes, int]:
    out = bytearray()
    dropped = 0
    for number, wire_type, field_start, payload_start, field_end in _fields(buf, start, end):
        if number == number_to_rewrite and wire_type == 2:
            inner, inner_dropped = rewrite(buf, payload_start, field_end)
            dropped += inner_dropped
            out += _encode_varint((number << 3) | 2) + _encode_varint(len(inner)) + inner
        else:
            out += buf[field_start:field_end]
    return bytes(out), dropped


def _strip_graph(buf: mmap.mmap | bytes, start: int, end: int) -> tuple[bytes, int]:
    return _rewrite(
        buf,
        start,
        end,
        _GRAPH_INITIALIZER,
        lambda b, s, e: _copy_without(b, s, e, _TENSOR_PAYLOAD),
    )


def _not_utf8(model: onnx.ModelProto) -> str | None:
    """The first text field whose bytes are not UTF-8 (protobuf hands those over as bytes), or None."""
    stack: list[Message] = [model]
    while stack:  # a loop, not recursion: a damaged file may nest graphs deeply
        message = stack.pop()
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_STRING:
                values = [value] if isinstance(value, str | bytes) else value
                if any(isinstance(v, bytes) for v in values):
                    return field.full_name
            elif isinstance(value, Message):
                stack.append(value)
            elif field.message_type is not None:
                stack.extend(value)
    return None


def load_skeleton(path: Path) -> tuple[onnx.ModelProto, int]:
    """The model in ``path`` without its initializers' payloads, and how many bytes were skipped.

    Raises ModelFormatError when the file is not a complete ONNX protobuf.
    """
    size = path.stat().st_size
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            skeleton, dropped = _rewrite(buf, 0, size, _MODEL_GRAPH, _strip_graph)
        except _Truncated:
            raise errors.ModelFormatError(
                f"{path} is not a complete ONNX model (the protobuf ends early or is not protobuf). "
                "Re-export or re-download the file."
            ) from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(skeleton)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise errors.ModelFormatError(
            f"{path} is not a valid ONNX model ({type(exc).__name__}: {exc}). "
            "Re-export or re-download the file."
        ) from None
    field = _not_utf8(model)
    if field is not None:
        raise errors.ModelFormatError(
            f"{path} is damaged: its text field {field} is not UTF-8, as ONNX requires. "
            "Re-export or re-download the file."
        )
    return model, dropped
