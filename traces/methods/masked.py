"""What the weight-mask baselines share: a masked layer and a method base class (imports torch).

A :class:`MaskedConv2d` / :class:`MaskedLinear` computes with ``W ⊙ mask``. Its backward passes
``∂L/∂(W ⊙ mask)`` (the dense weight-gradient GEMM ``G``) on to ``W`` through ``grad_mask``:
``G ⊙ mask`` for SET, RigL and gradual magnitude pruning (inactive weights stay at 0), all of
``G`` for SNFS (its momentum needs dense gradients), ``G ⊙ B`` for Top-KAST. On a RigL update
step the layer also keeps ``G`` itself (``capture``), which the grow criterion reads.

The trace gets, per layer and iteration, the mask the GEMMs used (``w``), the weight-gradient
entries the method needs (``dw_needed``: the positions that get an update, or all where a dense
gradient is read), and ``kept_fraction``, ``flips_on`` / ``flips_off`` against the previous
iteration, ``mask_update`` (whether the rule ran after this step) and ``dense_grad``.

:class:`MaskedMethod` allocates the per-layer densities (uniform or ERK, see
:mod:`traces.methods.allocation`), optionally keeps the first layer or the classifier dense,
holds the optimizer (to clear or read its momentum) and counts steps.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..recording.recorder import active_recorder
from ..zoo.models import Model
from .allocation import ALLOCATIONS, kept_counts, layer_densities
from .base import Method, clone_as, swap_module


class MaskedWeight(torch.autograd.Function):
    """``W ⊙ mask`` forward; backward ``G`` (times ``grad_mask`` unless None), ``G`` kept on request."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, mask: torch.Tensor, grad_mask: torch.Tensor | None,
                layer: Any) -> torch.Tensor:
        ctx.grad_mask, ctx.layer = grad_mask, layer
        return w * mask

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        if ctx.layer is not None and ctx.layer.capture:
            ctx.layer.dense_grad = g.detach().clone()
        return (g if ctx.grad_mask is None else g * ctx.grad_mask), None, None, None


class _MaskedLayer:
    """Mixed into Conv2d/Linear subclasses: a weight mask, the gradient positions, statistics."""

    def setup_masked(self) -> None:
        self.mask = torch.ones_like(self.weight, dtype=torch.bool)
        self.prev_mask = self.mask.clone()
        self.grad_mask: torch.Tensor | None = self.mask  # positions W is updated at (None: all)
        self.capture = False  # keep this step's dense weight gradient (RigL's grow criterion)
        self.dense_grad: torch.Tensor | None = None
        self.updated = False  # the rule changed the mask after the previous step

    def dw_needed(self) -> torch.Tensor | None:
        """Weight-gradient entries this step needs (None: all of them)."""
        return None if self.capture else self.grad_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_hat = MaskedWeight.apply(self.weight, self.mask, self.grad_mask, self)
        rec = active_recorder()
        if rec is not None and self.training and torch.is_grad_enabled():
            rec.set_mask(self, "w", self.mask)
            rec.set_mask(self, "dw_needed", self.dw_needed())
            rec.log(self, kept_fraction=round(float(self.mask.float().mean()), 6),
                    flips_on=int((self.mask & ~self.prev_mask).sum()),
                    flips_off=int((~self.mask & self.prev_mask).sum()),
                    mask_update=self.updated, dense_grad=self.capture)
        if self.training and torch.is_grad_enabled():
            self.prev_mask = self.mask
            self.updated = False
        if isinstance(self, nn.Conv2d):
            return self._conv_forward(x, w_hat, self.bias)
        return F.linear(x, w_hat, self.bias)


class MaskedConv2d(_MaskedLayer, nn.Conv2d):
    """A Conv2d computing with masked weights."""


class MaskedLinear(_MaskedLayer, nn.Linear):
    """A Linear computing with masked weights."""


