"""N:M structured sparsity trained with SR-STE (Zhou et al., ICLR 2021, arXiv 2102.04010).

Every step, for every pruned Conv2d/Linear layer, the mask ``M`` keeps the ``n`` largest
magnitudes of every group of ``m`` consecutive weights along ``Kr`` (``traces.format.structured``'s
convention: a weight ``(Kout, C/g, R, S)`` is the matrix ``(Kout, Kr)``), recomputed from the
current dense weights ``W`` before the forward. ``grouping="channels"`` forms the groups along
input channels at each kernel position instead, as the official SR-STE code (aojunzz/NM-sparsity)
and NHWC 2:4 kernels do; the default stays ``"kr"`` because the simulator's im2col (and so its GPU
2:4 check) orders ``Kr`` as ``(C, R, S)`` — docs/methods.md lists this as a deviation. The
update rule (sparse-refined straight-through estimator) is::

    forward:   W̃ = W ⊙ M                                  (the GEMMs use W̃ only)
    backward:  ∇W = ∇W̃ + λ_W · (¬M ⊙ W)                  (straight through to all of W,
                                                             plus a decay on the pruned ones)
    update:    W ← optimizer(W, ∇W)                        (SGD with momentum here)

so pruned weights keep receiving the task gradient (and can come back) while ``λ_W`` (``decay``,
the paper's 2e-4) pulls them towards 0, which reduces mask flips. With ``transposable`` the mask
is also N:M along the output channels of each group (backward-data's reduction), chosen per
``m × m`` block as the best of all patterns with ``n`` per row and column (exact; 90 for 2:4).

The trace records the applied mask ``M`` as ``w`` and ``dw_needed`` = all (every weight gets a
gradient); per layer and iteration: kept fraction, N:M-satisfying group fractions, mask flips and
the share of |W| that is pruned.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..format import structured
from ..recording.recorder import active_recorder, bookkeeping
from ..zoo.models import Model
from .base import Method, clone_as, swap_module


class SRSTE(torch.autograd.Function):
    """``W ⊙ M`` forward; backward ``∇W = ∇W̃ + λ_W · (¬M ⊙ W)`` (no gradient for M, λ_W)."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, mask: torch.Tensor, decay: float) -> torch.Tensor:
        ctx.save_for_backward(w, mask)
        ctx.decay = decay
        return w * mask

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        w, mask = ctx.saved_tensors
        return grad + ctx.decay * (~mask) * w, None, None


class _NMLayer:
    """Mixed into Conv2d/Linear subclasses: an N:M mask recomputed from |W| at every forward."""

    def setup_nm(self, n: int, m: int, transposable: bool, decay: float, grouping: str = "kr") -> None:
        self.nm, self.transposable, self.decay, self.grouping = (n, m), transposable, decay, grouping
        self.register_buffer("prev_mask", torch.ones_like(self.weight, dtype=torch.bool), persistent=False)

    def nm_mask(self) -> torch.Tensor:
        """The N:M mask of the current weights, bool of the weight's shape."""
        n, m = self.nm
        with bookkeeping():  # the selection is the method's own work (numpy), not a model GEMM
            score = self.weight.detach().abs().cpu().numpy()
        groups = getattr(self, "groups", 1)
        mask = structured.transposable_mask(score, n, m, groups) if self.transposable \
            else structured.nm_mask(score, n, m, self.grouping)
        return torch.from_numpy(mask).to(self.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.nm_mask()
        rec = active_recorder()
        if rec is not None and self.training and torch.is_grad_enabled():
            self._record(rec, mask)
        if self.training:
            self.prev_mask = mask
        w_hat = SRSTE.apply(self.weight, mask, self.decay)
        if isinstance(self, nn.Conv2d):
            return self._conv_forward(x, w_hat, self.bias)
        return F.linear(x, w_hat, self.bias)

    def _record(self, rec: Any, mask: torch.Tensor) -> None:
        n, m = self.nm
        m_np = mask.cpu().numpy()
        mag = self.weight.detach().abs()
        stats: dict[str, Any] = {
            "kept_fraction": round(float(mask.float().mean()), 6),
            "nm_fraction": structured.nm_fraction(structured.grouped_matrix(m_np, self.grouping), n, m),
            "flips_on": int((mask & ~self.prev_mask).sum()),
            "flips_off": int((~mask & self.prev_mask).sum()),
            "pruned_magnitude_fraction": round(float(mag[~mask].sum() / mag.sum().clamp(min=1e-30)), 6),
        }
        if self.transposable:
            stats["transposed_nm"] = structured.backward_data_nm(m_np, n, m, getattr(self, "groups", 1))
        rec.set_mask(self, "w", mask)
        rec.log(self, **stats)


class NMConv2d(_NMLayer, nn.Conv2d):
    """A Conv2d whose weights are N:M sparse (SR-STE)."""


class NMLinear(_NMLayer, nn.Linear):
    """A Linear whose weights are N:M sparse (SR-STE)."""


class NM(Method):
    """N:M fine-grained structured weight sparsity from scratch, trained with SR-STE."""

    name: ClassVar[str] = "nm"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "n": 2,  # kept per group (paper: 2:4 for sparse tensor cores; also 1:4, 4:8, …)
        "m": 4,  # group size along Kr
        "transposable": False,  # also N:M along output channels (backward-data on sparse tensor cores)
        "decay": 2e-4,  # λ_W, the SR-STE decay on pruned weights (paper: 2e-4)
        "dense_first": False,  # keep the first GEMM layer dense
        "dense_last": False,  # keep the classifier dense
        "grouping": "kr",  # N:M groups along Kr in (C, R, S) order, or "channels" (official SR-STE)
    }

    def check_params(self) -> None:
        p = self.params
        try:
            structured.check_nm(p["n"], p["m"])
        except ValueError as exc:
            raise ValueError(f"nm: {exc} (options n/--nm-n, m/--nm-m)") from None
        if p["grouping"] not in structured.GROUPINGS:
            raise ValueError(f"nm: grouping (--nm-group) must be one of {structured.GROUPINGS}, "
                             f"got {p['grouping']!r}")
        if p["grouping"] == "channels" and p["transposable"]:
            raise ValueError("nm: transposable masks are built along Kr; "
                             "use grouping 'kr' with --transposable")
        if not p["decay"] >= 0:
            raise ValueError(f"nm: decay (λ_W, --nm-decay) must be >= 0, got {p['decay']}; "
                             "the paper uses 2e-4")

    def prepare(self, model: Model) -> Model:
        p = self.params
        self.layers: dict[str, _NMLayer] = {}
        blocks = model.blocks()
        for i, b in enumerate(blocks):
            if (i == 0 and p["dense_first"]) or (b.classifier and p["dense_last"]):
                continue
            new = clone_as(NMConv2d if isinstance(b.gemm, nn.Conv2d) else NMLinear, b.gemm)
            new.setup_nm(p["n"], p["m"], p["transposable"], p["decay"], p["grouping"])
            swap_module(model, b.name, new)
            self.layers[b.name] = new
        return super().prepare(model)

    def density(self) -> float:
        kept = total = 0
        for layer in self.layers.values():
            kept += int(layer.prev_mask.sum())
            total += layer.prev_mask.numel()
        return kept / total if total else 1.0

    def describe(self) -> dict[str, Any]:
        p = self.params
        solver = structured.transposable_solver(p["n"], p["m"]) if p["transposable"] else None
        return {**p, "estimator": "sr-ste", "transposable_solver": solver, "layers": list(self.layers)}
