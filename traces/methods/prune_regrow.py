"""Sparse-to-sparse baselines with a constant weight count: SET, RigL and SNFS (imports torch).

Each starts from a uniformly random mask at the allocated per-layer densities (weights outside
it are 0) and every so often drops some active weights and regrows as many elsewhere:

- ``set`` (Mocanu et al. 2018, arXiv 1707.04780): at the end of every epoch, the ``⌊ζ·n₊⌋``
  smallest positive and ``⌊ζ·n₋⌋`` largest negative active weights leave (ζ = 0.3, constant)
  and as many positions of the same layer, drawn uniformly at random, join.
- ``rigl`` (Evci et al. 2020, arXiv 1911.11134): every ΔT = 100 steps until ``T_end`` = 75 % of
  training, the ``⌊f(t)·n⌋`` active weights of smallest magnitude leave, ``f(t) = α/2·(1 +
  cos(π t / T_end))`` with α = 0.3, and as many positions of the same layer with the largest
  dense-gradient magnitude join.
- ``snfs`` (Dettmers & Zettlemoyer 2019, arXiv 1907.04840): at the end of every epoch the
  ``⌈p(t)·n⌉`` smallest-magnitude weights of each layer leave (p cosine-annealed from 0.5 to
  0.005 over training); the total is regrown across layers in proportion to the mean momentum
  magnitude of each layer's active weights, within a layer at the largest momentum magnitudes.

New weights start at 0 in all three. Regrowth candidates are all positions inactive after the
drop, the just-dropped ones included (so a dropped weight may come back at once, keeping its
value, as in RigL's code). Weights that
leave or join the mask restart at 0 with zero momentum (SET, RigL); SNFS sets the momentum of
every inactive weight to the mean momentum of the active ones after each update, as its official
code does (``reset_momentum``), and — unlike the others — passes the dense gradient to every
weight at every step, because its momentum (the growth signal) must see all of them; weights
outside the mask are re-zeroed after each step. RigL reads the dense weight gradient only on its
update steps, so those iterations record ``dw_needed`` = all and the others only the mask.

The rules themselves are :mod:`traces.methods.rules`; deviations from the papers and official
code are listed in docs/methods.md.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from .masked import MaskedMethod, _MaskedLayer
from .rules import cosine_fraction, drop_set, drop_smallest, grow_largest, grow_random, redistribute


class SET(MaskedMethod):
    """Sparse evolutionary training: magnitude-by-sign drop, random regrowth, every epoch."""

    name: ClassVar[str] = "set"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **MaskedMethod.COMMON,
        "zeta": 0.3,  # fraction of each sign's active weights replaced per update (paper: 0.3)
        "update_every": 0,  # steps between updates; 0: at the end of every epoch (the paper's)
    }
    RULE: ClassVar[str] = "drop floor(zeta*n+) smallest positive and floor(zeta*n-) largest negative, " \
                          "regrow as many uniformly at random; new weights 0"

    def check_params(self) -> None:
        super().check_params()
        if not 0 <= self.params["zeta"] < 1:
            raise ValueError(f"set: zeta must be in [0, 1), got {self.params['zeta']}")

    def update(self, step: int) -> None:
        every = self.params["update_every"] or self.per_epoch
        if step % every:
            return
        for layer in self.layers.values():
            kept = drop_set(layer.weight.detach(), layer.mask, self.params["zeta"])
            n = int(layer.mask.sum()) - int(kept.sum())
            self.set_mask(layer, kept | grow_random(~kept, n, self.gen))


class RigL(MaskedMethod):
    """Rigging the lottery: magnitude drop, dense-gradient regrowth, cosine-decayed fraction."""

    name: ClassVar[str] = "rigl"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **MaskedMethod.COMMON,
        "drop_fraction": 0.3,  # α, the initial drop fraction (paper: 0.3)
        "delta_t": 100,  # ΔT, steps between updates (paper: 100)
        "end_fraction": 0.75,  # T_end as a fraction of training (paper: 0.75)
    }
    RULE: ClassVar[str] = "every delta_t steps before end_fraction*T: drop floor(f*n) smallest |w|, " \
                          "f = drop_fraction/2*(1+cos(pi*t/T_end)); regrow the largest |dense grad|; new 0"

    def check_params(self) -> None:
        super().check_params()
        p = self.params
        if not 0 <= p["drop_fraction"] < 1 or p["delta_t"] < 1 or not 0 < p["end_fraction"] <= 1:
            raise ValueError(f"rigl: need 0 <= drop_fraction < 1, delta_t >= 1, 0 < end_fraction <= 1; "
                             f"got {p['drop_fraction']}, {p['delta_t']}, {p['end_fraction']}")

    def end_step(self) -> int:
        return math.floor(self.params["end_fraction"] * self.total)

    def is_update(self, step: int) -> bool:
        return step % self.params["delta_t"] == 0 and step < self.end_step()

    def before_step(self) -> None:
        if self.is_update(self.t + 1):  # this step's dense gradient is the grow criterion
            for layer in self.layers.values():
                layer.capture = True

    def update(self, step: int) -> None:
        if not self.is_update(step):
            return
        f = cosine_fraction(self.params["drop_fraction"], step, self.end_step())
        for layer in self.layers.values():
            n = math.floor(f * int(layer.mask.sum()))
            kept = drop_smallest(layer.weight.detach(), layer.mask, n)
            if layer.dense_grad is None:
                raise RuntimeError("rigl: no dense gradient was kept for this update step "
                                   "(before_step must run before the forward pass)")
            self.set_mask(layer, kept | grow_largest(layer.dense_grad.abs(), ~kept, n))


class SNFS(MaskedMethod):
    """Sparse momentum: magnitude drop, momentum-redistributed and momentum-guided regrowth."""

    name: ClassVar[str] = "snfs"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **MaskedMethod.COMMON,
        "allocation": "uniform",  # the official code starts every layer at the same density
        "prune_rate": 0.5,  # p, the initial prune rate (official default 0.5)
        "prune_rate_min": 0.005,  # the cosine schedule's floor (official CosineDecay eta_min)
        "update_every": 0,  # steps between updates; 0: at the end of every epoch (the official code's)
    }
    RULE: ClassVar[str] = "end of every epoch: drop ceil(p*n) smallest |w| per layer, p cosine " \
                          "0.5 -> 0.005; regrowth split over layers by mean |momentum| of active weights, " \
                          "grown at the largest |momentum|; dense gradients every step"

    def check_params(self) -> None:
        super().check_params()
        if not 0 <= self.params["prune_rate"] < 1:
            raise ValueError(f"snfs: prune_rate must be in [0, 1), got {self.params['prune_rate']}")

    def grad_positions(self, layer: _MaskedLayer) -> torch.Tensor | None:
        return None  # every weight gets its gradient (the momentum must see all of them)

    def rate(self, step: int) -> float:
        """Cosine annealing from ``prune_rate`` to ``prune_rate_min`` over training (PyTorch's
        CosineAnnealingLR, as the official code steps it once per iteration)."""
        lo, hi = self.params["prune_rate_min"], self.params["prune_rate"]
        return lo + (hi - lo) * cosine_fraction(1.0, step, self.total)

    def update(self, step: int) -> None:
        every = self.params["update_every"] or self.per_epoch
        if step % every:
            return
        p = self.rate(step)
        layers = list(self.layers.values())
        moms = [self.momentum(layer) for layer in layers]
        if any(m is None for m in moms):
            return
        scores = [float(m[layer.mask].abs().mean()) if layer.mask.any() else 0.0
                  for layer, m in zip(layers, moms, strict=True)]
        kept = [drop_smallest(layer.weight.detach(), layer.mask, math.ceil(p * int(layer.mask.sum())))
                for layer in layers]
        removed = sum(int(layer.mask.sum()) - int(k.sum()) for layer, k in zip(layers, kept, strict=True))
        grow = redistribute(scores, removed, [int((~k).sum()) for k in kept])
        for layer, m, k, n in zip(layers, moms, kept, grow, strict=True):
            self.set_mask(layer, k | grow_largest(m.abs(), ~k, n))

    def set_mask(self, layer: _MaskedLayer, mask: torch.Tensor) -> None:
        """Weights outside the new mask go to 0; inactive momentum becomes the mean active momentum."""
        with torch.no_grad():
            layer.weight[~mask] = 0.0
            buf = self.momentum(layer)
            if buf is not None and mask.any():
                buf[~mask] = buf[mask].mean()
            layer.mask = mask
            layer.grad_mask = None
            layer.updated = True
