"""N:M compression of the stationary weight operand along K (SCALE-Sim v3's layer-wise sparsity).

A lockstep systolic array with ``sparse.structured`` on operand ``b`` stores B ``(K, N)`` as
blocked ELLPACK: every group of ``m`` consecutive rows of a column keeps its non-zeros in ``n``
slots (padded with zeros when it holds fewer), so the GEMM runs with ``K' < K`` rows of B.
As scalesim 3.0.0 (``compute/operand_matrix.py``, ``create_filter_matrix`` with
``OptimizedMapping: false``) builds it, column by column, the slots of all groups are concatenated
and the trailing rows that are empty in every column are dropped::

    K' = max over columns of  n · g_last + (non-zeros in group g_last)

with ``g_last`` the column's last group holding a non-zero. For SCALE-Sim's own pattern (the first
``n`` of every ``m`` rows kept) and for any mask with exactly ``min(n, group length)`` non-zeros per
group, ``K' = (K // m)·n + min(n, K mod m)``: cycles and reads depend on the counts, not on where
the kept values sit, so a random N:M mask gives SCALE-Sim's numbers.

The streamed operand A ``(M, K)`` follows SCALE-Sim's ifmap operand: the columns of A that the
first column of B keeps, in slot order (``create_ifmap_matrix``); slots without one are zero.
"""

from __future__ import annotations

import numpy as np


def group_counts_k(b: np.ndarray, m: int) -> np.ndarray:
    """Non-zeros per group of ``m`` consecutive rows of ``b`` ``(K, N)``: int ``(ceil(K/m), N)``."""
    k, n_cols = b.shape
    pad = (-k) % m
    padded = np.concatenate([b, np.zeros((pad, n_cols), bool)]) if pad else b
    return padded.reshape(-1, m, n_cols).sum(axis=1, dtype=np.int64)


def is_nm(b: np.ndarray, n: int, m: int) -> bool:
    """True when every group of ``m`` rows of every column of ``b`` ``(K, N)`` has at most ``n``
    non-zeros (the weight mask is N:M along the reduction)."""
    return bool((group_counts_k(np.asarray(b, bool), m) <= n).all())


def compressed_k(b: np.ndarray, n: int, m: int) -> int:
    """``K'``: rows of the ELLPACK-compressed ``b`` ``(K, N)`` (at least 1)."""
    counts = group_counts_k(np.asarray(b, bool), m)  # (G, N)
    g = np.arange(counts.shape[0])[:, None]
    last = np.where(counts > 0, g, -1).max(axis=0)  # (N,) last non-empty group, -1: none
    cnt = np.take_along_axis(counts, np.maximum(last, 0)[None], axis=0)[0]
    ends = np.where(last >= 0, n * last + cnt, 0)
    return max(int(ends.max(initial=0)), 1)


def nm_compress(a: np.ndarray, b: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The operands the array sees: ``(a', b')`` of shapes ``(M, K')`` and ``(K', N)``.

    Args:
        a: bool ``(M, K)`` streamed operand.
        b: bool ``(K, N)`` weight operand, N:M along K (check with :func:`is_nm`).
        n, m: the N:M.

    ``b'[s, j]`` is True when slot ``s`` of column ``j`` holds a kept value (slot ``s`` is the
    ``s mod n``-th kept value of group ``s // n``); ``a'`` takes A's column of the ``s mod n``-th
    kept row of group ``s // n`` in B's first column.
    """
    b = np.asarray(b, bool)
    a = np.asarray(a, bool)
    kc = compressed_k(b, n, m)
    counts = group_counts_k(b, m)  # (G, N)
    slots = np.arange(counts.shape[0] * n)  # (G·n,)
    b_c = (slots[:, None] % n) < counts[slots // n]  # (G·n, N)
    kept0 = np.flatnonzero(b[:, 0])  # rows kept by the first column
    first_of_group = np.searchsorted(kept0, kept0 // m * m)  # index in kept0 of its group's first
    slot0 = kept0 // m * n + (np.arange(len(kept0)) - first_of_group)
    a_c = np.zeros((a.shape[0], max(len(slots), kc)), bool)
    a_c[:, slot0] = a[:, kept0]
    return a_c[:, :kc], b_c[:kc]
