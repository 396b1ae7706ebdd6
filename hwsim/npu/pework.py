"""The per-PE work of output-stationary per-PE skipping: every PE's effectual pairs per chunk.

In an output-stationary array whose PEs skip ineffectual pairs on their own, a PE (one output)
works through the pairs of its row of A and column of B where both are non-zero: per stream chunk,
an entry of the 0/1 product ``A·B``. :func:`os_pe_work` computes that product with float32 BLAS,
a slab of whole row folds at a time in reused per-thread buffers, and reduces it to what the tile
model (``hwsim.npu.tiles``) needs while it is in cache: per tile the slowest PE's pairs and all
PEs' pairs, and the operands' non-zeros per fold.
"""

from __future__ import annotations

import threading

import numpy as np

from .blocks import block_reduce, block_sum

SLAB_BYTES = 1 << 21  # per-PE work computed and reduced at once (rows of it): about a core's L2 …
SLAB_MIN_ROWS = 256  # … but never fewer rows than this (a wide N then spills to L3)
CAST_BYTES = 1 << 22  # A's rows cast to float32 at once (within a slab), read by BLAS from cache …
CAST_MIN_ROWS = 64  # … but never fewer rows than this

_scratch = threading.local()  # per thread: reused float32 buffers (no fresh pages per call)
SCRATCH_KEEP_BYTES = 1 << 24  # a larger buffer (B's chunk of a huge layer) is not kept


def _buffer(name: str, shape: tuple[int, int], order: str = "C") -> np.ndarray:
    """A float32 ``shape`` array in ``order`` from this thread's scratch memory named ``name``
    (contents undefined; valid until the next call with that name on this thread). Buffers up to
    ``SCRATCH_KEEP_BYTES`` stay with the thread (a few MB: the work slab, A's cast rows, B's
    chunk); a larger one is allocated for this call only."""
    size = shape[0] * shape[1]
    mem = getattr(_scratch, name, None)
    if mem is None or mem.size < size:
        mem = np.empty(size, np.float32)
        if 4 * size <= SCRATCH_KEEP_BYTES:
            setattr(_scratch, name, mem)
    if order == "F":
        return mem[:size].reshape(shape[::-1]).T
    return mem[:size].reshape(shape)


