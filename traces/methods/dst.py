"""DST, dynamic sparse training (arXiv 2005.06870), as described in the reference.

Each GEMM layer gets one trainable threshold per output neuron/filter, initialized at 0; the mask
is ``|W| > t`` (a step function with the long-tailed surrogate derivative), the forward and
backward-data GEMMs use ``W ⊙ mask``, and the loss gains ``α · Σ exp(−t)``. Optionally, a layer
whose kept fraction falls to 1 % or less has its thresholds reset to 0 (the official code's rule).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..models import Model
from ..recorder import active_recorder
from .base import Method, clone_as, swap_module


class BinaryStep(torch.autograd.Function):
    """``1[q > 0]`` forward; long-tailed estimator backward: 2 − 4|q| (|q| ≤ 0.4), 0.4 (≤ 1), 0."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(q)
        return (q > 0).to(q.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (q,) = ctx.saved_tensors
        a = q.abs()
        tail = torch.where(a <= 1, torch.full_like(a, 0.4), torch.zeros_like(a))
        h = torch.where(a <= 0.4, 2 - 4 * a, tail)
        return grad * h


class _DSTLayer:
    """Mixed into Conv2d/Linear subclasses: thresholded weights, mask statistics for the trace."""

    def setup_dst(self, collapse_reset: bool, collapse_ratio: float) -> None:
        self.threshold = nn.Parameter(torch.zeros(self.weight.shape[0]))
        self.collapse_reset, self.collapse_ratio = collapse_reset, collapse_ratio
        self.resets = 0
        self.register_buffer("prev_mask", torch.ones_like(self.weight, dtype=torch.bool), persistent=False)

    def mask_and_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight
        t = self.threshold.view(-1, *([1] * (w.dim() - 1)))
        m = BinaryStep.apply(w.abs() - t)
        return m, w * m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, w_hat = self.mask_and_weight()
        reset = False
        if self.training and self.collapse_reset and float(m.detach().mean()) <= self.collapse_ratio:
            with torch.no_grad():
                self.threshold.zero_()
            self.resets += 1
            reset = True
            m, w_hat = self.mask_and_weight()
        mask = m.detach() > 0
        rec = active_recorder()
        if rec is not None and self.training and torch.is_grad_enabled():
            flips_on = int((mask & ~self.prev_mask).sum())
            flips_off = int((~mask & self.prev_mask).sum())
            rec.set_mask(self, "w", mask)
            rec.log(self, kept_fraction=round(float(mask.float().mean()), 6), flips_on=flips_on,
                    flips_off=flips_off, threshold_min=float(self.threshold.detach().min()),
                    threshold_mean=float(self.threshold.detach().mean()),
                    threshold_max=float(self.threshold.detach().max()),
                    collapse_reset=reset)
            rec.save_array(self, "threshold", self.threshold.detach().float())
        if self.training:
            self.prev_mask = mask
        if isinstance(self, nn.Conv2d):
            return self._conv_forward(x, w_hat, self.bias)
        return F.linear(x, w_hat, self.bias)


class DSTConv2d(_DSTLayer, nn.Conv2d):
    """A Conv2d with a trainable per-filter pruning threshold."""


class DSTLinear(_DSTLayer, nn.Linear):
    """A Linear with a trainable per-output pruning threshold."""


class DST(Method):
    """Dynamic sparse training: unstructured weight sparsity that changes every step."""

    name: ClassVar[str] = "dst"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "alpha": 5e-4,  # paper: 5e-4 on MNIST, 5e-6 on CIFAR-10 (README); scaled per dataset below
        "collapse_reset": True,  # official code: reset thresholds of a layer at <= 1 % kept
        "collapse_ratio": 0.01,
    }

    def dataset_defaults(self, dataset: str) -> dict[str, Any]:
        # The reference (§2.8) finds digits needs α about 10× the MNIST value; the synthetic
        # CIFAR-shaped set gets the paper's CIFAR value scaled the same way.
        alpha = {"digits": 5e-3, "synthetic-cifar": 5e-5}.get(dataset, self.DEFAULTS["alpha"])
        return {**self.DEFAULTS, "alpha": alpha}

    def check_params(self) -> None:
        if self.params["alpha"] < 0:
            raise ValueError(f"dst: alpha must be >= 0, got {self.params['alpha']}")
        if not 0 <= self.params["collapse_ratio"] < 1:
            raise ValueError(f"dst: collapse_ratio must be in [0, 1), got {self.params['collapse_ratio']}")

    def prepare(self, model: Model) -> Model:
        self.layers: dict[str, _DSTLayer] = {}
        for b in model.blocks():
            new = clone_as(DSTConv2d if isinstance(b.gemm, nn.Conv2d) else DSTLinear, b.gemm)
            new.setup_dst(self.params["collapse_reset"], self.params["collapse_ratio"])
            swap_module(model, b.name, new)
            self.layers[b.name] = new
        return super().prepare(model)

    def regularizer(self) -> torch.Tensor:
        return self.params["alpha"] * sum(torch.exp(-layer.threshold).sum() for layer in self.layers.values())

    def density(self) -> float:
        kept = total = 0
        with torch.no_grad():
            for layer in self.layers.values():
                m, _ = layer.mask_and_weight()
                kept += int(m.sum())
                total += m.numel()
        return kept / total

    def layer_densities(self) -> dict[str, float]:
        with torch.no_grad():
            return {n: float(layer.mask_and_weight()[0].mean()) for n, layer in self.layers.items()}

    def describe(self) -> dict[str, Any]:
        return {**self.params, "threshold_granularity": "per_output", "threshold_init": 0.0,
                "estimator": "longtail_0.4", "layers": list(self.layers)}
