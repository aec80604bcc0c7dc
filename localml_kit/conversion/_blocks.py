"""GGUF quantized blocks as ONNX Runtime block-quantized weights, without re-quantizing.

A GGUF tensor is a row-major matrix cut into blocks along each row. The
classic types store blocks of 32 values, each with a scale ``d`` (and for the
``_1`` types a minimum ``m``) and small integers ``q``. The K-quants store
super-blocks of 256 values: 8 sub-blocks of 32 (Q4_K, Q5_K) or 16 sub-blocks
of 16 (Q2_K, Q3_K, Q6_K), each sub-block with its own small integer scale (and
minimum) under the super-block's fp16 scales, so each sub-block is one block
with one float scale ``d * sc`` and one float minimum ``-dmin * m``:

=====  ================================  =============================================
type   value                             carried as (bits, block, zero point, minimum)
=====  ================================  =============================================
Q4_0   d * (q - 8)                       4 bits, 32, zero point 8
Q4_1   d * q + m                         4 bits, 32, zero point 0, minimum term
Q5_0   d * (q - 16)                      8 bits (q + 112), 32, zero point 128
Q5_1   d * q + m                         8 bits, 32, zero point 0, minimum term
Q8_0   d * q  (q signed)                 8 bits (q + 128), 32, zero point 128
Q2_K   (d*sc) * q - dmin*m  (q in 0-3)   4 bits, 16, zero point 0, minimum term
Q3_K   (d*(sc-32)) * q  (q in -4..3)     4 bits (q + 8), 16, zero point 8
Q4_K   (d*sc) * q - dmin*m  (q in 0-15)  4 bits, 32, zero point 0, minimum term
Q5_K   (d*sc) * q - dmin*m  (q in 0-31)  8 bits, 32, zero point 0, minimum term
Q6_K   (d*sc) * (q - 32)  (sc signed)    8 bits (q + 96), 16, zero point 128
=====  ================================  =============================================

ONNX Runtime's ``MatMulNBits`` and ``GatherBlockQuantized`` compute
``scale * (u - zero_point)`` per block, so the integers and scales move over
unchanged. A per-block minimum has no place in those operators (a float zero
point is exact but takes a slow kernel); the kit adds it as its own term,
``sum over blocks of (sum of the block's inputs) * m``, which is exact too.
Every float the blocks hold is computed as ``gguf.quants.dequantize`` computes
it (float32 products of the same factors), so :meth:`Blocks.dequantize` equals
it bit for bit.

Example:
    >>> import numpy as np
    >>> raw = np.zeros((1, 20), np.uint8)  # one Q4_1 block: d = m = 0
    >>> from_gguf("Q4_1", raw, 32).dequantize().shape
    (1, 32)
    >>> from_gguf("Q6_K", np.zeros((1, 210), np.uint8), 256).block_size
    16
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from localml_kit import errors

__all__ = ["BLOCK", "SUPPORTED", "Blocks", "concat", "from_gguf"]

BLOCK = 32
# Values and bytes per GGUF block (a K-quant's super-block of 256), by GGUF type.
_LAYOUT = {
    "Q4_0": (32, 18),
    "Q4_1": (32, 20),
    "Q5_0": (32, 22),
    "Q5_1": (32, 24),
    "Q8_0": (32, 34),
    "Q2_K": (256, 84),
    "Q3_K": (256, 110),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
}
SUPPORTED = tuple(_LAYOUT)
_DEFAULT_ZERO_POINT = {4: 8, 8: 128}


@dataclass(frozen=True)
class Blocks:
    """A matrix [N, K] as unsigned block integers: ``scales * (q - zero_point) + mins``.

    ``q`` is uint8 [N, K/B, B] for blocks of B values (one value per byte,
    unpacked); ``scales`` and ``mins`` are float32 [N, K/B]; ``zero_point`` is
    one integer for all blocks or uint8 [N, K/B], one per block.
    """

    q: np.ndarray
    scales: np.ndarray
    zero_point: int | np.ndarray
    bits: int
    mins: np.ndarray | None = None
    gguf_type: str = ""

    @property
    def block_size(self) -> int:
        """Values per block (32, or 16 for Q2_K, Q3_K and Q6_K)."""
        return int(self.q.shape[2])

    @property
    def shape(self) -> tuple[int, int]:
        """[N, K] of the matrix the blocks hold."""
        return self.q.shape[0], self.q.shape[1] * self.q.shape[2]

    def dequantize(self) -> np.ndarray:
        """The float32 matrix [N, K], computed as ONNX Runtime does (exactly the GGUF's values)."""
        zp = np.asarray(self.zero_point, np.float32)
        values = (self.q.astype(np.float32) - (zp[..., None] if zp.ndim else zp)) * self.scales[
            ..., None
        ]
        if self.mins is not None:
            values = values + self.mins[..., None]
        return values.reshape(self.shape)

    def rows(self, index: np.ndarray) -> Blocks:
        """The blocks of rows ``index`` (a permutation or a selection of rows)."""
        return replace(
            self,
            q=self.q[index],
            scales=self.scales[index],
            mins=None if self.mins is None else self.mins[index],
            zero_point=self.zero_point
            if isinstance(self.zero_point, int)
            else self.zero_point[index],
        )

    def centred(self) -> Blocks:
        """The same values with each block's minimum moved into an integer zero point.

        ``d * q + m`` becomes ``d * (q - z) + (m + z * d)`` with ``z = round(-m / d)``:
        the integer part then carries the block's spread around zero and the
        remaining minimum is small. With 8-bit activations (``accuracy_level`` 4)
        the rounding error of the activations multiplies ``d * (q - z)``, which
        is now as small as the weights themselves, instead of ``d * q``. A block
        moves only where the new form gives every one of its values bit for bit
        (``m + z * d`` is exact in float32, as it nearly always is); the others
        keep zero point 0.
        """
        if self.mins is None or not isinstance(self.zero_point, int) or self.zero_point != 0:
            return self
        top = 15 if self.bits == 4 else 255
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(self.scales != 0, -self.mins / self.scales, 0.0)
        z = np.clip(np.rint(ratio), 0, top).astype(np.uint8)
        mins = (self.mins + z.astype(np.float32) * self.scales).astype(np.float32)
        moved = replace(self, zero_point=z, mins=mins)
        q = self.q.astype(np.float32)
        before = q * self.scales[..., None] + self.mins[..., None]
        after = (q - z[..., None].astype(np.float32)) * self.scales[..., None] + mins[..., None]
        same = np.all(before == after, axis=-1)
        if same.all():
            return moved
        return replace(
            self,
            zero_point=np.where(same, z, 0).astype(np.uint8),
            mins=np.where(same, mins, self.mins).astype(np.float32),
        )

    def widened(self) -> Blocks:
        """The same values as 8-bit blocks with zero point 128 (exact for 4- and 8-bit blocks)."""
        if self.bits == 8 and isinstance(self.zero_point, int) and self.zero_point == 128:
            return self
        zp = np.asarray(self.zero_point, np.int16)
        q = (self.q.astype(np.int16) - (zp[..., None] if zp.ndim else zp) + 128).astype(np.uint8)
        return replace(self, q=q, zero_point=128, bits=8)

    def reblocked(self, size: int) -> Blocks:
        """The same values in blocks of ``size`` (a divisor of the block size): each block splits.

        Example:
            >>> b = from_gguf("Q4_K", np.zeros((1, 144), np.uint8), 256)
            >>> b.reblocked(16).block_size, b.reblocked(16).scales.shape
            (16, (1, 16))
        """
        if size == self.block_size:
            return self
        if self.block_size % size:
            raise ValueError(f"blocks of {self.block_size} do not split into blocks of {size}")
        n, nb, _ = self.q.shape
        parts = self.block_size // size

        def spread(a: np.ndarray) -> np.ndarray:
            return np.repeat(a, parts, axis=1)

        return replace(
            self,
            q=self.q.reshape(n, nb * parts, size),
            scales=spread(self.scales),
            mins=None if self.mins is None else spread(self.mins),
            zero_point=self.zero_point
            if isinstance(self.zero_point, int)
            else spread(self.zero_point),
        )

    def packed(self) -> np.ndarray:
        """``MatMulNBits``'s B: uint8 [N, K/B, B * bits / 8]; 4-bit pairs share a byte, low first."""
        if self.bits == 4:
            return (self.q[..., 0::2] | (self.q[..., 1::2] << 4)).astype(np.uint8)
        return np.ascontiguousarray(self.q)

    def zero_points(self) -> np.ndarray | None:
        """The operator's zero-point input, or None when the operator's default is the one needed."""
        if isinstance(self.zero_point, int) and self.zero_point == _DEFAULT_ZERO_POINT[self.bits]:
            return None
        z = np.broadcast_to(np.asarray(self.zero_point, np.uint8), self.scales.shape)
        if self.bits == 8:
            return np.ascontiguousarray(z)
        n, nb = z.shape
        if nb % 2:
            z = np.concatenate([z, np.zeros((n, 1), np.uint8)], axis=1)
        return (z[:, 0::2] | (z[:, 1::2] << 4)).astype(np.uint8)


def concat(parts: Sequence[Blocks]) -> Blocks:
    """Row-wise concatenation (e.g. q, k and v into one packed projection).

    Parts of different block sizes are cut to the smallest, parts of different
    widths are widened to 8 bits, different zero points become one per block:
    all exact; a missing minimum counts as zero.
    """
    size = min(p.block_size for p in parts)
    parts = [p.reblocked(size) for p in parts]
    if len({p.bits for p in parts}) > 1:
        parts = [p.widened() for p in parts]
    zero_point: int | np.ndarray = parts[0].zero_point
    if not all(isinstance(p.zero_point, int) and p.zero_point == zero_point for p in parts):
        zero_point = np.concatenate(
            [np.broadcast_to(np.asarray(p.zero_point, np.uint8), p.scales.shape) for p in parts]
        )
    mins = None
    if any(p.mins is not None for p in parts):
        mins = np.concatenate(
            [p.mins if p.mins is not None else np.zeros_like(p.scales) for p in parts]
        )
    return Blocks(
        q=np.concatenate([p.q for p in parts]),
        scales=np.concatenate([p.scales for p in parts]),
        zero_point=zero_point,
        bits=parts[0].bits,
        mins=mins,
        gguf_type="+".join(dict.fromkeys(p.gguf_type for p in parts)),
    )


def describe(blocks: Blocks) -> str:
    """How blocks are carried, in words (``carried.json``'s entries).

    Example:
        >>> describe(from_gguf("Q6_K", np.zeros((1, 210), np.uint8), 256))
        '8-bit blocks of 16'
    """
    text = f"{blocks.bits}-bit blocks of {blocks.block_size}"
    return text + (" + minimum term" if blocks.mins is not None else "")


def _half(raw: np.ndarray) -> np.ndarray:
    """Two bytes per item (the last axis) as fp16 -> float32."""
    return np.ascontiguousarray(raw).view(np.float16)[..., 0].astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """GGUF's 16 bytes -> 32 values: low nibbles are values 0-15, high nibbles 16-31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _high_bits(qh: np.ndarray) -> np.ndarray:
    """Q5's 4 bytes of fifth bits (little-endian uint32, bit j for value j) -> 0 or 16 per value."""
    bits = np.unpackbits(qh, axis=-1, bitorder="little")
    return (bits << 4).astype(np.uint8)


def _shifted(data: np.ndarray, chunk: int, shifts: Sequence[int], mask: int) -> np.ndarray:
    """K-quant bit fields: ``data`` [S, bytes] in chunks of ``chunk`` bytes, each read at ``shifts``.

    Value order is chunk, then shift, then byte, as llama.cpp lays it out.
    """
    s = data.shape[0]
    by = np.array(shifts, np.uint8).reshape(1, 1, -1, 1)
    return ((data.reshape(s, -1, 1, chunk) >> by) & np.uint8(mask)).reshape(s, -1)


def _k_scale_min(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K / Q5_K's 12 bytes -> 8 six-bit scales and 8 six-bit minima per super-block."""
    s = scales.shape[0]
    d, m, m_d = np.split(scales.reshape(s, 3, 4), 3, axis=-2)
    sc = np.concatenate([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.reshape(s, 8).astype(np.float32), mn.reshape(s, 8).astype(np.float32)


def _k_quant(gguf_type: str, sb: np.ndarray) -> Blocks:
    """Super-blocks ``sb`` uint8 [S, bytes] -> Blocks [S, sub-blocks, sub-block size]."""
    s = sb.shape[0]
    if gguf_type == "Q6_K":
        ql, qh, sc, d = np.split(sb, [128, 192, 208], axis=1)
        q6 = _shifted(ql, 64, (0, 4), 0x0F) | (_shifted(qh, 32, (0, 2, 4, 6), 0x03) << 4)
        scales = _half(d)[:, None] * sc.view(np.int8).astype(np.float32)
        return Blocks((q6 + 96).astype(np.uint8).reshape(s, 16, 16), scales, 128, 8)
    if gguf_type == "Q3_K":
        hmask, qs, packed, d = np.split(sb, [32, 96, 108], axis=1)
        low, high = packed[:, :8], packed[:, 8:]
        low = (low.reshape(s, 1, 8) >> np.array([0, 4], np.uint8).reshape(1, 2, 1)).reshape(s, 16)
        high = (high.reshape(s, 1, 4) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 4, 1)).reshape(
            s, 16
        )
        sc = ((low & 0x0F) | ((high & 0x03) << 4)).astype(np.int8) - np.int8(32)
        scales = _half(d)[:, None] * sc.astype(np.float32)
        q2 = _shifted(qs, 32, (0, 2, 4, 6), 0x03)
        hbit = _shifted(hmask, 32, range(8), 0x01)
        # q = q2 - 4 * (1 - hbit), in -4..3, stored as q + 8 under zero point 8.
        q = (q2 + 4 * hbit + 4).astype(np.uint8)
        return Blocks(q.reshape(s, 16, 16), scales, 8, 4)
    if gguf_type == "Q2_K":
        sc, qs, d, dmin = np.split(sb, [16, 80, 82], axis=1)
        scales = _half(d)[:, None] * (sc & 0x0F).astype(np.float32)
        mins = -(_half(dmin)[:, None] * (sc >> 4).astype(np.float32))
        q = _shifted(qs, 32, (0, 2, 4, 6), 0x03)
        return Blocks(q.reshape(s, 16, 16), scales, 0, 4, mins=mins)
    # Q4_K, Q5_K: d, dmin, 12 bytes of scales and minima, (Q5_K: 32 bytes of fifth bits,) qs
    d, dmin, packed = _half(sb[:, 0:2])[:, None], _half(sb[:, 2:4])[:, None], sb[:, 4:16]
    sc, mn = _k_scale_min(packed)
    scales, mins = d * sc, -(dmin * mn)
    if gguf_type == "Q4_K":
        q = _shifted(sb[:, 16:], 32, (0, 4), 0x0F)
        return Blocks(q.reshape(s, 8, 32), scales, 0, 4, mins=mins)
    q = _shifted(sb[:, 48:], 32, (0, 4), 0x0F) | (_shifted(sb[:, 16:48], 32, range(8), 0x01) << 4)
    return Blocks(q.reshape(s, 8, 32), scales, 0, 8, mins=mins)


def from_gguf(gguf_type: str, raw: np.ndarray, k: int) -> Blocks:
    """Blocks from a GGUF tensor's bytes: ``raw`` is uint8 [N, bytes per row], K values per row.

    Example:
        >>> raw = np.zeros((2, 34), np.uint8)
        >>> from_gguf("Q8_0", raw, 32).bits
        8
    """
    if gguf_type not in _LAYOUT:
        raise errors.ModelFormatError(
            f"GGUF type {gguf_type} is not carried; carried: {', '.join(SUPPORTED)}. "
            "Keep such tensors as float (the carry does), or build at int4, int8 or fp32."
        )
    values, size = _LAYOUT[gguf_type]
    if k % values:
        raise errors.ModelFormatError(
            f"rows of {k} values are not whole {gguf_type} blocks of {values}: this tensor "
            "cannot be carried; keep it as float, or build at int4, int8 or fp32."
        )
    n = raw.shape[0]
    data = np.ascontiguousarray(raw, dtype=np.uint8)
    if values == 256:
        b = _k_quant(gguf_type, data.reshape(n * (k // 256), size))
        sub = b.block_size
        return replace(
            b,
            q=b.q.reshape(n, k // sub, sub),
            scales=b.scales.reshape(n, k // sub),
            mins=None if b.mins is None else b.mins.reshape(n, k // sub),
            gguf_type=gguf_type,
        )
    blocks = data.reshape(n, k // BLOCK, size)
    d = _half(blocks[..., 0:2])
    if gguf_type == "Q8_0":
        q = (blocks[..., 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        return Blocks(q, d, 128, 8, gguf_type=gguf_type)
    if gguf_type == "Q4_0":
        return Blocks(_nibbles(blocks[..., 2:]), d, 8, 4, gguf_type=gguf_type)
    if gguf_type == "Q4_1":
        m = _half(blocks[..., 2:4])
        return Blocks(_nibbles(blocks[..., 4:]), d, 0, 4, mins=m, gguf_type=gguf_type)
    if gguf_type == "Q5_0":
        q5 = _nibbles(blocks[..., 6:]) | _high_bits(blocks[..., 2:6])
        return Blocks((q5 + 112).astype(np.uint8), d, 128, 8, gguf_type=gguf_type)
    # Q5_1
    m = _half(blocks[..., 2:4])
    q5 = _nibbles(blocks[..., 8:]) | _high_bits(blocks[..., 4:8])
    return Blocks(q5, d, 0, 8, mins=m, gguf_type=gguf_type)
