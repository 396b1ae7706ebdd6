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

Effectual MACs are exact integer counts: batched float32 matrix products of 0/1 masks (every
partial sum is at most ``K``, ``M`` or ``N`` < 2**24, so exact), summed in int64.
"""

from __future__ import annotations

import numpy as np

from traces.format.layer import LayerSpec

_CHUNK_ELEMENTS = 1 << 24  # elements of a batched product computed at once (64 MB of float32)


def per_group(arr: np.ndarray) -> np.ndarray:
    """``(n, *batch, r, c)`` -> ``(n·groups, r, c)`` (a view)."""
    return arr.reshape(-1, *arr.shape[-2:])


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


def _masked_product_sum(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> int:
    """``Σ_g Σ_{i,j} keep[g,i,j] · (a[g] @ b[g])[i,j]`` for bool ``a (G,I,R)``, ``b (G,R,J)``,
    ``keep (G,I,J)``, in chunks of groups."""
    per = max(a.shape[1] * a.shape[2] + b.shape[1] * b.shape[2] + a.shape[1] * b.shape[2], 1)
    step = max(1, _CHUNK_ELEMENTS // per)
    total = 0
    for s in range(0, a.shape[0], step):
        prod = np.matmul(a[s:s + step], b[s:s + step], dtype=np.float32)  # (g, I, J) exact integers
        total += int(prod[keep[s:s + step]].sum(dtype=np.float64))
    return total


def effectual(spec: LayerSpec, pass_: str, masks: dict) -> tuple[int, int]:
    """Effectual MACs of a pass (as counted in the report, in the GEMM view: the same here).

    forward ``x ∧ w ∧ y_sel``; backward-data ``dy ∧ w``; backward-weight ``x ∧ dy ∧ dw_needed``.
    """
    x, w, dy = (None if masks.get(t) is None else per_group(masks[t].astype(bool, copy=False))
                for t in ("x", "w", "dy"))
    if pass_ == "forward":
        sel = masks.get("y_sel")
        if sel is None:  # Σ_k colsum(A)[k] · rowsum(B)[k], per group
            e = int((x.sum(axis=1, dtype=np.int64) * w.sum(axis=2, dtype=np.int64)).sum())
        else:
            e = _masked_product_sum(x, w, per_group(sel.astype(bool, copy=False)))
    elif pass_ == "backward_data":  # Σ_n colsum(dC)[n] · rowsum over k of B[k, n], per group
        e = int((dy.sum(axis=1, dtype=np.int64) * w.sum(axis=1, dtype=np.int64)).sum())
    elif pass_ == "backward_weight":
        need = masks.get("dw_needed")
        if need is None:  # Σ_m rowsum(A)[m] · rowsum(dC)[m], per group
            e = int((x.sum(axis=2, dtype=np.int64) * dy.sum(axis=2, dtype=np.int64)).sum())
        else:
            e = _masked_product_sum(np.swapaxes(x, 1, 2), dy, per_group(need.astype(bool, copy=False)))
    else:
        raise KeyError(f"no GEMM for pass {pass_!r}")
    return e, e
