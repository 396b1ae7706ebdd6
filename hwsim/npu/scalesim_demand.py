"""SCALE-Sim 3.0.0's demand streams: which operand addresses its SRAMs are asked for, in order.

SCALE-Sim (``compute/systolic_compute_{ws,os,is}.py``) turns a layer into three *demand
matrices*, one row per cycle, one column per array row or column, ``-1`` where nothing is asked.
Its memory model walks them row by row, left to right. This module yields the same address
sequence (``-1`` entries left out) without building the matrices: per fold, the block of the
operand matrix that fold uses, padded to the array, optionally flipped upside down and skewed
(column ``c`` delayed by ``c`` cycles), read in the order of the skewed matrix.

Folds run column folds outer, row folds inner. With ``R × C`` the array (SCALE-Sim's
``ArrayHeight × ArrayWidth``), ``T`` the streamed length and the GEMM ``C[M×N] = A[M×K]·B[K×N]``:

====  =======================  ============================  ==========================
df    ifmap (``a``) block      filter (``b``) block          ofmap (``c``) block
====  =======================  ============================  ==========================
ws    M × R(k), skewed         R(k) × C(n), flipped          M × C(n), skewed
os    K × R(m), skewed         K × C(n), skewed              R(m) × C(n), flipped+skewed
is    R(k) × C(m), flipped     N × R(k), skewed              N × C(m), skewed
====  =======================  ============================  ==========================

A fold lasts ``2R + C + T − 2`` cycles (ws, is) or ``R + C + T − 2`` (os); the ofmap block starts
``2R − 1`` (ws, is) or ``T − 1`` (os) cycles into its fold.

Addresses (``operand_addresses``): SCALE-Sim's ``operand_matrix.py`` for a convolution's forward
pass — an im2col column ``k`` is ``(filter row, filter column, channel)`` with the channel fastest,
a row ``m`` is ``(sample, output row, output column)``, and an ifmap element's address is its
position in the (padded) input, so overlapping windows share addresses. Every other operand
(weights, outputs, linear layers, the backward passes' ``dY`` and ``Wᵀ``) has one address per
element, as SCALE-Sim's GEMM mode gives it; ``backward_weight``'s ``A`` is the transposed im2col
of ``X`` with the convolution's addresses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from traces.format.layer import LayerSpec

# per dataflow and operand: (block rows, block cols, flipped, skewed); rows/cols name what indexes
# them: "M"/"K"/"N" a whole GEMM dimension, "R:x"/"C:x" the fold's slice of x on the array
BLOCKS = {
    "ws": {"a": ("M", "R:K", False, True), "b": ("R:K", "C:N", True, False), "c": ("M", "C:N", False, True)},
    "os": {"a": ("K", "R:M", False, True), "b": ("K", "C:N", False, True), "c": ("R:M", "C:N", True, True)},
    "is": {"a": ("R:K", "C:M", True, False), "b": ("N", "R:K", False, True), "c": ("N", "C:M", False, True)},
}
# which GEMM dimension the array's rows and columns fold
FOLDED = {"ws": ("K", "N"), "os": ("M", "N"), "is": ("K", "M")}
# operand -> the GEMM dimensions of its matrix (row, col)
MATRIX = {"a": ("M", "K"), "b": ("K", "N"), "c": ("M", "N")}
FOLD_FILL = {"ws": 2, "is": 2, "os": 1}  # fold length = FOLD_FILL·R + C + T − 2
BATCH_ELEMENTS = 1 << 21  # folds are generated in batches of about this many block elements
INVALID = np.int64(-(1 << 62))  # a padded row or column: its sum with any address is negative


@dataclass(frozen=True)
class Gemm:
    """One group's GEMM as SCALE-Sim runs it. Every operand's address is separable: element
    ``(i, j)`` of its matrix has address ``parts[op][0][i] + parts[op][1][j]`` (``(rows,)`` and
    ``(cols,)`` int64 arrays)."""

    m: int
    k: int
    n: int
    parts: dict[str, tuple[np.ndarray, np.ndarray]]

    def space(self, op: str) -> int:
        """One past the largest address of ``op``."""
        rows, cols = self.parts[op]
        return int(rows.max() + cols.max()) + 1 if len(rows) and len(cols) else 1


def _unique(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(rows, dtype=np.int64) * cols, np.arange(cols, dtype=np.int64)


def operand_addresses(spec: LayerSpec, pass_: str, batch: int) -> Gemm:
    """The pass's GEMM (one group) and SCALE-Sim's address of every element of ``a``, ``b``, ``c``."""
    g = spec.gemm(pass_, batch)
    parts = {"a": _unique(g.m, g.k), "b": _unique(g.k, g.n), "c": _unique(g.m, g.n)}
    if spec.kind == "conv2d" and pass_ in ("forward", "backward_weight"):
        window, offset = _conv_ifmap(spec, batch)
        parts["a"] = (window, offset) if pass_ == "forward" else (offset, window)
    return Gemm(g.m, g.k, g.n, parts)


def _conv_ifmap(spec: LayerSpec, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """SCALE-Sim's ifmap address of one group's im2col element ``(m, k)``, split as
    ``window[m] + offset[k]``: the window's corner in the padded input, and the element's place
    in the window (``k = (filter row, filter column, channel)``, channel fastest)."""
    _, cg, fy, fx = spec.w_shape
    _, h, w = spec.x_shape
    _, oh, ow = spec.y_shape
    iy, ix = h + 2 * spec.padding[0], w + 2 * spec.padding[1]
    (sy, sx), (dy, dx) = spec.stride, spec.dilation
    b, oy, ox = np.meshgrid(np.arange(batch, dtype=np.int64), np.arange(oh, dtype=np.int64),
                            np.arange(ow, dtype=np.int64), indexing="ij")
    window = (((b * iy + oy * sy) * ix + ox * sx) * cg).ravel()
    r, s, ch = np.meshgrid(np.arange(fy, dtype=np.int64), np.arange(fx, dtype=np.int64),
                           np.arange(cg, dtype=np.int64), indexing="ij")
    offset = ((r * dy * ix + s * dx) * cg + ch).ravel()
    return window, offset


def fold_cycles(dataflow: str, rows: int, cols: int, gemm: Gemm) -> int:
    """Cycles of one fold."""
    t = {"ws": gemm.m, "os": gemm.k, "is": gemm.n}[dataflow]
    return FOLD_FILL[dataflow] * rows + cols + t - 2


def folds(dataflow: str, rows: int, cols: int, gemm: Gemm) -> tuple[int, int]:
    """(row folds, column folds)."""
    size = {"M": gemm.m, "K": gemm.k, "N": gemm.n}
    r_dim, c_dim = FOLDED[dataflow]
    return -(-size[r_dim] // rows), -(-size[c_dim] // cols)


def demand(dataflow: str, op: str, rows: int, cols: int, gemm: Gemm,
           with_cycles: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """SCALE-Sim's demand sequence of operand ``op`` in batches of folds: ``(addresses, cycles)``,
    both ``(n,)`` int64 (cycles: the demand-matrix row each address is asked in, without stalls;
    None unless ``with_cycles``)."""
    size = {"M": gemm.m, "K": gemm.k, "N": gemm.n}
    rf, cf = folds(dataflow, rows, cols, gemm)
    r_spec, c_spec, flipped, skewed = BLOCKS[dataflow][op]
    fold_len = fold_cycles(dataflow, rows, cols, gemm)
    prefix = 0
    if op == "c":
        prefix = gemm.k - 1 if dataflow == "os" else 2 * rows - 1

    def axis(spec_: str) -> tuple[str, int, str]:
        """(GEMM dimension, block length, which fold index offsets it: '', 'R' or 'C')."""
        if ":" in spec_:
            side, dim = spec_.split(":")
            return dim, rows if side == "R" else cols, side
        return spec_, size[spec_], ""

    (r_dim, n_r, r_side), (_, n_c, c_side) = axis(r_spec), axis(c_spec)
    # within a fold: the demand-matrix row of every block element, and the reading order
    rr, cc = np.meshgrid(np.arange(n_r, dtype=np.int64), np.arange(n_c, dtype=np.int64), indexing="ij")
    row_in_fold = (n_r - 1 - rr) if flipped else rr
    if skewed:
        row_in_fold = row_in_fold + cc
    order = np.lexsort((cc.ravel(), row_in_fold.ravel()))
    row_sorted = row_in_fold.ravel()[order] + prefix
    r_idx, c_idx = rr.ravel()[order], cc.ravel()[order]
    fold_ids = np.arange(rf * cf, dtype=np.int64)  # fold f: column fold f // rf, row fold f % rf
    per_batch = max(1, BATCH_ELEMENTS // max(n_r * n_c, 1))
    m_dim, _ = MATRIX[op]
    # the operand's address parts along the block's rows and columns, INVALID past the matrix
    row_part, col_part = gemm.parts[op] if r_dim == m_dim else gemm.parts[op][::-1]
    row_part = np.concatenate([row_part, np.full(n_r, INVALID)])
    col_part = np.concatenate([col_part, np.full(n_c, INVALID)])
    for start in range(0, len(fold_ids), per_batch):
        f = fold_ids[start:start + per_batch, None]
        off = {"R": (f % rf) * rows, "C": (f // rf) * cols, "": np.zeros_like(f)}
        a = row_part[r_idx[None, :] + off[r_side]] + col_part[c_idx[None, :] + off[c_side]]
        keep = a.ravel() >= 0
        cyc = None
        if with_cycles:
            cyc = (f * fold_len + row_sorted[None, :]).ravel()[keep]
        yield a.ravel()[keep], cyc


__all__ = ["BLOCKS", "Gemm", "demand", "fold_cycles", "folds", "operand_addresses"]
