"""N:M structured sparsity of weight masks: which groups satisfy "at most N non-zeros in M".

Convention (one for the recorder, the methods, ``trace stats`` and the simulator): a layer's
weight ``(Kout, C/g, R, S)`` (Linear: ``(out, in)``) is read as the matrix ``(Kout, Kr)`` with
``Kr = C·R·S/g``, the C-order flattening of everything after the output dimension. Forward's GEMM
reduces over ``Kr``, so *forward* N:M means groups of M consecutive elements along ``Kr`` in each
row. Backward-data reduces over the output channels of a group, so its N:M groups run down the
columns of each group's ``(Kout/g, Kr)`` block (a *transposable* mask satisfies both). A row
whose length is not a multiple of M ends in a short group, padded with zeros.
"""

from __future__ import annotations

import numpy as np


def weight_matrix(w_mask: np.ndarray) -> np.ndarray:
    """A weight mask of shape ``(Kout, ...)`` as the boolean matrix ``(Kout, Kr)``."""
    w = np.asarray(w_mask, dtype=bool)
    return w.reshape(w.shape[0], -1)


def group_counts(mat: np.ndarray, m: int) -> np.ndarray:
    """Non-zeros per group of ``m`` consecutive elements along the last axis.

    Args:
        mat: boolean ``(rows, k)``.
        m: group size.

    Returns:
        int ``(rows, ceil(k / m))``.
    """
    mat = np.asarray(mat, dtype=bool)
    rows, k = mat.shape
    pad = (-k) % m
    if pad:
        mat = np.concatenate([mat, np.zeros((rows, pad), bool)], axis=1)
    return mat.reshape(rows, -1, m).sum(axis=2, dtype=np.int64)


def nm_fraction(mat: np.ndarray, n: int, m: int) -> float:
    """Fraction of the groups of ``m`` along the last axis of ``mat`` with at most ``n`` non-zeros
    (1.0 for an empty matrix)."""
    counts = group_counts(mat, m)
    return float((counts <= n).mean()) if counts.size else 1.0


def satisfies_nm(mat: np.ndarray, n: int, m: int) -> bool:
    """True when every group of ``m`` along the last axis has at most ``n`` non-zeros."""
    return bool((group_counts(mat, m) <= n).all())


def forward_nm(w_mask: np.ndarray, n: int, m: int) -> bool:
    """The weight mask is N:M along ``Kr`` (forward's reduction): sparse tensor cores apply."""
    return satisfies_nm(weight_matrix(w_mask), n, m)


def backward_data_nm(w_mask: np.ndarray, n: int, m: int, groups: int = 1) -> bool:
    """The weight mask is N:M along each group's output channels (backward-data's reduction)."""
    mat = weight_matrix(w_mask)
    per = mat.shape[0] // groups
    return all(satisfies_nm(mat[g * per:(g + 1) * per].T, n, m) for g in range(groups))
