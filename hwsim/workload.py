"""The workload view of a trace: each training pass as GEMM operands (DESIGN.md).

For one layer, pass and group, ``A[M×K]·B[K×N] = C[M×N]`` with boolean non-zero masks of A and
B and the mask of C entries that are needed:

==================  =================  ==============  ====================================
pass                A                  B               needed C
==================  =================  ==============  ====================================
forward             X im2col           Wᵀ              y_sel (DSG), else all
backward_data       dY                 W               taps that land inside the input
backward_weight     X im2colᵀ          dY              dw_needed, else all
==================  =================  ==============  ====================================

Kinds with their own workload (a ``matmul`` of two activations) are in :mod:`hwsim.kinds`; the
functions here hand them over.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from traces.format.kinds.base import WEIGHT_OPERAND_KINDS
from traces.format.layer import LayerSpec
from traces.stats.accounting import (
    backward_data_effectual,
    backward_weight_effectual,
    count,
    forward_effectual,
)
from traces.stats.im2col import ConvGeometry, as_conv, geometry, im2col, rows_of, tap_valid, taps

from .kinds import WORKLOADS

# operand -> the trace tensor it is made of, per pass (for a matmul, w is B and dw its gradient)
OPERAND_TENSORS = {
    "forward": {"a": "x", "b": "w", "c": "y"},
    "backward_data": {"a": "dy", "b": "w", "c": "dx"},
    "backward_weight": {"a": "x", "b": "dy", "c": "dw"},
}
# operand -> precision field of the architecture, per pass, for a layer with a weight
OPERAND_KIND = WEIGHT_OPERAND_KINDS


def operand_kind(spec: LayerSpec, pass_: str) -> dict[str, str]:
    """Operand -> precision field of the architecture in one pass of this layer (a matmul's B
    operand is an activation, not a weight)."""
    return spec.geometry.operand_kinds[pass_]


@dataclass(frozen=True)
class GemmOperands:
    """One group of one pass: operand masks (bool) and the needed-output mask (None: all)."""

    a: np.ndarray  # (M, K) bool
    b: np.ndarray  # (K, N)
    need: np.ndarray | None  # (M, N) bool

    @property
    def dims(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.b.shape[1]


def operands(spec: LayerSpec, pass_: str, masks: dict[str, np.ndarray | None],
             cache: dict | None = None, order: str = "C") -> list[GemmOperands]:
    """The GEMM operands of every group of one pass, from the layer's masks.

    ``masks`` holds bool arrays for ``x``, ``w``, ``dy`` and optionally ``y_sel`` and
    ``dw_needed`` (``None`` where absent); activation masks may cover fewer samples than the batch.
    ``cache`` (a dict kept across the passes of one layer) lets forward and backward-weight share
    the im2col of ``x``, and backward-data and backward-weight the rows of ``dY`` (the same array
    object, so what is derived from its memory can be shared too). ``order`` is the im2col's
    memory order: ``"F"`` (column-major) is :func:`traces.stats.im2col.im2col`'s faster gather, for a
    model that reads it row slab by row slab (BLAS, or a cast into a column-major buffer).
    """
    if spec.kind in WORKLOADS:
        return WORKLOADS[spec.kind].operands(spec, pass_, masks, cache, order)
    g = geometry(spec)
    x = masks.get("x")
    cache = {} if cache is None else cache

    def xcol(grp: int) -> np.ndarray:
        if ("x", grp) not in cache:
            cache[("x", grp)] = im2col(as_conv(spec, "x", x.astype(bool, copy=False)), g, grp, bool, order)
        return cache[("x", grp)]

    def dyrows(grp: int) -> np.ndarray:
        if ("dy", grp) not in cache:
            cache[("dy", grp)] = rows_of(as_conv(spec, "dy", dy.astype(bool, copy=False)), g, grp, bool)
        return cache[("dy", grp)]

    w = masks["w"]
    dy = masks.get("dy")
    w4 = as_conv(spec, "w", w)
    out = []
    for grp in range(g.groups):
        wg = w4[grp * g.kg : (grp + 1) * g.kg].reshape(g.kg, -1)  # (Kg, Kr)
        if pass_ == "forward":
            a = xcol(grp)
            sel = masks.get("y_sel")
            need = None if sel is None else rows_of(as_conv(spec, "y", sel), g, grp, bool)
            out.append(GemmOperands(a, wg.T, need))
        elif pass_ == "backward_data":
            a = dyrows(grp)
            out.append(GemmOperands(a, wg, _valid_taps(spec, a.shape[0])))
        elif pass_ == "backward_weight":
            xa = xcol(grp)
            d = dyrows(grp)
            need_w = masks.get("dw_needed")
            need = None
            if need_w is not None:
                need = as_conv(spec, "w", need_w)[grp * g.kg : (grp + 1) * g.kg].reshape(g.kg, -1).T
            out.append(GemmOperands(xa.T, d, need))
        else:
            raise KeyError(f"no GEMM for pass {pass_!r}")
    return out


def operand_counts(spec: LayerSpec, pass_: str, masks: dict[str, np.ndarray | None]) -> list[tuple[int, int]]:
    """Non-zeros of A and B for every group of one pass — what :func:`operands` would hold, without
    building the im2col matrices (a model that needs only counts, e.g. the GPU's, uses this).

    The im2col count is a sum over kernel taps: each tap sees the input's per-pixel non-zero
    count (summed over the group's channels and the samples) on a strided, dilated window of the
    zero-padded input, so the cost is ``R·S`` slices of an ``H×W`` array, not ``M·K`` elements.
    """
    if spec.kind in WORKLOADS:
        return WORKLOADS[spec.kind].operand_counts(spec, pass_, masks)
    g = geometry(spec)
    w4 = as_conv(spec, "w", masks["w"])
    w_nnz = [int(w4[grp * g.kg:(grp + 1) * g.kg].sum()) for grp in range(g.groups)]
    if pass_ == "backward_data":
        dy4 = as_conv(spec, "dy", masks["dy"])
        return [(int(dy4[:, grp * g.kg:(grp + 1) * g.kg].sum()), w_nnz[grp]) for grp in range(g.groups)]
    x4 = as_conv(spec, "x", masks["x"])
    out = []
    for grp in range(g.groups):
        per_pixel = count(x4[:, grp * g.cg:(grp + 1) * g.cg], (0, 1))  # (H, W)
        xcol = sum(int(view.sum()) for *_, view in taps(per_pixel, g))  # one window per tap
        if pass_ == "forward":
            out.append((xcol, w_nnz[grp]))
        elif pass_ == "backward_weight":
            dy4 = as_conv(spec, "dy", masks["dy"])
            out.append((xcol, int(dy4[:, grp * g.kg:(grp + 1) * g.kg].sum())))
        else:
            raise KeyError(f"no GEMM for pass {pass_!r}")
    return out


def _valid_taps(spec: LayerSpec, rows: int) -> np.ndarray | None:
    """``(rows, Kr)``: which backward-data products land inside the input (None: all do)."""
    if spec.kind == "linear" or spec.padding == (0, 0):
        return None
    return _valid_taps_of(geometry(spec), rows)


@lru_cache(maxsize=4)
def _valid_taps_of(g: ConvGeometry, rows: int) -> np.ndarray:
    """:func:`_valid_taps` of one geometry, read-only and kept for the next layer of the same
    shape (a few MB each; ResNet-18's backward-data passes have 5 shapes)."""
    vp, vq = tap_valid(g)  # (R, P), (S, Q)
    (r, s), (p, q) = g.kernel, g.out_hw
    per_pixel = vp.T[:, None, None, :, None] & vq.T[None, :, None, None, :]  # (P, Q, 1, R, S)
    per_pixel = np.broadcast_to(per_pixel, (p, q, g.cg, r, s)).reshape(p * q, -1)
    out = np.tile(per_pixel, (rows // (p * q), 1))
    out.flags.writeable = False
    return out


def effectual(spec: LayerSpec, pass_: str, masks: dict) -> tuple[int, int]:
    """Effectual MACs of a pass from the masks: (as counted in the report, in the GEMM view).

    They differ in backward-data only, where products that land on padding are in the GEMM
    but never needed.
    """
    if spec.kind in WORKLOADS:
        return WORKLOADS[spec.kind].effectual(spec, pass_, masks)
    if pass_ == "forward":
        e = forward_effectual(spec, masks["x"], masks["w"], masks["y_sel"])
        return e, e
    if pass_ == "backward_data":
        gemm, no_pad = backward_data_effectual(spec, masks["dy"], masks["w"])
        return no_pad, gemm
    e = backward_weight_effectual(spec, masks["x"], masks["dy"], masks["dw_needed"])
    return e, e
