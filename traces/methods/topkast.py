"""Top-KAST (Jayakumar et al., NeurIPS 2020, arXiv 2106.03517): always-sparse training (imports torch).

Per layer, every ``update_every`` steps, the forward set ``A`` is the ``D`` fraction of weights of
largest magnitude and the backward set ``B ⊇ A`` the ``D + M`` fraction: the GEMMs use ``W ⊙ A``,
the weight gradient is computed and applied on ``B`` only (``dw_needed`` = B), and the loss gains
the exploration penalty ``λ · (Σ_A w² + Σ_{B∖A} w² / D)``, which makes a weight outside ``A`` pay
more to stay near the threshold. Weights outside ``B`` keep their values untouched (they can
re-enter ``A`` or ``B`` later when others shrink); their momentum is cleared, as an optimizer that
only holds state for ``B`` would. Defaults: forward density 0.1 with backward density 0.2 (the
paper's 90 % / 80 % pairing), sets refreshed every step (the paper's; it notes refreshing less
often also works), ``λ`` = 1e-4 (this project's choice; the paper scales its usual L2 term).
With ERK allocation the backward density of a layer is ``min(1, d_l · backward/forward)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .masked import MaskedMethod, _MaskedLayer
from .rules import magnitude_order, top_fraction


def _prefix(order: torch.Tensor, k: int, like: torch.Tensor) -> torch.Tensor:
    """The first ``k`` flat indices of ``order`` as a mask shaped like ``like``."""
    out = torch.zeros(like.numel(), dtype=torch.bool)
    out[order[:k]] = True
    return out.view_as(like)


class TopKAST(MaskedMethod):
    """Top-K always sparse training: magnitude top-k forward set inside a larger backward set."""

    name: ClassVar[str] = "topkast"
    zero_inactive: ClassVar[bool] = False
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **MaskedMethod.COMMON,
        "allocation": "uniform",
        "backward_density": 0.2,  # D + M over the sparsified layers (paper pairs 90 % / 80 % sparsity)
        "exploration_l2": 1e-4,  # λ of the exploration penalty (ours; see the module doc)
        "update_every": 1,  # steps between refreshes of A and B (paper: every step)
    }
    RULE: ClassVar[str] = "A = top-D |w|, B = top-(D+M) |w| per layer, refreshed every update_every steps; " \
                          "forward W*A, gradient on B; loss + l2*(sum_A w^2 + sum_{B-A} w^2 / D)"

    def check_params(self) -> None:
        super().check_params()
        p = self.params
        if not p["density"] <= p["backward_density"] <= 1 or p["update_every"] < 1 or p["exploration_l2"] < 0:
            raise ValueError("topkast: need density <= backward_density <= 1, update_every >= 1 and "
                             f"exploration_l2 >= 0; got {p['density']}, {p['backward_density']}, "
                             f"{p['update_every']}, {p['exploration_l2']}")

    def backward_keep(self, name: str) -> int:
        layer = self.layers[name]
        ratio = self.params["backward_density"] / self.params["density"]
        return min(layer.weight.numel(), max(self.keep[name], round(min(1.0, self.densities[name] * ratio)
                                                                   * layer.weight.numel())))

    def initial_mask(self, layer: _MaskedLayer, keep: int) -> torch.Tensor:
        return top_fraction(layer.weight.detach(), keep)

    def grad_positions(self, layer: _MaskedLayer) -> torch.Tensor | None:
        return getattr(layer, "backward_set", None)

    def prepare(self, model: Any) -> Any:
        out = super().prepare(model)
        self.refresh()
        return out

    def refresh(self) -> None:
        """Recompute A (the mask) and B (the gradient positions) from the current magnitudes."""
        with torch.no_grad():
            for name, layer in self.layers.items():
                w = layer.weight.detach()
                order = magnitude_order(w)  # one sort: A and B are prefixes of it, so A ⊆ B
                b_set = _prefix(order, self.backward_keep(name), w)
                a_set = _prefix(order, self.keep[name], w)
                layer.updated = layer.updated or not torch.equal(a_set, layer.mask)
                layer.mask, layer.backward_set, layer.grad_mask = a_set, b_set, b_set

    def before_step(self) -> None:
        if self.t % self.params["update_every"] == 0 and self.t > 0:
            self.refresh()
        self._outside = {name: layer.weight.detach()[~layer.backward_set].clone()
                         for name, layer in self.layers.items()}

    def after_step(self) -> None:
        with torch.no_grad():  # only B moves: undo what momentum or weight decay did outside it
            for name, layer in self.layers.items():
                outside = ~layer.backward_set
                layer.weight[outside] = self._outside[name]
                buf = self.momentum(layer)
                if buf is not None:
                    buf[outside] = 0.0
        super().after_step()

    def regularizer(self) -> torch.Tensor | float:
        lam = self.params["exploration_l2"]
        if lam == 0:
            return 0.0
        total = 0.0
        for name, layer in self.layers.items():
            w2 = layer.weight.pow(2)
            explore = layer.backward_set & ~layer.mask
            total = total + w2[layer.mask].sum() + w2[explore].sum() / self.densities[name]
        return lam * total
