"""Exact effectual MACs of ``conv3d`` and ``conv_transpose`` layers from their masks.

Counted on the layer's direct conv (:mod:`traces.stats.convnd`) in Sparseloop's vocabulary
(:mod:`traces.stats.accounting`):

=================  ===============================  ==========================================
layer pass         direct-conv pass                 effectual (report; GEMM view where it differs)
=================  ===============================  ==========================================
conv3d forward     forward                          ``x ∧ w ∧ y_sel``
conv3d bwd-data    backward-data                    ``dy ∧ w`` landing inside ``x``; all ``dy ∧ w``
conv3d bwd-weight  backward-weight                  ``x ∧ dy ∧ dw_needed``
transposed fwd     backward-data (of ``x``)         ``x ∧ w`` landing inside ``y`` (on ``y_sel``);
                                                    all ``x ∧ w`` (on ``y_sel`` or off ``y``)
transposed bwd-d   forward (over ``dy``)            ``dy ∧ w`` (every ``dx`` needed)
transposed bwd-w   backward-weight                  ``x ∧ dy ∧ dw_needed``
=================  ===============================  ==========================================

So a transposed conv never counts a product with a zero inserted between input elements: its
forward multiplies each input element by each kernel tap once. Without a needed-output mask the sums
factor into per-channel and per-window counts; with one, chunked float32 products of the 0/1 masks
give exact integers (partial sums below 2**24) summed in int64.
"""

from __future__ import annotations

import math

import numpy as np

from ..format.layer import LayerSpec
from .convnd import ConvNd, geometry_nd, group_weight, im2col_nd, rows_nd, tap_views, valid_1d

_CHUNK_ELEMENTS = 1 << 24  # im2col elements per chunk (64 MB of float32)


