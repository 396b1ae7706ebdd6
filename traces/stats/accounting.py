"""Exact MAC accounting from masks, in Sparseloop's vocabulary (DESIGN.md).

Per pass, *algorithmic* MACs are ``M·K·N·groups``; *effectual* MACs are those whose two operands
are non-zero and whose result is needed:

- forward:          ``x ∧ w ∧ y_sel``
- backward-data:    ``dy ∧ w`` (GEMM view), and the count that leaves out products landing on
  padding (they are algorithmic but never needed after col2im)
- backward-weight:  ``x ∧ dy ∧ dw_needed``

Counts are integers. Without a selection mask the sums factor into per-channel or per-window
counts (no matmul at all); with one, a chunked float32 im2col matmul gives exact integer
partial sums (each is at most ``Kr`` or ``rows`` < 2**24) that are summed in int64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..format.layer import LayerSpec
from . import convnd_counts, products
from .im2col import as_conv, geometry, im2col, rows_of, tap_valid, taps

SHORT_TRAIL = 16  # count(): elements after the counted axis below which it is moved last first
_CHUNK_ELEMENTS = 1 << 24  # im2col elements per chunk: bounds memory at ~64 MB of float32
CONVND_KINDS = ("conv3d", "conv_transpose")  # counted by traces.stats.convnd_counts


@dataclass(frozen=True)
class PassCounts:
    """MAC counts of one pass of one layer for ``batch`` samples."""

    pass_: str
    batch: int
    algorithmic: int
    effectual: int
    effectual_no_padding: int | None = None  # backward-data only

    @property
    def density(self) -> float:
        """Effectual over algorithmic MACs."""
        return self.effectual / self.algorithmic if self.algorithmic else 0.0


def count_dtype(extent: int) -> type | None:
    """The narrowest unsigned type that holds a count of ``extent`` booleans (uint8 up to 255,
    uint16 up to 65,535; None beyond): summing a bool array's uint8 view in it is exact and 2-8×
    faster than an int64 sum, which casts every element."""
    return np.uint8 if extent <= 255 else np.uint16 if extent <= 65535 else None


def count(x: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """Non-zeros of the bool array ``x`` along ``axis`` (int64), accumulated in
    :func:`count_dtype` of the extent."""
    axes = (axis,) if isinstance(axis, int) else axis
    narrow = count_dtype(int(np.prod([x.shape[a] for a in axes])))
    if x.dtype != np.bool_ or narrow is None:
        return x.sum(axis=axis, dtype=np.int64)
    u8 = x.view(np.uint8)
    if isinstance(axis, int) and axis % x.ndim < x.ndim - 1 and math.prod(x.shape[axis:][1:]) <= SHORT_TRAIL:
        # a reduce whose inner loop would be a few elements (a weight's taps): over the last
        # axis of a copy instead (W (K, C, 3, 3) over C: 3.1 -> 0.9 ms)
        u8 = np.ascontiguousarray(np.moveaxis(u8, axis, -1))
        axis = -1
    return np.add.reduce(u8, axis=axis, dtype=narrow).astype(np.int64)


def _batch_chunks(n: int, per_sample: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(per_sample, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def forward_effectual(spec: LayerSpec, x: np.ndarray, w: np.ndarray,
                      y_sel: np.ndarray | None = None) -> int:
    """Effectual forward MACs: ``Σ y_sel · (x_col · wᵀ)``.

    Args:
        x: bool input mask ``(n, C, H, W)`` or ``(n, ..., F)``.
        w: bool weight mask of the weight shape.
        y_sel: bool output-selection mask of the output shape (None: every output needed).
    """
    if spec.kind in CONVND_KINDS:
        return convnd_counts.effectual(spec, "forward", {"x": x, "w": w, "y_sel": y_sel})[0]
    g = geometry(spec)
    x4, w4 = as_conv(spec, "x", x), as_conv(spec, "w", w)
    total = 0
    if y_sel is None:
        # Σ_m Σ_k Σ_kr A[m,kr]·B[k,kr] = Σ_kr colsum(A)[kr] · Σ_k B[k,kr]
        col = np.zeros((x4.shape[1], *g.kernel), np.int64)  # (C, R, S)
        for r, s, view in taps(count(x4, 0), g):
            col[:, r, s] = view.sum(axis=(-2, -1))
        for grp in range(g.groups):
            wsum = count(w4[grp * g.kg : (grp + 1) * g.kg], 0)  # (Cg, R, S)
            total += int((col[grp * g.cg : (grp + 1) * g.cg] * wsum).sum())
        return total
    sel4 = as_conv(spec, "y", y_sel)
    n = x4.shape[0]
    per_sample = g.out_hw[0] * g.out_hw[1] * g.cg * g.kernel[0] * g.kernel[1]
    for grp in range(g.groups):
        b = w4[grp * g.kg : (grp + 1) * g.kg].reshape(g.kg, -1).astype(np.float32)  # (Kg, Kr)
        for sl in _batch_chunks(n, per_sample):
            prod = im2col(x4[sl], g, grp) @ b.T  # (rows, Kg), exact integers
            total += int(prod[rows_of(sel4[sl], g, grp) > 0].sum(dtype=np.float64))
    return total


def backward_data_effectual(spec: LayerSpec, dy: np.ndarray, w: np.ndarray) -> tuple[int, int]:
    """Effectual backward-data MACs ``dy ∧ w``: (GEMM view, excluding products on padding)."""
    if spec.kind in CONVND_KINDS:
        inside, gemm = convnd_counts.effectual(spec, "backward_data", {"dy": dy, "w": w})
        return gemm, inside
    g = geometry(spec)
    dy4, w4 = as_conv(spec, "dy", dy), as_conv(spec, "w", w)
    dyk = count(dy4, 0)  # (K, P, Q)
    wk = count(w4, 1)  # (K, R, S)
    gemm = int((dyk.sum(axis=(1, 2)) * wk.sum(axis=(1, 2))).sum())
    vp, vq = tap_valid(g)  # (R, P), (S, Q)
    # reach[k, r, s] = Σ_pq vp[r, p]·dyk[k, p, q]·vq[s, q], as two float64 matrix products (exact:
    # every partial sum is an integer count below 2**53)
    reach = np.rint(vp.astype(np.float64) @ dyk.astype(np.float64) @ vq.T.astype(np.float64)).astype(np.int64)
    return gemm, int((reach * wk).sum())


def backward_weight_effectual(spec: LayerSpec, x: np.ndarray, dy: np.ndarray,
                              dw_needed: np.ndarray | None = None) -> int:
    """Effectual backward-weight MACs: ``Σ dw_needed · (x_colᵀ · dy)``."""
    if spec.kind in CONVND_KINDS:
        return convnd_counts.effectual(spec, "backward_weight", {"x": x, "w": None, "dy": dy,
                                                                 "dw_needed": dw_needed})[0]
    g = geometry(spec)
    x4, dy4 = as_conv(spec, "x", x), as_conv(spec, "dy", dy)
    total = 0
    if dw_needed is None:
        # Σ_kr Σ_k Σ_m A[m,kr]·D[m,k] = Σ_m rowsum(A)[m] · rowsum(D)[m], per group
        for grp in range(g.groups):
            xs = count(x4[:, grp * g.cg : (grp + 1) * g.cg], 1)  # (n, H, W)
            field = sum(view for *_, view in taps(xs, g))  # (n, P, Q) non-zeros per receptive field
            ds = count(dy4[:, grp * g.kg : (grp + 1) * g.kg], 1)  # (n, P, Q)
            total += int((field * ds).sum())
        return total
    need4 = as_conv(spec, "dw_needed", dw_needed)
    n = x4.shape[0]
    per_sample = g.out_hw[0] * g.out_hw[1] * g.cg * g.kernel[0] * g.kernel[1]
    for grp in range(g.groups):
        need = need4[grp * g.kg : (grp + 1) * g.kg].reshape(g.kg, -1).T > 0  # (Kr, Kg)
        acc = np.zeros(need.shape, dtype=np.int64)
        for sl in _batch_chunks(n, per_sample):
            acc += (im2col(x4[sl], g, grp).T @ rows_of(dy4[sl], g, grp)).astype(np.int64)
        total += int(acc[need].sum())
    return total


def pass_counts(spec: LayerSpec, batch: int, *, x: np.ndarray | None, w: np.ndarray | None,
                y_sel: np.ndarray | None = None, dy: np.ndarray | None = None,
                dw_needed: np.ndarray | None = None) -> list[PassCounts]:
    """Counts of every GEMM pass whose operand masks are given (``batch`` = their batch size)."""
    out: list[PassCounts] = []
    if not spec.gemm_passes:  # an embedding: a gather and a scatter-add, no MACs
        return out
    if spec.kind == "matmul":  # two activations: traces.stats.products
        masks = {"x": x, "w": w, "y_sel": y_sel, "dy": dy, "dw_needed": dw_needed}
        for pass_, given in (("forward", (x, w)), ("backward_data", (dy, w)), ("backward_weight", (x, dy))):
            if all(t is not None for t in given):
                e = products.effectual(spec, pass_, masks)
                out.append(PassCounts(pass_, batch, spec.gemm(pass_, batch).macs, e,
                                      e if pass_ == "backward_data" else None))
        return out
    if spec.kind in CONVND_KINDS:  # traces.stats.convnd_counts
        masks = {"x": x, "w": w, "y_sel": y_sel, "dy": dy, "dw_needed": dw_needed}
        for pass_, given in (("forward", (x, w)), ("backward_data", (dy, w)), ("backward_weight", (x, dy))):
            if all(t is not None for t in given):
                report, gemm = convnd_counts.effectual(spec, pass_, masks)
                out.append(PassCounts(pass_, batch, spec.gemm(pass_, batch).macs, gemm,
                                      report if report != gemm or pass_ == "backward_data" else None))
        return out
    if x is not None and w is not None:
        out.append(PassCounts("forward", batch, spec.gemm("forward", batch).macs,
                              forward_effectual(spec, x, w, y_sel)))
    if dy is not None and w is not None:
        full, no_pad = backward_data_effectual(spec, dy, w)
        out.append(PassCounts("backward_data", batch, spec.gemm("backward_data", batch).macs,
                              full, no_pad))
    if x is not None and dy is not None:
        out.append(PassCounts("backward_weight", batch, spec.gemm("backward_weight", batch).macs,
                              backward_weight_effectual(spec, x, dy, dw_needed)))
    return out