class MaskedMethod(Method):
    """Base of the weight-mask baselines (SET, RigL, SNFS, GMP, Top-KAST)."""

    optimizers: ClassVar[tuple[str, ...]] = ("sgd",)  # they read or clear SGD momentum buffers

    COMMON: ClassVar[dict[str, Any]] = {
        "density": 0.1,  # weights kept over the sparsified layers (90 % sparsity)
        "allocation": "erk",  # per-layer densities: uniform | erk
        "dense_first": False,  # keep the first GEMM layer dense (outside the budget)
        "dense_last": False,  # keep the classifier dense (outside the budget)
        "seed": 0,  # initial random masks, random regrowth
    }

    def check_params(self) -> None:
        p = self.params
        if not 0 < p["density"] <= 1:
            raise ValueError(f"{self.name}: density must be in (0, 1], got {p['density']}")
        if p["allocation"] not in ALLOCATIONS:
            raise ValueError(f"{self.name}: allocation must be one of {ALLOCATIONS}, got {p['allocation']!r}")
        self.gen = torch.Generator().manual_seed(int(p["seed"]))

    # -- set-up ----------------------------------------------------------------------------------------

    def prepare(self, model: Model) -> Model:
        p = self.params
        self.layers: dict[str, _MaskedLayer] = {}
        blocks = model.blocks()
        chosen = [b for i, b in enumerate(blocks)
                  if not ((i == 0 and p["dense_first"]) or (b.classifier and p["dense_last"]))]
        for b in chosen:
            new = clone_as(MaskedConv2d if isinstance(b.gemm, nn.Conv2d) else MaskedLinear, b.gemm)
            new.setup_masked()
            swap_module(model, b.name, new)
            self.layers[b.name] = new
        shapes = [tuple(layer.weight.shape) for layer in self.layers.values()]
        densities = layer_densities(shapes, self.target_density(), p["allocation"])
        self.densities = dict(zip(self.layers, densities, strict=True))
        self.keep = dict(zip(self.layers, kept_counts(shapes, list(self.densities.values())), strict=True))
        self.opt: torch.optim.Optimizer | None = None
        self.t, self.total, self.per_epoch = 0, 1, 1
        with torch.no_grad():
            for name, layer in self.layers.items():
                layer.mask = self.initial_mask(layer, self.keep[name])
                layer.prev_mask = layer.mask
                layer.grad_mask = self.grad_positions(layer)
                if self.zero_inactive:
                    layer.weight.mul_(layer.mask)
        return super().prepare(model)

    def target_density(self) -> float:
        """The network density the allocation is solved for."""
        return float(self.params["density"])

    zero_inactive: ClassVar[bool] = True  # inactive weights are held at exactly 0

    def initial_mask(self, layer: _MaskedLayer, keep: int) -> torch.Tensor:
        """A uniformly random mask with ``keep`` ones (SET, RigL, SNFS start this way)."""
        flat = torch.zeros(layer.weight.numel(), dtype=torch.bool)
        flat[torch.randperm(flat.numel(), generator=self.gen)[:keep]] = True
        return flat.view_as(layer.weight)

    def grad_positions(self, layer: _MaskedLayer) -> torch.Tensor | None:
        """Where W takes gradient steps: the active weights (None: everywhere)."""
        return layer.mask

    def attach_optimizer(self, opt: torch.optim.Optimizer) -> None:
        self.opt = opt

    def begin_training(self, total_iterations: int, iterations_per_epoch: int) -> None:
        self.total, self.per_epoch = max(1, total_iterations), max(1, iterations_per_epoch)

    # -- per step ----------------------------------------------------------------------------------------

    def momentum(self, layer: _MaskedLayer) -> torch.Tensor | None:
        """The optimizer's momentum buffer of the layer's weight (None before the first step)."""
        if self.opt is None:
            return None
        return self.opt.state.get(layer.weight, {}).get("momentum_buffer")

    def set_mask(self, layer: _MaskedLayer, mask: torch.Tensor) -> None:
        """Install a new mask: weights leaving it go to 0 with their momentum, as do weights that
        join (grown at 0, RigL's and SET's initialization); the gradient positions follow."""
        with torch.no_grad():
            changed = mask ^ layer.mask
            if self.zero_inactive:
                layer.weight[changed] = 0.0
                buf = self.momentum(layer)
                if buf is not None:
                    buf[changed] = 0.0
            layer.mask = mask
            layer.grad_mask = self.grad_positions(layer)
            layer.updated = True

    def hold_zeros(self) -> None:
        """Inactive weights (and their momentum) stay exactly 0 between updates."""
        if not self.zero_inactive:
            return
        with torch.no_grad():
            for layer in self.layers.values():
                layer.weight.mul_(layer.mask)

    def after_step(self) -> None:
        self.hold_zeros()
        self.t += 1
        if self.t < self.total:  # a mask change after the last step would train nothing
            self.update(self.t)
        for layer in self.layers.values():
            layer.capture, layer.dense_grad = False, None

    def update(self, step: int) -> None:
        """The method's rule, after ``step`` optimizer steps."""

    def epoch_end(self, step: int) -> bool:
        return step % self.per_epoch == 0

    # -- reporting ---------------------------------------------------------------------------------------

    def density(self) -> float:
        kept = sum(int(layer.mask.sum()) for layer in self.layers.values())
        return kept / sum(layer.mask.numel() for layer in self.layers.values())

    def layer_densities(self) -> dict[str, float]:
        return {n: float(layer.mask.float().mean()) for n, layer in self.layers.items()}

    def describe(self) -> dict[str, Any]:
        return {**self.params, "layers": list(self.layers),
                "layer_densities": {n: round(d, 6) for n, d in self.densities.items()},
                "kept": dict(self.keep),
                "rule": self.RULE}

    RULE: ClassVar[str] = ""
