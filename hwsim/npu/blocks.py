"""Reductions over consecutive blocks of an array axis (array folds, stream chunks), no padded copies.

The tile model (``hwsim.npu.tiles``) reduces operand masks and per-PE work over blocks of ``rows``,
``cols`` or ``stream_chunk`` elements; a short last block is reduced apart. Counts of booleans and
maxima along a contiguous axis take the fast paths numpy leaves out (a uint8 accumulator; pairwise
halving).
"""

from __future__ import annotations

import numpy as np

from traces.stats.accounting import count_dtype


def block_reduce(x: np.ndarray, axis: int, size: int, op: np.ufunc, dtype: type | None = None) -> np.ndarray:
    """Reduce ``x`` with ``op`` over consecutive blocks of ``size`` along ``axis``.

    Full blocks go through a reshape of the (view of the) leading part, the short last block
    apart: no padded copy of ``x``. Maxima of blocks along the contiguous axis of a 2-D array
    are taken by pairwise halving (:func:`halving`): numpy's maximum over a short inner axis is
    ~3× slower (its sums are not, and stay a reduce).
    """
    if (op is np.maximum and x.ndim == 2 and size > 1 and x.strides[axis] == x.itemsize
            and x.strides[1 - axis] != x.itemsize and dtype is None):
        return halving(x, size, op) if axis == 1 else halving(x.T, size, op).T
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    full = n // size * size
    parts = []
    if full:
        head = x[:full]
        parts.append(op.reduce(head.reshape(full // size, size, *x.shape[1:]), axis=1, dtype=dtype))
    if full < n:
        parts.append(op.reduce(x[full:], axis=0, dtype=dtype)[None])
    if not parts:
        return np.moveaxis(np.zeros((0, *x.shape[1:]), dtype or x.dtype), 0, axis)
    return np.moveaxis(np.concatenate(parts) if len(parts) > 1 else parts[0], 0, axis)


def halving(x: np.ndarray, size: int, op: np.ufunc) -> np.ndarray:
    """``op`` over consecutive blocks of ``size`` columns of ``x`` ``(R, N)`` → ``(R, ⌈N/size⌉)``,
    in ``x``'s dtype: full blocks by pairwise halving (element-wise ``op`` of the two halves of
    every block at once, ⌈log2 size⌉ passes), a short last block apart."""
    n_full = x.shape[1] // size
    parts = []
    if n_full:
        y = x[:, : n_full * size].reshape(x.shape[0], n_full, size)
        while y.shape[2] > 1:
            half = y.shape[2] // 2
            z = op(y[:, :, :half], y[:, :, half : 2 * half])
            if y.shape[2] % 2:
                op(z[:, :, 0], y[:, :, -1], out=z[:, :, 0])
            y = z
        parts.append(y[:, :, 0])
    if n_full * size < x.shape[1]:
        parts.append(op.reduce(x[:, n_full * size :], axis=1)[:, None])
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def block_sum(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Sum over consecutive blocks of ``size`` along ``axis`` (int64; float64 for float input).

    Boolean blocks count in the narrow type of :func:`traces.stats.accounting.count_dtype` before
    widening."""
    narrow = count_dtype(size)
    if x.dtype == np.bool_ and narrow is not None:
        return block_reduce(x.view(np.uint8), axis, size, np.add, narrow).astype(np.int64)
    return block_reduce(x, axis, size, np.add, np.float64 if x.dtype.kind == "f" else np.int64)


def block_max(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Maximum over consecutive blocks of ``size`` along ``axis``."""
    return block_reduce(x, axis, size, np.maximum)
