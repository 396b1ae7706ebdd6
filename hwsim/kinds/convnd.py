"""``conv3d`` and ``conv_transpose`` layers as GEMM operands, per group (their direct conv:
:mod:`traces.stats.convnd`).

==================  ===================  ==================  ======================================
pass                A                    B                   needed C
==================  ===================  ==================  ======================================
conv3d forward      X im2col             Wᵀ                  y_sel (DSG), else all
conv3d bwd-data     dY rows              W                   taps that land inside X
conv3d bwd-weight   X im2colᵀ            dY rows             dw_needed, else all
transposed forward  X rows               W (Cin/g × ...)     taps that land inside Y (and on y_sel)
transposed bwd-d    dY im2col            Wᵀ                  all of dX
transposed bwd-w    X rowsᵀ              dY im2col           dw_needed (Cin/g × Cout/g·prod(k))
==================  ===================  ==================  ======================================

A transposed conv's forward GEMM has one row per *input* element position: the zeros a direct
conv over a zero-inserted input would multiply are not in it, and the products that land on the
cropped border (``padding``) are in the GEMM but not needed, as a direct conv's backward-data
products that land on its padding.
"""

from __future__ import annotations

import numpy as np

from traces.format.layer import LayerSpec
from traces.stats import convnd_counts
from traces.stats.convnd import geometry_nd, group_weight, im2col_count, im2col_nd, rows_nd, valid_taps_nd


def operands(spec: LayerSpec, pass_: str, masks: dict[str, np.ndarray | None],
             cache: dict | None = None, order: str = "C") -> list:
    """The GEMM operands of every group of one pass (``hwsim.workload.GemmOperands``); masks as in
    :func:`hwsim.workload.operands`. ``cache`` shares the im2col and the rows between passes;
    ``order`` is unused (the im2col is C-ordered)."""
    from ..workload import GemmOperands

    g = geometry_nd(spec)
    cache = {} if cache is None else cache
    transposed = spec.kind == "conv_transpose"
    col_t, row_t = ("dy", "x") if transposed else ("x", "dy")  # the direct conv's input and output gradient

    def col(grp: int) -> np.ndarray:
        if ("col", grp) not in cache:
            cache[("col", grp)] = im2col_nd(masks[col_t], g, grp)
        return cache[("col", grp)]

    def rows(grp: int) -> np.ndarray:
        if ("rows", grp) not in cache:
            cache[("rows", grp)] = rows_nd(masks[row_t], g, grp)
        return cache[("rows", grp)]

    w, sel, need_w = masks["w"], masks.get("y_sel"), masks.get("dw_needed")
    out = []
    for grp in range(g.groups):
        wg = group_weight(w, g, grp)  # (Kg, Kr) of the direct conv
        need_wg = None if need_w is None else group_weight(need_w, g, grp)
        if pass_ == "forward" and transposed:
            a = rows(grp)
            if sel is not None:
                need = im2col_nd(sel, g, grp)
            else:
                need = valid_taps_nd(g, masks["x"].shape[0])
            out.append(GemmOperands(a, wg, need))
        elif pass_ == "forward":
            out.append(GemmOperands(col(grp), wg.T, None if sel is None else rows_nd(sel, g, grp)))
        elif pass_ == "backward_data" and transposed:
            out.append(GemmOperands(col(grp), wg.T, None))
        elif pass_ == "backward_data":
            a = rows(grp)
            out.append(GemmOperands(a, wg, valid_taps_nd(g, masks["dy"].shape[0])))
        elif pass_ == "backward_weight" and transposed:
            out.append(GemmOperands(rows(grp).T, col(grp), need_wg))
        elif pass_ == "backward_weight":
            out.append(GemmOperands(col(grp).T, rows(grp), None if need_wg is None else need_wg.T))
        else:
            raise KeyError(f"no GEMM for pass {pass_!r}")
    return out


def operand_counts(spec: LayerSpec, pass_: str, masks: dict[str, np.ndarray | None]) -> list[tuple[int, int]]:
    """Non-zeros of A and B for every group of one pass, without building an im2col."""
    g = geometry_nd(spec)
    transposed = spec.kind == "conv_transpose"
    col_t, row_t = ("dy", "x") if transposed else ("x", "dy")

    def rows(grp: int) -> int:
        return int(masks[row_t][:, grp * g.kg:(grp + 1) * g.kg].sum())

    out = []
    for grp in range(g.groups):
        w_nnz = int(group_weight(masks["w"], g, grp).sum())
        if pass_ == "forward":
            out.append((rows(grp), w_nnz) if transposed else (im2col_count(masks[col_t], g, grp), w_nnz))
        elif pass_ == "backward_data":
            out.append((im2col_count(masks[col_t], g, grp), w_nnz) if transposed else (rows(grp), w_nnz))
        elif pass_ == "backward_weight":
            pair = (rows(grp), im2col_count(masks[col_t], g, grp))
            out.append(pair if transposed else pair[::-1])
        else:
            raise KeyError(f"no GEMM for pass {pass_!r}")
    return out


def effectual(spec: LayerSpec, pass_: str, masks: dict) -> tuple[int, int]:
    """Effectual MACs of a pass: (as counted in the report, in the GEMM view)
    (:func:`traces.stats.convnd_counts.effectual`)."""
    return convnd_counts.effectual(spec, pass_, masks)
