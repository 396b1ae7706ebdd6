"""Gradual magnitude pruning (Zhu & Gupta 2017, arXiv 1710.01878), dense to sparse (imports torch).

Training starts dense. Every ``Δt`` steps from step ``t₀`` to ``t_end`` each layer is pruned by
magnitude to the sparsity of the cubic ramp ``s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(t_end − t₀))³``
(:func:`traces.methods.rules.gmp_sparsity`), ``s_f`` being the layer's allocated sparsity; pruned
weights are held at 0 and get no gradient, so the mask only shrinks. Defaults: ``Δt`` = 100 steps
(the lower end of the paper's 100–1000), ``s_i`` = 0 (the paper's), uniform per-layer
sparsity (the paper's); ``t₀`` = 10 % and ``t_end`` = 75 % of training are this project's choice
(the paper sets them per experiment).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from .masked import MaskedMethod, _MaskedLayer
from .rules import gmp_sparsity, top_fraction


class GMP(MaskedMethod):
    """Gradual magnitude pruning on a cubic schedule."""

    name: ClassVar[str] = "gmp"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **MaskedMethod.COMMON,
        "allocation": "uniform",  # the paper prunes every layer to the same sparsity
        "delta_t": 100,  # Δt, steps between pruning steps (paper: 100 to 1000)
        "begin_fraction": 0.1,  # t₀ as a fraction of training (ours; the paper's is per experiment)
        "end_fraction": 0.75,  # t_end as a fraction of training (ours)
        "initial_sparsity": 0.0,  # s_i (paper: 0)
    }
    RULE: ClassVar[str] = "every delta_t steps in [t0, t_end]: keep the round((1-s_t)*n) largest |w| " \
                          "of the mask, s_t = s_f + (s_i - s_f)(1 - (t - t0)/(t_end - t0))^3"

    def check_params(self) -> None:
        super().check_params()
        p = self.params
        if p["delta_t"] < 1 or not 0 <= p["begin_fraction"] < p["end_fraction"] <= 1:
            raise ValueError("gmp: need delta_t >= 1 and 0 <= begin_fraction < end_fraction <= 1; got "
                             f"{p['delta_t']}, {p['begin_fraction']}, {p['end_fraction']}")

    def initial_mask(self, layer: _MaskedLayer, keep: int) -> torch.Tensor:
        return torch.ones_like(layer.weight, dtype=torch.bool)  # dense to sparse

    def window(self) -> tuple[int, int]:
        """``(t₀, t_end)`` in steps."""
        return (math.floor(self.params["begin_fraction"] * self.total),
                math.floor(self.params["end_fraction"] * self.total))

    def update(self, step: int) -> None:
        begin, end = self.window()
        if step < begin or step > end or ((step - begin) % self.params["delta_t"] and step != end):
            return
        for name, layer in self.layers.items():
            n = layer.weight.numel()
            s = gmp_sparsity(step, 1 - self.densities[name], begin, end, self.params["initial_sparsity"])
            keep = max(self.keep[name], round((1 - s) * n)) if step < end else self.keep[name]
            if keep < int(layer.mask.sum()):
                self.set_mask(layer, top_fraction(layer.weight.detach(), keep, within=layer.mask))
