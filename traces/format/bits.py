"""Packed bitmasks: 1 bit per element, C-order flattening, little bit order.

Bit ``i`` of byte ``j`` holds element ``8*j + i`` of the flattened tensor. Pad bits in the last
byte are zero. These helpers are the only place the bit convention is spelled out in code.
"""

from __future__ import annotations

import math

import numpy as np

BIT_ORDER = "little"


def packed_nbytes(numel: int) -> int:
    """Bytes needed to hold ``numel`` bits."""
    return (numel + 7) // 8


def pack(mask: np.ndarray) -> np.ndarray:
    """Pack a boolean array of any shape into ``uint8`` of shape ``(ceil(numel/8),)``."""
    flat = np.asarray(mask, dtype=bool).reshape(-1)
    return np.packbits(flat, bitorder=BIT_ORDER)


def unpack(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Unpack ``uint8`` bytes into a boolean array of ``shape``."""
    numel = math.prod(shape)
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), count=numel, bitorder=BIT_ORDER)
    return bits.view(bool).reshape(shape)


def popcount(packed: np.ndarray) -> int:
    """Number of set bits in a packed array."""
    return int(np.bitwise_count(np.asarray(packed, dtype=np.uint8)).sum(dtype=np.int64))


def pad_bits_clear(packed: np.ndarray, numel: int) -> bool:
    """True when the unused high bits of the last byte are zero."""
    rem = numel % 8
    if rem == 0 or packed.size == 0:
        return True
    return int(packed[-1]) >> rem == 0


def flip(packed: np.ndarray, flat_indices: np.ndarray) -> np.ndarray:
    """Return a copy of ``packed`` with the bits at ``flat_indices`` (element indices) toggled."""
    out = np.array(packed, dtype=np.uint8, copy=True)
    idx = np.asarray(flat_indices, dtype=np.int64)
    # Each index appears at most once, so an unbuffered XOR per byte is exact.
    np.bitwise_xor.at(out, idx >> 3, (1 << (idx & 7)).astype(np.uint8))
    return out


def changed_indices(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Element indices (sorted, int64) where two packed masks of equal length differ."""
    diff = np.bitwise_xor(old, new)
    return np.flatnonzero(np.unpackbits(diff, bitorder=BIT_ORDER)).astype(np.int64)