def os_pe_work(a: np.ndarray, b: np.ndarray, need: np.ndarray | None, r: int, c: int, s: int,
                chunks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Output-stationary per-PE skipping: each PE (one output) works through its effectual pairs
    of the chunk. Per tile ``(NF, MF, CH)``: the slowest PE's pairs (cycles) and all PEs' pairs;
    and the non-zeros of A per row fold and chunk ``(MF, CH)`` and of B per chunk and column fold
    ``(CH, NF)``.

    Every PE's pairs in a chunk are a float32 matmul of the 0/1 operands' K-slices ``a``
    ``(M, K)`` and ``b`` ``(K, N)`` (bool or float32; exact: a PE's count is at most the chunk
    length, below 2**24), computed a slab of whole row folds at a time into one reused buffer of
    about ``SLAB_BYTES`` (so it is reduced while in cache, and no page of a fresh ``M×N`` array
    is faulted in). A bool A is cast to float32 ``CAST_BYTES`` at a time into a reused buffer
    in A's own memory order (a contiguous cast that BLAS then reads from cache: no full-size
    float32 copy of A); B's chunk is cast whole. Unneeded outputs (``need`` bool ``(M, N)``) are
    zeroed, and the work is reduced over blocks of ``r`` rows and ``c`` columns (short last
    blocks apart, no padded copy): maxima, and sums in float32 where every block sum stays below
    2**24 (exact), else float64. A's non-zeros per row come out of the same matmul, as one more
    column of ones in B (cheaper than a matrix-vector product that reads A again); B's from a
    vector of ones."""
    k, m, n = a.shape[1], a.shape[0], b.shape[1]
    mf, nf = -(-m // r), -(-n // c)
    t = np.empty((chunks, mf, nf), np.float32)
    actual = np.empty((chunks, mf, nf), np.float64)
    a3 = np.empty((mf, chunks), np.float64)
    b3 = np.empty((chunks, nf), np.float64)
    sum_dtype = np.float32 if r * c * min(s, k) < 2**24 else np.float64
    # rows per slab: whole row folds, and at least SLAB_MIN_ROWS (a few rows would re-read B per slab)
    step = r * max(-(-SLAB_MIN_ROWS // r), SLAB_BYTES // (4 * (n + 1) * r))
    buf = _buffer("work", (min(step, m), n + 1))  # the work, and A's non-zeros per row
    cast = a.dtype != np.float32
    a_order = "F" if a.ndim == 2 and a.strides[0] < a.strides[1] else "C"
    b_order = "F" if b.ndim == 2 and b.strides[0] < b.strides[1] else "C"  # forward's B is Wᵀ
    a_rows = np.empty((chunks, m), np.float32)  # A's non-zeros per row in each chunk
    single = r == c == 1
    if not single:
        row_max = np.empty((chunks, mf, n), np.float32)  # per row fold and column: the work's maximum …
        row_sum = np.empty((chunks, mf, n), sum_dtype)  # … and sum
    for h in range(chunks):
        ks = slice(h * s, min(k, (h + 1) * s))
        width = ks.stop - ks.start
        # B's chunk and a column of ones, in B's memory order (a contiguous cast)
        bk = _buffer("b", (width, n + 1), b_order)
        bk[:, :n] = b[ks]
        bk[:, n] = 1
        b3[h] = block_sum(bk[:, n] @ bk[:, :n], 0, c)
        sub = max(CAST_MIN_ROWS, CAST_BYTES // (4 * max(width, 1)))  # A's rows cast at once
        a_buf = _buffer("a", (min(sub, step, m), width), a_order) if cast else None
        for m0 in range(0, m, step):
            m1 = min(m, m0 + step)
            f0, f1 = m0 // r, -(-m1 // r)
            both = buf[: m1 - m0]
            if a_buf is None:
                np.matmul(a[m0:m1, ks], bk, out=both)
            else:
                for s0 in range(m0, m1, len(a_buf)):
                    s1 = min(m1, s0 + len(a_buf))
                    a_f32 = a_buf[: s1 - s0]
                    np.copyto(a_f32, a[s0:s1, ks])
                    np.matmul(a_f32, bk, out=both[s0 - m0 : s1 - m0])
            work = both[:, :n]  # effectual pairs per PE
            a_rows[h, m0:m1] = both[:, n]
            if need is not None:  # a PE whose output is not needed does nothing
                _zero_unneeded(work, need[m0:m1])
            if single:
                t[h, f0:f1] = work
                actual[h, f0:f1] = work
                continue
            _row_blocks(work, r, np.maximum, np.float32, row_max[h, f0:f1])
            _row_blocks(work, r, np.add, sum_dtype, row_sum[h, f0:f1])
    if not single:  # the column folds, once for all chunks
        t[...] = _col_blocks(row_max.reshape(chunks * mf, n), c, np.maximum).reshape(t.shape)
        # block sums as a product with the 0/1 column-fold indicator (exact: integers below 2**24
        # in float32, else float64 below 2**53); 2-10x faster than the transposed reduce
        fold = np.zeros((n, nf), sum_dtype)
        fold[np.arange(n), np.arange(n) // c] = 1
        actual[...] = (row_sum.reshape(chunks * mf, n) @ fold).reshape(t.shape)
    a3[...] = block_sum(a_rows, 1, r).T
    t, actual, a3, b3 = (v.astype(np.int64) for v in (t, actual, a3, b3))
    return t.transpose(2, 1, 0), actual.transpose(2, 1, 0), a3, b3


def _row_blocks(x: np.ndarray, size: int, op: np.ufunc, dtype: type, out: np.ndarray) -> None:
    """``op`` over consecutive blocks of ``size`` rows of ``x`` ``(R, N)`` into ``out``
    ``(⌈R/size⌉, N)`` in ``dtype`` (one reduce over a reshaped view when the blocks are whole)."""
    if len(x) % size:
        out[...] = block_reduce(x, 0, size, op, dtype)
    else:
        op.reduce(x.reshape(-1, size, x.shape[1]), axis=1, dtype=dtype, out=out)


def _col_blocks(x: np.ndarray, size: int, op: np.ufunc) -> np.ndarray:
    """``op`` over consecutive blocks of ``size`` columns of ``x`` ``(R, N)`` → ``(R, ⌈N/size⌉)``:
    reduced as blocks of rows of the contiguous transpose (a reduce over a short contiguous inner
    axis, or pairwise halving along it, is 2-4× slower)."""
    return block_reduce(np.ascontiguousarray(x.T), 0, size, op).T


def _zero_unneeded(work: np.ndarray, need: np.ndarray) -> None:
    """``work *= need`` in place (``work`` float ``(R, N)``, ``need`` bool ``(R, N)``), touching
    only the rows with an unneeded output where those are few (backward-data's taps on padding:
    the border pixels' rows)."""
    partial = np.flatnonzero(~need.all(axis=1))
    if 4 * len(partial) < len(need):
        work[partial] *= need[partial]
    else:
        np.multiply(work, need, out=work)
