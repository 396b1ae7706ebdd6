"""Per-layer weight densities for a target network density: uniform and Erdős–Rényi-Kernel (ERK).

- ``uniform``: every sparsified layer keeps the same fraction ``density`` of its weights.
- ``erk``: (RigL, Evci et al. 2020, §3 "Sparsity distribution"; for fully connected layers the
  Erdős–Rényi rule of SET, Mocanu et al. 2018) layer ``l`` with weight shape
  ``(n_out, n_in[, k_h, k_w])`` gets density ``ε · Σ dims / Π dims``
  (``(n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w)``; for a linear layer
  ``(n_in + n_out) / (n_in · n_out)``), with one ``ε`` chosen so the sparsified layers together
  keep ``density`` of their weights. A layer whose density would exceed 1 is made dense and ``ε``
  is solved again over the rest (the fixed point RigL's code iterates to).

Layers kept dense by choice (``dense``: the first layer, the classifier) are outside the budget:
``density`` is the fraction kept over the sparsified layers only, as in RigL's accounting.
Kept counts are ``round(d_l · n_l)``, at least 1 (:func:`kept_counts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALLOCATIONS = ("uniform", "erk")


def erk_raw(shape: Sequence[int]) -> float:
    """ERK's unnormalized density of a weight of ``shape``: sum of the dims over their product."""
    return sum(shape) / math.prod(shape)


def layer_densities(shapes: Sequence[Sequence[int]], density: float, allocation: str,
                    dense: Sequence[bool] | None = None) -> list[float]:
    """Per-layer densities for ``shapes`` (weight shapes, in order) at network ``density``.

    ``dense[i]`` True keeps layer ``i`` at 1.0 outside the budget. Raises ValueError on a bad
    allocation name or a density outside (0, 1].
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    dense = list(dense) if dense is not None else [False] * len(shapes)
    out = [1.0 if d else density for d in dense]
    if allocation == "uniform":
        return out
    sizes = [math.prod(s) for s in shapes]
    raw = [erk_raw(s) for s in shapes]
    free = [i for i in range(len(shapes)) if not dense[i]]
    budget = density * sum(sizes[i] for i in free)
    forced: list[int] = []  # layers ERK would give more than 1: dense, out of the solve
    while free:
        rest = budget - sum(sizes[i] for i in forced)
        eps = rest / sum(raw[i] * sizes[i] for i in free)
        over = [i for i in free if eps * raw[i] > 1]
        if not over:
            for i in free:
                out[i] = eps * raw[i]
            break
        for i in over:  # these go dense; solve again over the others
            out[i] = 1.0
            free.remove(i)
            forced.append(i)
    return out


def kept_counts(shapes: Sequence[Sequence[int]], densities: Sequence[float]) -> list[int]:
    """``round(d_l · n_l)`` weights kept per layer, at least 1 and at most ``n_l``."""
    sizes = [math.prod(s) for s in shapes]
    return [min(n, max(1, round(d * n))) for n, d in zip(sizes, densities, strict=True)]
