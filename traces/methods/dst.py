"""DST, dynamic sparse training (arXiv 2005.06870), as described in the reference.

Each GEMM layer gets one trainable threshold per output neuron/filter, initialized at 0; the mask
is ``|W| > t`` (a step function with the long-tailed surrogate derivative), the forward and
backward-data GEMMs use ``W ⊙ mask``, and the loss gains ``α · Σ exp(−t)``. Optionally, a layer
whose kept fraction falls to 1 % or less has its thresholds reset to 0 (the official code's rule).

Defaults, from the paper and its official code (junjieliu2910/DynamicSparseTraining), by data
set and model (:data:`ALPHA_TABLE`):

| data set | model | α | source |
| --- | --- | --- | --- |
| mnist, fashion-mnist, digits | any (LeNet-300-100, LeNet-5-Caffe) | 5e-4 | README; Fig. 3 caption |
| cifar10, cifar100, synthetic-cifar | any (VGG-16, WRN) | 5e-6 | README; Fig. 4 caption |
| any | the LSTMs (dst-lstm-a, dst-lstm-b, lstm-tiny) | 1e-4 | the official LSTM script's default |

(digits, fashion-mnist and synthetic-cifar are not in the paper: they take the value of the
paper's data set they stand in for. The paper's Table 1 per-row α is in its unread Appendix A.1.)

Weight decay: the official CIFAR code gives every parameter, thresholds included, the SGD weight
decay of 1e-4 (MNIST: 0); ``threshold_weight_decay=True`` (default) does the same, ``False`` exempts
the thresholds.

Finite thresholds: the official code has no guard (a threshold can grow without bound and, with a
large α and learning rate, overflow). Ours clamps each threshold after every step to at most
``max|W_row| + 1 + 1e-3`` (:data:`CLAMP_MARGIN`): there the whole row is masked and every
``|q| = |W| − t`` exceeds 1, where the surrogate derivative is 0, so the clamp itself changes
neither the mask nor any gradient at that step. (An earlier ceiling of exactly ``max|W_row| + 1``
did change gradients: the row's largest weight then sat at ``|q| = 1``, where the estimator is
still 0.4.) It does change the run against the official code: it bounds how far α can push a
fully masked row, so such a row can come back sooner than it would there. A non-finite threshold
(NaN/inf) raises, and a trace holding one fails validation (traces/format/invariants.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..recording.recorder import active_recorder
from ..zoo.models import Model
from .base import Method, clone_as, swap_module

CLAMP_MARGIN = 1.0 + 1e-3  # threshold ceiling above max|W_row|: past the estimator's support (|q| ≤ 1)


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

    def clamp_threshold(self) -> None:
        """Keep thresholds finite and at most ``max|W_row| + CLAMP_MARGIN`` (see the module doc)."""
        with torch.no_grad():
            t = self.threshold
            if not torch.isfinite(t).all():
                raise FloatingPointError(f"dst: a threshold became non-finite ({t[~torch.isfinite(t)][0]}); "
                                         "lower --alpha or --lr")
            ceiling = self.weight.detach().abs().reshape(len(t), -1).amax(dim=1) + CLAMP_MARGIN
            torch.minimum(t, ceiling, out=t)

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
        "alpha": 5e-4,  # the paper's MNIST value; per data set in ALPHA_TABLE
        "collapse_reset": True,  # official code: reset thresholds of a layer at <= 1 % kept
        "collapse_ratio": 0.01,
        "threshold_weight_decay": True,  # official code: thresholds get SGD's weight decay too
    }
    # data set -> α (module doc: the paper's README and figure captions)
    ALPHA_TABLE: ClassVar[dict[str, float]] = {
        "mnist": 5e-4, "fashion-mnist": 5e-4, "digits": 5e-4,
        "cifar10": 5e-6, "cifar100": 5e-6, "synthetic-cifar": 5e-6,
    }

    LSTM_MODELS: ClassVar[tuple[str, ...]] = ("dst-lstm-a", "dst-lstm-b", "lstm-tiny")
    LSTM_ALPHA: ClassVar[float] = 1e-4  # the official LSTM script's default

    def dataset_defaults(self, dataset: str) -> dict[str, Any]:
        alpha = self.ALPHA_TABLE.get(dataset, self.DEFAULTS["alpha"])
        if self.model_name in self.LSTM_MODELS:
            alpha = self.LSTM_ALPHA
        return {**self.DEFAULTS, "alpha": alpha}

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        thresholds = {id(layer.threshold) for layer in self.layers.values()}
        rest = [p for p in self.trainable() if id(p) not in thresholds]
        t_decay = weight_decay if self.params["threshold_weight_decay"] else 0.0
        return [{"params": rest, "weight_decay": weight_decay},
                {"params": [layer.threshold for layer in self.layers.values()], "weight_decay": t_decay}]

    def after_step(self) -> None:
        for layer in self.layers.values():
            layer.clamp_threshold()

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
