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

import itertools
from functools import lru_cache

import numpy as np


def weight_matrix(w_mask: np.ndarray) -> np.ndarray:
    """A weight mask of shape ``(Kout, ...)`` as the boolean matrix ``(Kout, Kr)``."""
    w = np.asarray(w_mask, dtype=bool)
    return w.reshape(w.shape[0], -1)


GROUPINGS = ("kr", "channels")


def grouped_matrix(w_mask: np.ndarray, grouping: str = "kr") -> np.ndarray:
    """The ``(Kout, Kr)`` matrix whose consecutive elements form the N:M groups.

    ``"kr"``: ``Kr`` in the trace's ``(C, R, S)`` order (:func:`weight_matrix`); ``"channels"``:
    ``(R, S, C)`` order, so groups run along input channels at each kernel position (the official
    SR-STE code's grouping, and the K order of NHWC implicit-GEMM kernels). Equal for linear layers.
    """
    w = np.asarray(w_mask, dtype=bool)
    if grouping == "channels" and w.ndim == 4:
        w = np.moveaxis(w, 1, -1)  # (Kout, R, S, C)
    elif grouping not in GROUPINGS:
        raise ValueError(f"N:M grouping must be one of {GROUPINGS}, got {grouping!r}")
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


# -- building N:M masks (magnitude pruning, the nm training method, synthetic traces) ---------------

MAX_PATTERNS = 100_000  # transposable masks: exact pattern search up to this many candidate blocks


def check_nm(n: int, m: int) -> None:
    """Raise ValueError naming the option when ``n:m`` is not a valid N:M ratio (1 <= n <= m)."""
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
        raise ValueError(f"m (group size) must be a positive integer, got {m!r}; e.g. m=4 for 2:4")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= m:
        raise ValueError(f"n (kept per group) must be an integer in 1..m={m}, got {n!r}; e.g. n=2, m=4")


def nm_mask(scores: np.ndarray, n: int, m: int, grouping: str = "kr") -> np.ndarray:
    """Keep the ``n`` largest ``scores`` of every group of ``m`` along ``Kr`` (the convention above;
    ``grouping="channels"``: along input channels, :func:`grouped_matrix`).

    Args:
        scores: ``(Kout, ...)`` (e.g. ``|W|``); ties go to the earlier element.
        n, m: keep ``n`` of every ``m``; a short last group keeps at most ``n``.

    Returns:
        bool mask of the shape of ``scores`` with at most ``n`` ones per group.
    """
    check_nm(n, m)
    s = np.asarray(scores, dtype=np.float64)
    if grouping == "channels" and s.ndim == 4:  # group along C: solve in (Kout, R, S, C), move back
        return np.moveaxis(nm_mask(np.moveaxis(s, 1, -1), n, m), -1, 1)
    mat = s.reshape(s.shape[0], -1)  # (Kout, Kr)
    rows, k = mat.shape
    pad = (-k) % m
    padded = np.concatenate([mat, np.full((rows, pad), -np.inf)], axis=1) if pad else mat
    g = padded.reshape(rows, -1, m)  # (Kout, groups, m)
    top = np.argsort(-g, axis=2, kind="stable")[:, :, :n]
    keep = np.zeros(g.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=2)
    return keep.reshape(rows, -1)[:, :k].reshape(s.shape)


@lru_cache(maxsize=16)
def transposable_patterns(n: int, m: int) -> np.ndarray:
    """Every ``m × m`` 0/1 block with exactly ``n`` ones in each row and each column.

    Returns:
        bool ``(P, m, m)`` in a fixed order (2:4: P = 90; 1:4: 24). Raises ValueError when there
        are more than :data:`MAX_PATTERNS` candidates to enumerate (use the greedy picker).
    """
    check_nm(n, m)
    rows = [np.isin(np.arange(m), c) for c in itertools.combinations(range(m), n)]
    if len(rows) ** m > MAX_PATTERNS:
        raise ValueError(f"transposable {n}:{m}: {len(rows)}^{m} candidate blocks exceed {MAX_PATTERNS}; "
                         "use the greedy picker")
    cand = np.array(list(itertools.product(rows, repeat=m)), dtype=bool)  # (C, m, m)
    return cand[(cand.sum(axis=1) == n).all(axis=1)]


