"""GGUF quantized blocks as ONNX Runtime block-quantized weights, without re-quantizing.

A GGUF tensor of type Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 is a row-major matrix
cut into blocks of 32 values along each row; every block stores a scale ``d``
(and for the ``_1`` types a minimum ``m``) and small integers ``q``:

=====  ==================  ==========================================
type   value               carried as
=====  ==================  ==========================================
Q4_0   d * (q - 8)         4 bits, zero point 8
Q4_1   d * q + m           4 bits, zero point 0, plus the minimum term
Q5_0   d * (q - 16)        8 bits (q + 112), zero point 128
Q5_1   d * q + m           8 bits, zero point 0, plus the minimum term
Q8_0   d * q  (q signed)   8 bits (q + 128), zero point 128
=====  ==================  ==========================================

ONNX Runtime's ``MatMulNBits`` and ``GatherBlockQuantized`` compute
``scale * (u - zero_point)`` per block, so the integers and scales move over
unchanged. A per-block minimum has no place in those operators (a float zero
point is exact but takes a slow kernel); the kit adds it as its own term,
``sum over blocks of (sum of the block's inputs) * m``, which is exact too.

Example:
    >>> import numpy as np
    >>> raw = np.zeros((1, 20), np.uint8)  # one Q4_1 block: d = m = 0
    >>> from_gguf("Q4_1", raw, 32).dequantize().shape
    (1, 32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from localml_kit import errors

__all__ = ["BLOCK", "SUPPORTED", "Blocks", "from_gguf"]

BLOCK = 32
# Bytes per block of 32 values, by GGUF type.
_BLOCK_BYTES = {"Q4_0": 18, "Q4_1": 20, "Q5_0": 22, "Q5_1": 24, "Q8_0": 34}
SUPPORTED = tuple(_BLOCK_BYTES)
_DEFAULT_ZERO_POINT = {4: 8, 8: 128}


@dataclass(frozen=True)
class Blocks:
    """A matrix [N, K] as unsigned block integers: ``scales * (q - zero_point) + mins``.

    ``q`` is uint8 [N, K/32, 32] (one value per byte, unpacked); ``scales`` and
    ``mins`` are float32 [N, K/32]; ``zero_point`` is one integer for all
    blocks or uint8 [N, K/32], one per block.
    """

    q: np.ndarray
    scales: np.ndarray
    zero_point: int | np.ndarray
    bits: int
    mins: np.ndarray | None = None
    gguf_type: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """[N, K] of the matrix the blocks hold."""
        return self.q.shape[0], self.q.shape[1] * BLOCK

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
        is now as small as the weights themselves, instead of ``d * q``.
        """
        if self.mins is None or not isinstance(self.zero_point, int) or self.zero_point != 0:
            return self
        top = 15 if self.bits == 4 else 255
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(self.scales != 0, -self.mins / self.scales, 0.0)
        z = np.clip(np.rint(ratio), 0, top).astype(np.uint8)
        mins = (self.mins + z.astype(np.float32) * self.scales).astype(np.float32)
        return replace(self, zero_point=z, mins=mins)

    def widened(self) -> Blocks:
        """The same values as 8-bit blocks with zero point 128 (exact for 4- and 8-bit blocks)."""
        if self.bits == 8 and isinstance(self.zero_point, int) and self.zero_point == 128:
            return self
        zp = np.asarray(self.zero_point, np.int16)
        q = (self.q.astype(np.int16) - (zp[..., None] if zp.ndim else zp) + 128).astype(np.uint8)
        return replace(self, q=q, zero_point=128, bits=8)

    def packed(self) -> np.ndarray:
        """``MatMulNBits``'s B: uint8 [N, K/32, 32 * bits / 8]; 4-bit pairs share a byte, low first."""
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

    Parts of different widths or zero points are widened to 8 bits first, which
    is exact; a missing minimum counts as zero.
    """
    forms = {(p.bits, p.zero_point if isinstance(p.zero_point, int) else -1) for p in parts}
    if len(forms) > 1:
        parts = [p.widened() for p in parts]
    zero_point: int | np.ndarray = parts[0].zero_point
    if not isinstance(zero_point, int):
        zero_point = np.concatenate([np.asarray(p.zero_point) for p in parts])
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


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """GGUF's 16 bytes -> 32 values: low nibbles are values 0-15, high nibbles 16-31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _high_bits(qh: np.ndarray) -> np.ndarray:
    """Q5's 4 bytes of fifth bits (little-endian uint32, bit j for value j) -> 0 or 16 per value."""
    bits = np.unpackbits(qh, axis=-1, bitorder="little")
    return (bits << 4).astype(np.uint8)


def from_gguf(gguf_type: str, raw: np.ndarray, k: int) -> Blocks:
    """Blocks from a GGUF tensor's bytes: ``raw`` is uint8 [N, bytes per row], K values per row.

    Example:
        >>> raw = np.zeros((2, 34), np.uint8)
        >>> from_gguf("Q8_0", raw, 32).bits
        8
    """
    if gguf_type not in _BLOCK_BYTES:
        raise errors.ModelFormatError(
            f"GGUF type {gguf_type} is not carried; carried: {', '.join(SUPPORTED)}. "
            "Keep such tensors as float (the carry does), or build at int4, int8 or fp32."
        )
    if k % BLOCK:
        raise errors.ModelFormatError(
            f"rows of {k} values are not whole blocks of {BLOCK}: this tensor cannot be "
            "carried; keep it as float, or build at int4, int8 or fp32."
        )
    n = raw.shape[0]
    blocks = np.ascontiguousarray(raw, dtype=np.uint8).reshape(
        n, k // BLOCK, _BLOCK_BYTES[gguf_type]
    )
    d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    if gguf_type == "Q8_0":
        q = (blocks[..., 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        return Blocks(q, d, 128, 8, gguf_type=gguf_type)
    if gguf_type == "Q4_0":
        return Blocks(_nibbles(blocks[..., 2:]), d, 8, 4, gguf_type=gguf_type)
    if gguf_type == "Q4_1":
        m = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        return Blocks(_nibbles(blocks[..., 4:]), d, 0, 4, mins=m, gguf_type=gguf_type)
    if gguf_type == "Q5_0":
        q5 = _nibbles(blocks[..., 6:]) | _high_bits(blocks[..., 2:6])
        return Blocks((q5 + 112).astype(np.uint8), d, 128, 8, gguf_type=gguf_type)
    # Q5_1
    m = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    q5 = _nibbles(blocks[..., 8:]) | _high_bits(blocks[..., 4:8])
    return Blocks(q5, d, 0, 8, mins=m, gguf_type=gguf_type)
