"""DSG, dynamic sparse graph (arXiv 1810.00859), as described in the reference.

Per layer and iteration: a ternary sparse random projection (s = 3) of the im2col rows and of the
weights gives *virtual activations*; each row (sample, or sliding window of a conv) keeps its
``ceil((1 − γ)·n)`` largest outputs (or, with threshold sharing, those above one batch-shared
threshold); only those outputs are computed, and the same mask is applied again after BN
(double-mask selection, with the block order CONV → ReLU → BN). Weights stay dense.

Choices the paper leaves open, and where ours come from:

- **ε = 0.5** by default: the paper's value ("ε = 0.5 keeps the accuracy loss within 1 % at 80 %
  sparsity", Fig. 5d discussion).
- **The k rule** ``k = floor(ln(d + 1) / ε²)`` (constant 1, N = d + 1 points): the JL bound
  ``k = O(log N / ε²)`` with its constant taken from the one public re-implementation,
  mtcrawshaw/dynamic-sparse-graph; the paper's main text gives neither the constant nor N
  (its appendix is unread). ``d`` is the GEMM reduction (``C·R·S``, or the input features).
- **Threshold sharing** (``share_threshold``): the paper's "inter-sample threshold sharing" (§3.2;
  the exact rule is in its unread footnote 1). Ours: the mean over the batch's rows of each row's
  k-th largest score becomes one threshold for every row; the kept count per row is then only
  approximately ``ceil((1 − γ)·n)``.
- **Cost of selection**: DRS is charged only when ``selection="drs"``. Per layer and iteration the
  trace logs ``drs_macs = rows·n_K·k`` (the low-dimensional virtual-activation GEMM, the
  paper's own overhead term), ``drs_proj_adds = (rows + n_K)·d·k`` (projecting every input row
  and every weight column with the k×d ternary matrix, counted as a dense k×d product of
  additions; skipping R's zeros would do 1/s of them), and ``selection_compares`` (``rows·n_K``
  threshold compares plus ``n_K·⌈log2(kept + 1)⌉`` heap compares per top-k: one per row, or one
  per batch with threshold sharing). Oracle and random selection are reference points and are
  charged nothing. Recall of the selection against the oracle top-k is logged per layer.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..recording.recorder import active_recorder, bookkeeping
from ..stats.dsg_ops import K_RULES, projection_additions, projection_dim, selection_compares
from ..zoo.models import Model
from .base import Method, clone_as, swap_module

SELECTIONS = ("drs", "oracle", "random")


def ternary_projection(k: int, d: int, s: int, generator: torch.Generator) -> torch.Tensor:
    """``(k, d)`` entries ``±√s`` with probability ``1/(2s)`` each, else 0."""
    u = torch.rand(k, d, generator=generator)
    r = torch.zeros(k, d)
    r[u < 1 / (2 * s)] = math.sqrt(s)
    r[(u >= 1 / (2 * s)) & (u < 1 / s)] = -math.sqrt(s)
    return r


class _DSGLayer:
    """Mixed into Conv2d/Linear subclasses: selects outputs, masks them and their gradient."""

    def setup_dsg(self, gamma: float, eps: float, selection: str, share_threshold: bool, s: int,
                  seed: int, k_rule: str = "ln-d") -> None:
        self.gamma, self.selection_rule, self.share_threshold = gamma, selection, share_threshold
        d = self.weight[0].numel()
        self.proj_k = projection_dim(d, eps, k_rule)
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("proj", ternary_projection(self.proj_k, d, s, gen), persistent=False)
        self._gen = gen
        self.selection: torch.Tensor | None = None

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """``(rows, d)``: im2col rows (conv) or samples (linear)."""
        if isinstance(self, nn.Conv2d):
            cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
            return cols.transpose(1, 2).reshape(-1, cols.shape[1])
        return x.reshape(-1, x.shape[-1])

    def _to_rows(self, y: torch.Tensor) -> torch.Tensor:
        if isinstance(self, nn.Conv2d):
            return y.movedim(1, -1).reshape(-1, y.shape[1])
        return y.reshape(-1, y.shape[-1])

    def _from_rows(self, rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if isinstance(self, nn.Conv2d):
            n, k, p, q = like.shape
            return rows.reshape(n, p, q, k).movedim(-1, 1)
        return rows.reshape(like.shape)

    def _select(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        n_out = y.shape[1] if isinstance(self, nn.Conv2d) else y.shape[-1]
        kept = math.ceil((1 - self.gamma) * n_out - 1e-9)
        true_rows = self._to_rows(y)
        oracle = _topk_mask(true_rows, kept)
        w = self.weight.reshape(self.weight.shape[0], -1)
        if self.selection_rule == "drs":
            with bookkeeping():  # DSG's own projection: reported as drs_macs, not a model GEMM
                score = (self._rows(x) @ self.proj.T) @ (w @ self.proj.T).T / self.proj_k
        elif self.selection_rule == "oracle":
            score = true_rows
        else:
            score = torch.rand(true_rows.shape, generator=self._gen)
        if self.share_threshold:
            thr = score.topk(kept, dim=1).values[:, -1].mean()
            mask = score >= thr
        else:
            mask = _topk_mask(score, kept)
        recall = float((mask & oracle).sum() / oracle.sum().clamp(min=1))
        per_row = mask.sum(1)
        rows = true_rows.shape[0]
        drs = self.selection_rule == "drs"
        topks = 1 if self.share_threshold else rows
        stats = {"proj_k": self.proj_k, "kept_target": kept, "rows": rows, "kept_min": int(per_row.min()),
                 "kept_max": int(per_row.max()), "recall_vs_oracle": round(recall, 6),
                 "drs_macs": rows * n_out * self.proj_k if drs else 0,
                 "drs_proj_adds": projection_additions(rows, n_out, w.shape[1], self.proj_k) if drs else 0,
                 "drs_adds": (rows + w.shape[0]) * int((self.proj != 0).sum()) if drs else 0,
                 "selection_compares": selection_compares(rows, n_out, kept, topks) if drs else 0}
        return self._from_rows(mask, y), stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)  # computed densely on the CPU; the trace says which outputs count
        with torch.no_grad():
            mask, stats = self._select(x, y)
        self.selection = mask
        self.last_stats = stats
        rec = active_recorder()
        if rec is not None and self.training:
            rec.set_mask(self, "y_sel", mask)
            rec.log(self, **stats)
        out = y * mask
        if out.requires_grad:  # dY at the GEMM output is masked too (registered before the recorder's)
            out.register_hook(lambda g, m=mask: g * m)
        return out


def _topk_mask(score: torch.Tensor, kept: int) -> torch.Tensor:
    idx = score.topk(kept, dim=1).indices
    return torch.zeros_like(score, dtype=torch.bool).scatter_(1, idx, True)


class DSGConv2d(_DSGLayer, nn.Conv2d):
    """A Conv2d whose outputs are selected by DSG."""


class DSGLinear(_DSGLayer, nn.Linear):
    """A Linear whose outputs are selected by DSG."""


class DSG(Method):
    """Dynamic sparse graph: per-sample output selection; sparse activations and gradients."""

    name: ClassVar[str] = "dsg"
    block_order: ClassVar[str] = "relu-bn"  # CONV → ReLU → BN, so skipped outputs are exact zeros
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "gamma": 0.8,  # fraction of outputs dropped per row (paper: 0.5 / 0.8 / 0.9)
        "eps": 0.5,  # JL distortion, the paper's value (k = floor(ln(d + 1)/ε²); see the module doc)
        "selection": "drs",  # drs | oracle | random
        "share_threshold": False,  # the paper's inter-sample threshold sharing (kept count approximate)
        "s": 3,  # projection sparsity: entries ±√s with probability 1/(2s)
        "dense_first": False,  # keep the first layer dense too (the classifier always is)
        "k_rule": "ln-d",  # ln-d: floor(ln(d+1)/ε²); achlioptas: ceil(4 ln(d+1)/(ε²/2 − ε³/3)) (dsg_ops)
        "masks": "double",  # double: the mask on the GEMM output and again after BN (DMS); single: first only
        "seed": 0,
    }

    def check_params(self) -> None:
        p = self.params
        if not 0 <= p["gamma"] < 1:
            raise ValueError(f"dsg: gamma must be in [0, 1), got {p['gamma']}")
        if p["eps"] <= 0:
            raise ValueError(f"dsg: eps must be > 0, got {p['eps']}")
        if p["selection"] not in SELECTIONS:
            raise ValueError(f"dsg: selection must be one of {SELECTIONS}, got {p['selection']!r}")
        if p["k_rule"] not in K_RULES:
            raise ValueError(f"dsg: k_rule must be one of {K_RULES}, got {p['k_rule']!r}")
        if p["masks"] not in ("double", "single"):
            raise ValueError(f"dsg: masks must be 'double' (DMS) or 'single', got {p['masks']!r}")

    def prepare(self, model: Model) -> Model:
        p = self.params
        self.layers: dict[str, _DSGLayer] = {}
        blocks = [b for b in model.blocks() if not b.classifier]
        for i, b in enumerate(blocks):
            if (i == 0 and p["dense_first"]) or not model.selectable(b.gemm):
                continue
            if isinstance(b.gemm, nn.Conv2d) and b.gemm.groups != 1:
                raise ValueError(f"dsg: {b.name} is a grouped conv; DSG selection needs groups=1")
            new = clone_as(DSGConv2d if isinstance(b.gemm, nn.Conv2d) else DSGLinear, b.gemm)
            new.setup_dsg(p["gamma"], p["eps"], p["selection"], p["share_threshold"], p["s"],
                          p["seed"] * 1000 + i, p["k_rule"])
            swap_module(model, b.name, new)
            self.layers[b.name] = new
            if b.bn is not None and p["masks"] == "double":  # DMS: the same mask on the BN output
                b.bn.register_forward_hook(_dms_hook(new))
        return super().prepare(model)

    def density(self) -> float | None:
        return 1 - self.params["gamma"]

    def describe(self) -> dict[str, Any]:
        return {**self.params, "block_order": self.block_order,
                "layers": {name: {"proj_k": layer.proj_k} for name, layer in self.layers.items()}}


def _dms_hook(layer: _DSGLayer):
    def hook(bn: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        masked = out * layer.selection
        rec = active_recorder()
        if rec is not None and bn.training and torch.is_grad_enabled():
            rec.set_mask(layer, "y_out", masked.detach() != 0)
        return masked
    return hook
