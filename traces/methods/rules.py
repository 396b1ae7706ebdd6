"""The prune and regrow rules of the sparse-training baselines, as pure functions (imports torch).

Every function takes one layer's tensors and returns new boolean masks; none changes its inputs.
Ties are broken by flat index (the lower index is dropped first and grown first), so results are
deterministic and a slow reference can reproduce them exactly (tests/traces/test_baselines.py).

- :func:`drop_smallest`: the ``n`` active weights of smallest magnitude leave (SET, RigL, SNFS).
- :func:`drop_set`: SET's own rule: a fraction of the smallest positive weights and of the largest
  negative weights (those closest to zero from each side) leave.
- :func:`grow_largest`: the ``n`` candidates of largest score join (RigL: |dense gradient|; SNFS:
  |momentum|).
- :func:`grow_random`: ``n`` candidates drawn uniformly (SET).
- :func:`top_fraction`: the ``k`` largest magnitudes (gradual magnitude pruning, Top-KAST's sets).
- :func:`redistribute`: SNFS's split of the regrowth budget across layers by mean |momentum|.
- :func:`cosine_fraction`, :func:`gmp_sparsity`: the update schedules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _order(score: torch.Tensor, descending: bool) -> torch.Tensor:
    """Flat indices sorted by ``score`` (stable: equal scores keep index order)."""
    return torch.sort(score.flatten(), descending=descending, stable=True).indices


def drop_smallest(w: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
    """``mask`` without its ``n`` active positions of smallest ``|w|``."""
    score = torch.where(mask, w.abs(), torch.full_like(w, math.inf))
    n = max(0, min(n, int(mask.sum())))
    out = mask.clone().flatten()
    out[_order(score, descending=False)[:n]] = False
    return out.view_as(mask)


def drop_set(w: torch.Tensor, mask: torch.Tensor, zeta: float) -> torch.Tensor:
    """SET: ``floor(ζ · n₊)`` smallest positive and ``floor(ζ · n₋)`` largest negative active weights
    leave (``n₊``, ``n₋``: active weights above and below zero; an active exact zero counts as neither
    and is never dropped by this rule)."""
    out = mask.clone().flatten()
    flat = w.flatten()
    pos = mask.flatten() & (flat > 0)
    neg = mask.flatten() & (flat < 0)
    n_pos, n_neg = math.floor(zeta * int(pos.sum())), math.floor(zeta * int(neg.sum()))
    out[_order(torch.where(pos, flat, torch.full_like(flat, math.inf)), descending=False)[:n_pos]] = False
    out[_order(torch.where(neg, flat, torch.full_like(flat, -math.inf)), descending=True)[:n_neg]] = False
    return out.view_as(mask)


def grow_largest(score: torch.Tensor, candidates: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` ``candidates`` of largest ``score`` (a mask of the grown positions only)."""
    n = max(0, min(n, int(candidates.sum())))
    s = torch.where(candidates, score, torch.full_like(score, -math.inf))
    out = torch.zeros(score.numel(), dtype=torch.bool)
    out[_order(s, descending=True)[:n]] = True
    return out.view_as(candidates)


def grow_random(candidates: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` of the ``candidates`` drawn uniformly without replacement (a mask of the grown ones)."""
    idx = candidates.flatten().nonzero().flatten()
    n = max(0, min(n, idx.numel()))
    pick = idx[torch.randperm(idx.numel(), generator=generator)[:n]]
    out = torch.zeros(candidates.numel(), dtype=torch.bool)
    out[pick] = True
    return out.view_as(candidates)


def magnitude_order(w: torch.Tensor) -> torch.Tensor:
    """Flat indices by decreasing ``|w|`` (ties: lower index first); ``top_fraction`` is a prefix."""
    return _order(w.abs(), descending=True)


def top_fraction(w: torch.Tensor, k: int, within: torch.Tensor | None = None) -> torch.Tensor:
    """The ``k`` positions of largest ``|w|`` (among ``within`` if given)."""
    cand = torch.ones_like(w, dtype=torch.bool) if within is None else within
    return grow_largest(w.abs(), cand, k)


def redistribute(scores: Sequence[float], budget: int, capacity: Sequence[int]) -> list[int]:
    """Split ``budget`` regrown weights over layers in proportion to ``scores`` (SNFS: each
    layer's mean |momentum| over its active weights), no layer above its ``capacity`` (free
    positions). Shares are floored, the spare from flooring goes to the largest remainders, and
    what a capped layer cannot take is split again over the others; the total is
    ``min(budget, Σ capacity)``."""
    n = len(scores)
    out = [0] * n
    left = min(budget, sum(capacity))
    open_ = [i for i in range(n) if capacity[i] > 0]
    while left > 0 and open_:
        total = sum(scores[i] for i in open_)
        share = {i: (scores[i] / total if total > 0 else 1 / len(open_)) * left for i in open_}
        give = {i: min(math.floor(share[i]), capacity[i] - out[i]) for i in open_}
        spare = left - sum(give.values())
        for i in sorted(open_, key=lambda j: (-(share[j] - math.floor(share[j])), j)):
            if spare <= 0:
                break
            if give[i] < capacity[i] - out[i]:
                give[i] += 1
                spare -= 1
        for i in open_:
            out[i] += give[i]
        left -= sum(give.values())
        open_ = [i for i in open_ if out[i] < capacity[i]]
        if sum(give.values()) == 0:
            break
    return out


def cosine_fraction(initial: float, step: int, end_step: int) -> float:
    """``initial/2 · (1 + cos(π · step / end_step))`` (RigL's drop fraction, SNFS's prune rate);
    0 from ``end_step`` on."""
    if end_step <= 0 or step >= end_step:
        return 0.0
    return initial / 2 * (1 + math.cos(math.pi * step / end_step))


def gmp_sparsity(step: int, final: float, begin: int, end: int, initial: float = 0.0) -> float:
    """Zhu & Gupta's cubic ramp: ``s_f + (s_i − s_f)(1 − (t − t₀)/(t_end − t₀))³`` for
    ``t₀ ≤ t ≤ t_end``; ``s_i`` before, ``s_f`` after."""
    if step < begin:
        return initial
    if step >= end or end <= begin:
        return final
    return final + (initial - final) * (1 - (step - begin) / (end - begin)) ** 3