def _exact_blocks(blocks: np.ndarray, n: int, m: int) -> np.ndarray:
    """``(B, m, m)`` scores → the best transposable pattern of each block (argmax of score · pattern)."""
    pats = transposable_patterns(n, m)  # (P, m, m)
    best = np.argmax(blocks.reshape(len(blocks), -1) @ pats.reshape(len(pats), -1).T.astype(np.float64),
                     axis=1)  # (B,)
    return pats[best]


def _greedy_blocks(blocks: np.ndarray, n: int, m: int) -> np.ndarray:
    """``(B, m, m)`` scores → per block, take elements by decreasing score while their row and
    column hold fewer than ``n`` (valid, not always optimal)."""
    b = len(blocks)
    order = np.argsort(-blocks.reshape(b, -1), axis=1, kind="stable")  # (B, m·m)
    keep = np.zeros((b, m * m), dtype=bool)
    row_n, col_n = np.zeros((b, m), np.int64), np.zeros((b, m), np.int64)
    idx = np.arange(b)
    for step in range(m * m):
        e = order[:, step]
        r, c = e // m, e % m
        ok = (row_n[idx, r] < n) & (col_n[idx, c] < n)
        keep[idx[ok], e[ok]] = True
        row_n[idx[ok], r[ok]] += 1
        col_n[idx[ok], c[ok]] += 1
    return keep.reshape(b, m, m)


def transposable_solver(n: int, m: int) -> str:
    """``"exact"`` (all patterns enumerated) or ``"greedy"`` for this N:M."""
    try:
        transposable_patterns(n, m)
    except ValueError:
        return "greedy"
    return "exact"


def transposable_mask(scores: np.ndarray, n: int, m: int, groups: int = 1) -> np.ndarray:
    """An N:M mask along ``Kr`` *and* along each group's output channels, per ``m × m`` block.

    Each group's ``(Kout/g, Kr)`` matrix is tiled into ``m × m`` blocks (edges padded with score
    −1, dropped afterwards); each block gets the pattern with exactly ``n`` ones per row and column
    that maximizes the sum of kept scores (exact: all patterns scored at once; greedy beyond
    :data:`MAX_PATTERNS` candidates).

    Args:
        scores: ``(Kout, ...)``, non-negative (e.g. ``|W|``).
        groups: the conv's groups (output channels split evenly).

    Returns:
        bool mask of the shape of ``scores``.
    """
    check_nm(n, m)
    s = np.asarray(scores, dtype=np.float64)
    mat = s.reshape(s.shape[0], -1)  # (Kout, Kr)
    pick = _exact_blocks if transposable_solver(n, m) == "exact" else _greedy_blocks
    per, k = mat.shape[0] // groups, mat.shape[1]
    out = np.zeros(mat.shape, dtype=bool)
    for g in range(groups):
        sub = mat[g * per:(g + 1) * per]
        pr, pc = (-per) % m, (-k) % m
        padded = np.pad(sub, ((0, pr), (0, pc)), constant_values=-1.0)  # (R, C), multiples of m
        r_b, c_b = padded.shape[0] // m, padded.shape[1] // m
        blocks = padded.reshape(r_b, m, c_b, m).transpose(0, 2, 1, 3).reshape(-1, m, m)  # (B, m, m)
        keep = pick(blocks, n, m).reshape(r_b, c_b, m, m).transpose(0, 2, 1, 3).reshape(padded.shape)
        out[g * per:(g + 1) * per] = keep[:per, :k]
    return out.reshape(s.shape)


def random_nm_mask(rng: np.random.Generator, shape: tuple[int, ...], n: int, m: int,
                   transposable: bool = False, groups: int = 1) -> np.ndarray:
    """A seeded random N:M weight mask of ``shape``: each group (or block) keeps ``n`` random
    positions (uniform per group; transposable: the best pattern for uniform random scores)."""
    scores = rng.random(shape)
    return transposable_mask(scores, n, m, groups) if transposable else nm_mask(scores, n, m)


def parse_nm(text: str) -> tuple[int, int, bool]:
    """``"2:4"`` → ``(2, 4, False)``; a trailing ``t`` (``"2:4t"``) asks for transposable masks."""
    t = text.strip().lower()
    transposable = t.endswith("t")
    try:
        n, m = (int(v) for v in t.rstrip("t").split(":"))
    except ValueError:
        raise ValueError(f"expected N:M such as 2:4 (or 2:4t for transposable), got {text!r}") from None
    check_nm(n, m)
    return n, m, transposable
