"""A ``matmul`` layer (two activations, ``C = A·B``) as GEMM operands, per group.

A group is one index of the samples and the batch dimensions (``N·groups`` of them, heads
included); both operands are dynamic masks, the result's structural mask is ``y_sel``:

==================  =============  =============  ============================
pass                A              B              needed C
==================  =============  =============  ============================
forward             A  (M×K)       B  (K×N)       y_sel (causal, top-k...), else all
backward_data       dC (M×N)       Bᵀ (N×K)       all of dA
backward_weight     Aᵀ (K×M)       dC (M×N)       dw_needed, else all of dB
==================  =============  =============  ============================

Effectual MACs are exact integer counts (:mod:`traces.stats.products`).
"""

from __future__ import annotations

import numpy as np

from traces.format.layer import LayerSpec
from traces.stats import products
from traces.stats.products import per_group


def operands(spec: LayerSpec, pass_: str, masks: dict[str, np.ndarray | None],
             cache: dict | None = None, order: str = "C") -> list:
    """The GEMM operands of every group of one pass (``hwsim.workload.GemmOperands``); masks as in
    :func:`hwsim.workload.operands` (``w`` is B, per sample). ``cache`` and ``order`` are unused:
    the operands are views of the masks, nothing is gathered."""
    from ..workload import GemmOperands

    def groups(t: str) -> np.ndarray | None:
        m = masks.get(t)
        return None if m is None else per_group(m.astype(bool, copy=False))

    if pass_ == "forward":
        a, b, need = groups("x"), groups("w"), groups("y_sel")
        return [GemmOperands(a[g], b[g], None if need is None else need[g]) for g in range(len(a))]
    if pass_ == "backward_data":
        dy, b = groups("dy"), groups("w")
        return [GemmOperands(dy[g], b[g].T, None) for g in range(len(dy))]
    if pass_ == "backward_weight":
        a, dy, need = groups("x"), groups("dy"), groups("dw_needed")
        return [GemmOperands(a[g].T, dy[g], None if need is None else need[g]) for g in range(len(a))]
    raise KeyError(f"no GEMM for pass {pass_!r}")


def operand_counts(spec: LayerSpec, pass_: str, masks: dict[str, np.ndarray | None]) -> list[tuple[int, int]]:
    """Non-zeros of A and B for every group of one pass."""
    a_t, b_t = {"forward": ("x", "w"), "backward_data": ("dy", "w"), "backward_weight": ("x", "dy")}[pass_]
    a = per_group(masks[a_t]).sum(axis=(1, 2), dtype=np.int64)  # (groups,)
    b = per_group(masks[b_t]).sum(axis=(1, 2), dtype=np.int64)
    return [(int(i), int(j)) for i, j in zip(a, b, strict=True)]


def effectual(spec: LayerSpec, pass_: str, masks: dict) -> tuple[int, int]:
    """Effectual MACs of a pass (as counted in the report, in the GEMM view: the same here;
    :func:`traces.stats.products.effectual`)."""
    e = products.effectual(spec, pass_, masks)
    return e, e