def _chunks(n: int, per_sample: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(per_sample, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def forward_count(g: ConvNd, x: np.ndarray, w: np.ndarray, y_sel: np.ndarray | None = None) -> int:
    """``Σ y_sel · (im2col(x) · Wᵀ)`` of the direct conv (every output needed when ``y_sel`` is None)."""
    total = 0
    if y_sel is None:  # Σ_kr colsum(A)[kr] · Σ_k B[k, kr]
        per_c = x.sum(axis=0, dtype=np.int64)  # (C, *in)
        col = np.stack([v.reshape(v.shape[0], -1).sum(axis=1) for v in tap_views(per_c, g)],
                       axis=1)  # (C, taps)
        for grp in range(g.groups):
            wsum = group_weight(w, g, grp).reshape(g.kg, g.cg, -1).sum(axis=0, dtype=np.int64)  # (Cg, taps)
            total += int((col[grp * g.cg:(grp + 1) * g.cg] * wsum).sum())
        return total
    for grp in range(g.groups):
        b = group_weight(w, g, grp).astype(np.float32).T  # (Kr, Kg)
        for sl in _chunks(x.shape[0], g.positions * g.cg * math.prod(g.kernel)):
            prod = im2col_nd(x[sl], g, grp).astype(np.float32) @ b
            total += int(prod[rows_nd(y_sel[sl], g, grp)].sum(dtype=np.float64))
    return total


def backward_data_count(g: ConvNd, dy: np.ndarray, w: np.ndarray) -> tuple[int, int]:
    """``dy ∧ w`` of the direct conv: (every product, the products landing inside the input)."""
    dyk = dy.sum(axis=0, dtype=np.int64)  # (Kout, *out)
    wk = w.sum(axis=1, dtype=np.int64)  # (Kout, *k)
    gemm = int((dyk.reshape(len(dyk), -1).sum(axis=1) * wk.reshape(len(wk), -1).sum(axis=1)).sum())
    # reach[k, *taps] = Σ_pos dyk[k, pos]·Π_d valid_d[tap_d, pos_d], in float64 (exact integer counts)
    nd = len(g.kernel)
    letters = "abc"[:nd]
    taps_ = "ijl"[:nd]
    spec = f"K{letters}," + ",".join(f"{t}{a}" for t, a in zip(taps_, letters, strict=True)) + f"->K{taps_}"
    reach = np.einsum(spec, dyk.astype(np.float64), *[valid_1d(g, d).astype(np.float64) for d in range(nd)])
    return gemm, int((np.rint(reach).astype(np.int64) * wk).sum())


def backward_data_needed_count(g: ConvNd, dy: np.ndarray, w: np.ndarray, keep: np.ndarray,
                               pad_value: bool) -> int:
    """``dy ∧ w`` of the direct conv whose product lands on a ``keep`` element of the input
    (``keep (n, C, *in)``), or off the input when ``pad_value``."""
    total = 0
    for grp in range(g.groups):
        wg = group_weight(w, g, grp)  # (Kg, Kr)
        acc = np.zeros(wg.shape, np.int64)
        for sl in _chunks(dy.shape[0], g.positions * g.cg * math.prod(g.kernel)):
            a = rows_nd(dy[sl], g, grp).astype(np.float32)  # (rows, Kg)
            acc += (a.T @ im2col_nd(keep[sl], g, grp, pad_value).astype(np.float32)).astype(np.int64)
        total += int(acc[wg].sum())
    return total


def backward_weight_count(g: ConvNd, x: np.ndarray, dy: np.ndarray,
                          dw_needed: np.ndarray | None = None) -> int:
    """``Σ dw_needed · (im2col(x)ᵀ · rows(dy))`` of the direct conv (``dw_needed`` in the weight's
    shape; None: every weight gradient needed)."""
    total = 0
    for grp in range(g.groups):
        if dw_needed is None:  # Σ_m rowsum(A)[m] · rowsum(D)[m]
            xs = x[:, grp * g.cg:(grp + 1) * g.cg].sum(axis=1, dtype=np.int64)  # (n, *in)
            field = sum(tap_views(xs, g))  # (n, *out): non-zeros per receptive field
            ds = dy[:, grp * g.kg:(grp + 1) * g.kg].sum(axis=1, dtype=np.int64)
            total += int((field * ds).sum())
            continue
        need = group_weight(dw_needed, g, grp).T  # (Kr, Kg)
        acc = np.zeros(need.shape, np.int64)
        for sl in _chunks(x.shape[0], g.positions * g.cg * math.prod(g.kernel)):
            acc += (im2col_nd(x[sl], g, grp).T.astype(np.float32)
                    @ rows_nd(dy[sl], g, grp).astype(np.float32)).astype(np.int64)
        total += int(acc[need].sum())
    return total


def effectual(spec: LayerSpec, pass_: str, masks: dict) -> tuple[int, int]:
    """Effectual MACs of one pass of a ``conv3d`` or ``conv_transpose`` layer: (as the report
    counts them, in the GEMM view: every product of the pass's GEMM, those landing outside the
    result included). ``masks``: bool ``x``, ``w``, ``dy`` and optional ``y_sel``, ``dw_needed``."""
    g = geometry_nd(spec)
    w, sel = masks["w"], masks.get("y_sel")
    if spec.kind == "conv3d":
        if pass_ == "forward":
            e = forward_count(g, masks["x"], w, sel)
            return e, e
        if pass_ == "backward_data":
            gemm, inside = backward_data_count(g, masks["dy"], w)
            return inside, gemm
    elif pass_ == "forward":  # conv_transpose: x plays the direct conv's output gradient
        if sel is None:
            gemm, inside = backward_data_count(g, masks["x"], w)
            return inside, gemm
        return (backward_data_needed_count(g, masks["x"], w, sel, False),
                backward_data_needed_count(g, masks["x"], w, sel, True))
    elif pass_ == "backward_data":  # every dx needed: the direct conv's forward over dy
        e = forward_count(g, masks["dy"], w)
        return e, e
    if pass_ == "backward_weight":
        roles = {"conv3d": ("x", "dy"), "conv_transpose": ("dy", "x")}[spec.kind]
        e = backward_weight_count(g, masks[roles[0]], masks[roles[1]], masks.get("dw_needed"))
        return e, e
    raise KeyError(f"no GEMM for pass {pass_!r}")
