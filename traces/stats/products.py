"""Exact MAC accounting of ``matmul`` layers (products of two activations), numpy only.

Per group (sample and batch dimensions), ``A (M×K) · B (K×N)``; effectual MACs are those whose two
operands are non-zero and whose result is needed (DESIGN.md):

- forward:          ``x ∧ w ∧ y_sel``
- backward-data:    ``dy ∧ w`` (dA = dC · Bᵀ)
- backward-weight:  ``x ∧ dy ∧ dw_needed`` (dB = Aᵀ · dC)

Without a needed-output mask the sums factor into per-row or per-column counts; with one, batched
float32 products of the 0/1 masks give exact integers (every partial sum is at most ``K``, ``M``
or ``N`` < 2**24), summed in int64.
"""

from __future__ import annotations

import numpy as np

from ..format.layer import LayerSpec

_CHUNK_ELEMENTS = 1 << 24  # elements of a batched product computed at once (64 MB of float32)


def per_group(arr: np.ndarray) -> np.ndarray:
    """``(n, *batch, r, c)`` -> ``(n·groups, r, c)`` (a view)."""
    return arr.reshape(-1, *arr.shape[-2:])


def _masked_product_sum(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> int:
    """``Σ_g Σ_{i,j} keep[g,i,j] · (a[g] @ b[g])[i,j]`` for bool ``a (G,I,R)``, ``b (G,R,J)``,
    ``keep (G,I,J)``, in chunks of groups. A dense operand needs no product: with ``a`` all ones
    ``(a @ b)[i,j]`` is column ``j``'s count of ``b``, with ``b`` all ones row ``i``'s count of ``a``."""
    if a.all():  # Σ_j colsum(b)[j] · (needed entries of column j), per group
        return int((b.sum(axis=1, dtype=np.int64) * keep.sum(axis=1, dtype=np.int64)).sum())
    if b.all():  # Σ_i rowsum(a)[i] · (needed entries of row i), per group
        return int((a.sum(axis=2, dtype=np.int64) * keep.sum(axis=2, dtype=np.int64)).sum())
    per = max(a.shape[1] * a.shape[2] + b.shape[1] * b.shape[2] + a.shape[1] * b.shape[2], 1)
    step = max(1, _CHUNK_ELEMENTS // per)
    total = 0
    for s in range(0, a.shape[0], step):
        prod = np.matmul(a[s:s + step], b[s:s + step], dtype=np.float32)  # (g, I, J) exact integers
        total += int(prod[keep[s:s + step]].sum(dtype=np.float64))
    return total


def effectual(spec: LayerSpec, pass_: str, masks: dict) -> int:
    """Effectual MACs of one pass of a matmul layer from its masks (``x``, ``w``, ``dy``, and
    optionally ``y_sel``, ``dw_needed``; ``None`` where absent)."""
    x, w, dy = (None if masks.get(t) is None else per_group(masks[t].astype(bool, copy=False))
                for t in ("x", "w", "dy"))
    if pass_ == "forward":
        sel = masks.get("y_sel")
        if sel is None:  # Σ_k colsum(A)[k] · rowsum(B)[k], per group
            return int((x.sum(axis=1, dtype=np.int64) * w.sum(axis=2, dtype=np.int64)).sum())
        return _masked_product_sum(x, w, per_group(sel.astype(bool, copy=False)))
    if pass_ == "backward_data":  # Σ_n colsum(dC)[n] · (non-zeros of B's column n), per group
        return int((dy.sum(axis=1, dtype=np.int64) * w.sum(axis=1, dtype=np.int64)).sum())
    if pass_ == "backward_weight":
        need = masks.get("dw_needed")
        if need is None:  # Σ_m rowsum(A)[m] · rowsum(dC)[m], per group
            return int((x.sum(axis=2, dtype=np.int64) * dy.sum(axis=2, dtype=np.int64)).sum())
        return _masked_product_sum(np.swapaxes(x, 1, 2), dy, per_group(need.astype(bool, copy=False)))
    raise KeyError(f"no GEMM for pass {pass_!r}")
