"""Multi-level sparse networks (arXiv 2112.10930), as far as the reference describes them.

Levels are built sparsest first: dense training, magnitude pruning of every GEMM layer to the
sparsest density with masked fine-tuning (level 0); then, for each denser level, growth with
the previous level frozen as the *core* (its weights, the layers' biases and the BN affine
parameters do not change; BN running statistics are kept per level): first every free position
trains, then the free positions are pruned by magnitude to the level's extra density and fine-tuned.
So every level's non-zeros, positions and values, are a subset of the next level's.

Per-layer density allocation (``allocation``): ``"global"`` (default) ranks the candidate weights
of all layers together by magnitude (one threshold for the whole network, as in Han et al.'s
pruning), with a floor of 1 % of each layer's weights so no layer is cut off; layers with large
weights (the small conv layers) stay denser than the big FC layers, so a level's FLOPs fraction
differs from its weight fraction, as in the paper (13.38 % of the weights but 14.97 % of the
FLOPs). ``"uniform"`` gives every layer the level's density (FLOPs % = weights %).

Rerouting-aware growth (``reroute_training``, default **off**) is this project's own addition,
not from the paper or its patent (neither describes how rerouted configurations are trained):
rerouting runs the first r layers at
the denser level and the rest at the sparser one, so the grown weights of layer i must work with
sparse layers downstream, a configuration pure-level training never shows them (untrained, such
mixes scored below both pure levels). While level k grows (its grow and fit phases), every
iteration draws a reroute point r: with probability 1/2 the pure level (r = L), otherwise r
uniform in 1..L−1; layers before r run level k, the others level k−1 (their core, frozen). Only
the grown weights of layers before r receive gradient, so the sparser levels stay bit-exact. The
draw is seeded (``seed``).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..format import bits
from ..recording.recorder import active_recorder
from ..zoo.models import Model
from .base import Method, Phase, accuracy, clone_as, swap_module


class _LevelLayer:
    """Mixed into Conv2d/Linear subclasses: an active mask, a frozen core, nested level masks."""

    def setup_levels(self) -> None:
        self.register_buffer("active", torch.ones_like(self.weight, dtype=torch.bool), persistent=False)
        self.register_buffer("core", torch.zeros_like(self.weight, dtype=torch.bool), persistent=False)
        self.level_masks: list[torch.Tensor] = []
        self.grad_mask: torch.Tensor | None = None  # positions that train (None: all)
        self.phase = "dense"
        self.stage = 0  # the level being built
        self.bn: nn.Module | None = None
        self.route_mask: torch.Tensor | None = None  # rerouted below the reroute point: the core
        self.out_positions = 1  # output positions per sample (conv: P·Q), set by forward
        self.weight.register_hook(lambda g: g if self.grad_mask is None else g * self.grad_mask)

    def core_hash(self) -> str:
        """Digest of everything the frozen core holds: core weights, bias, the BN's affine params."""
        h = hashlib.sha256(self.weight.detach()[self.core].numpy().tobytes())
        for t in (self.bias, getattr(self.bn, "weight", None), getattr(self.bn, "bias", None)):
            if t is not None:
                h.update(t.detach().numpy().tobytes())
        return h.hexdigest()[:16]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.active if (self.route_mask is None or not self.training) else self.route_mask
        w = self.weight * mask
        rec = active_recorder()
        if rec is not None and self.training and torch.is_grad_enabled():
            rec.set_mask(self, "w", mask)
            rec.set_mask(self, "dw_needed", None if self.grad_mask is None else self.grad_mask & mask)
            stats: dict[str, Any] = {"phase": self.phase, "stage": self.stage,
                                     "active_density": round(float(mask.float().mean()), 6),
                                     "rerouted": self.route_mask is not None}
            if self.stage > 0:
                stats["core_hash"] = self.core_hash()
            rec.log(self, **stats)
            for i, m in enumerate(self.level_masks):
                rec.save_array(self, f"level{i}", bits.pack(m.numpy()))
        if isinstance(self, nn.Conv2d):
            y = self._conv_forward(x, w, self.bias)
            self.out_positions = int(y.shape[-2] * y.shape[-1])
            return y
        self.out_positions = 1
        return F.linear(x, w, self.bias)


class LevelConv2d(_LevelLayer, nn.Conv2d):
    """A Conv2d that holds nested level masks."""


class LevelLinear(_LevelLayer, nn.Linear):
    """A Linear that holds nested level masks."""


ALLOCATIONS = ("global", "uniform")
FLOOR = 0.01  # global allocation: every layer keeps at least this fraction of its weights


def allocate(weights: list[torch.Tensor], candidates: list[torch.Tensor], density: float,
             already: list[int], allocation: str) -> list[int]:
    """How many more weights each layer keeps so the network reaches ``density`` overall.

    ``already``: each layer's kept count so far (the frozen core). ``"uniform"``: every layer
    reaches ``ceil(density·n)``. ``"global"``: first every layer's floor (its largest candidates
    up to ``ceil(min(FLOOR, density)·n)`` in total), then one magnitude ranking over all remaining
    candidates fills the network up to ``ceil(density·N)`` (see the module doc). Either way a
    layer's picks are its own largest candidates, so :func:`magnitude_mask` reproduces them.
    """
    sizes = [w.numel() for w in weights]
    if allocation == "uniform":
        return [max(0, math.ceil(density * n) - a) for n, a in zip(sizes, already, strict=True)]
    floor = min(FLOOR, density)
    floors = [min(int(c.sum()), max(0, math.ceil(floor * n) - a))
              for n, a, c in zip(sizes, already, candidates, strict=True)]
    rest = []
    for w, c, f in zip(weights, candidates, floors, strict=True):
        score = torch.where(c, w.abs(), torch.full_like(w, -1.0)).flatten()
        score[magnitude_mask(w, c, f).flatten()] = -1.0  # the floor's picks are taken
        rest.append(score)
    scores = torch.cat(rest)
    target = max(0, math.ceil(density * sum(sizes)) - sum(already) - sum(floors))
    chosen = torch.zeros(scores.numel(), dtype=torch.bool)
    chosen[scores.topk(min(target, int((scores >= 0).sum()))).indices] = True
    return [f + int(part.sum()) for f, part in zip(floors, chosen.split(sizes), strict=True)]


def magnitude_mask(w: torch.Tensor, candidates: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` largest-magnitude positions among ``candidates`` (ties broken by index)."""
    score = torch.where(candidates, w.abs(), torch.full_like(w, -1.0)).flatten()
    keep = max(0, min(keep, int(candidates.sum())))
    out = torch.zeros(w.numel(), dtype=torch.bool)
    out[score.topk(keep).indices] = True
    return out.view_as(w)


class MultiLevel(Method):
    """Nested sparse sub-models, sparsest first, grown with a frozen core."""

    name: ClassVar[str] = "mlevel"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "levels": (0.05, 0.15),  # weight density per level, sparsest first (reference §3.4 / E5)
        "allocation": "global",  # per-layer densities: global magnitude ranking, or uniform
        "reroute_training": False,  # ours, not the paper's: train the rerouted mixes while growing
        "dense_last": False,  # keep the classifier dense at every level (as official ResNet codes do)
        "seed": 0,
    }

    def check_params(self) -> None:
        lv = tuple(float(v) for v in self.params["levels"])
        if not lv or any(not 0 < d <= 1 for d in lv) or list(lv) != sorted(set(lv)):
            raise ValueError(f"mlevel: levels must be strictly increasing densities in (0, 1], got {lv}")
        self.params["levels"] = lv
        if self.params["allocation"] not in ALLOCATIONS:
            raise ValueError(f"mlevel: allocation must be one of {ALLOCATIONS}, "
                             f"got {self.params['allocation']!r}")
        self._route_rng = torch.Generator().manual_seed(int(self.params["seed"]))
        self._growing = False

    def prepare(self, model: Model) -> Model:
        self.layers: dict[str, _LevelLayer] = {}
        blocks = [b for b in model.blocks() if not (b.classifier and self.params["dense_last"])]
        # a dense classifier is shared by every level: frozen with the core while levels grow
        self.shared = [b.gemm for b in model.blocks() if b.classifier and self.params["dense_last"]]
        self.bns = [b.bn for b in blocks if b.bn is not None]
        for b in blocks:
            new = clone_as(LevelConv2d if isinstance(b.gemm, nn.Conv2d) else LevelLinear, b.gemm)
            new.setup_levels()
            new.bn = b.bn
            swap_module(model, b.name, new)
            self.layers[b.name] = new
        self.bn_stats: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        return super().prepare(model)

    def phases(self, epochs: int) -> list[Phase]:
        n_levels = len(self.params["levels"])
        names = ["dense", "level0"] + [f"{kind}{k}" for k in range(1, n_levels) for kind in ("grow", "fit")]
        each = max(1, epochs // len(names))
        first = max(1, epochs - each * (len(names) - 1))
        return [Phase(n, first if i == 0 else each, level=None if n == "dense" else int(n[-1]))
                for i, n in enumerate(names)]

    def begin_phase(self, phase: Phase) -> None:
        levels = self.params["levels"]
        if phase.name.startswith("grow") or phase.name == "level0":
            prev = phase.level - 1
            if prev >= 0:
                self._save_bn(prev)
        layers = list(self.layers.values())
        weights = [layer.weight.detach() for layer in layers]
        if phase.name == "level0":
            keep = allocate(weights, [torch.ones_like(w, dtype=torch.bool) for w in weights], levels[0],
                            [0] * len(layers), self.params["allocation"])
        elif phase.name.startswith("fit"):
            keep = allocate(weights, [~layer.core for layer in layers], levels[phase.level],
                            [int(layer.core.sum()) for layer in layers], self.params["allocation"])
        for i, layer in enumerate(layers):
            layer.phase, layer.stage = phase.name, phase.level or 0
            layer.route_mask = None
            w = weights[i]
            if phase.name == "level0":
                layer.active = magnitude_mask(w, torch.ones_like(layer.active), keep[i])
                layer.level_masks = [layer.active.clone()]
                layer.grad_mask = layer.active.clone()
            elif phase.name.startswith("grow"):
                layer.core = layer.level_masks[-1].clone()
                layer.active = torch.ones_like(layer.active)
                layer.grad_mask = ~layer.core
            elif phase.name.startswith("fit"):
                grown = magnitude_mask(w, ~layer.core, keep[i])
                layer.active = layer.core | grown
                layer.level_masks.append(layer.active.clone())
                layer.grad_mask = grown
        self._growing = phase.name.startswith(("grow", "fit")) and bool(self.params["reroute_training"])
        frozen = phase.level is not None and phase.level > 0
        for layer in self.layers.values():
            if layer.bias is not None:
                layer.bias.requires_grad_(not frozen)
        for module in [*self.bns, *self.shared]:
            for p in module.parameters():
                p.requires_grad_(not frozen)

    def before_step(self) -> None:
        """While a level grows: draw this iteration's reroute point (module doc)."""
        if not self._growing:
            return
        n = len(self.layers)
        if n < 2 or torch.rand(1, generator=self._route_rng).item() < 0.5:
            r = n  # the pure level being grown
        else:
            r = 1 + int(torch.randint(0, n - 1, (1,), generator=self._route_rng))
        for i, layer in enumerate(self.layers.values()):
            layer.route_mask = None if i < r else layer.core

    def _save_bn(self, level: int) -> None:
        self.bn_stats[level] = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in self.bns]

    def _use(self, choice: list[int]) -> None:
        """Configure layer i at level choice[i] (its mask and, for its BN, that level's statistics)."""
        for layer, lv in zip(self.layers.values(), choice, strict=True):
            layer.active = layer.level_masks[lv]
            layer.route_mask = None
            if layer.bn is not None and lv in self.bn_stats:
                i = self.bns.index(layer.bn)
                layer.bn.running_mean.copy_(self.bn_stats[lv][i][0])
                layer.bn.running_var.copy_(self.bn_stats[lv][i][1])

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """Accuracy and weight-MACs per sample of every level and every reroute point."""
        last = len(self.params["levels"]) - 1
        if any(len(layer.level_masks) <= last for layer in self.layers.values()):
            return {}  # training ended before every level was built
        self._save_bn(last)
        saved = [layer.active for layer in self.layers.values()]
        n_layers = len(self.layers)
        out: dict[str, Any] = {"levels": [], "reroute": []}
        for lv in range(last + 1):
            self._use([lv] * n_layers)
            out["levels"].append({"level": lv, "density": self.params["levels"][lv],
                                  "accuracy": accuracy(self.model, x, y)})
        accuracy(self.model, x[:1], y[:1])  # one forward: every layer learns its output positions
        positions = [layer.out_positions for layer in self.layers.values()]
        dense_flops = 2 * sum(layer.weight.numel() * p for layer, p in zip(self.layers.values(), positions,
                                                                            strict=True))
        for r in range(n_layers + 1):  # the first r layers at the densest level, the rest sparsest
            choice = [last] * r + [0] * (n_layers - r)
            self._use(choice)
            flops = 2 * sum(int(layer.level_masks[lv].sum()) * p
                            for layer, lv, p in zip(self.layers.values(), choice, positions, strict=True))
            out["reroute"].append({"reroute_after": r, "accuracy": accuracy(self.model, x, y),
                                   "flops_per_sample": flops, "flop_fraction": flops / dense_flops})
        total = sum(layer.weight.numel() for layer in self.layers.values())
        for row in out["levels"]:
            lv = row["level"]
            row["weight_fraction"] = sum(int(layer.level_masks[lv].sum())
                                         for layer in self.layers.values()) / total
            row["flop_fraction"] = 2 * sum(int(layer.level_masks[lv].sum()) * p for layer, p in
                                           zip(self.layers.values(), positions, strict=True)) / dense_flops
            row["layer_densities"] = {n: round(float(layer.level_masks[lv].float().mean()), 6)
                                      for n, layer in self.layers.items()}
        self._use([last] * n_layers)
        for layer, a in zip(self.layers.values(), saved, strict=True):
            layer.active = a
        return out

    def density(self) -> float:
        kept = sum(int(layer.active.sum()) for layer in self.layers.values())
        return kept / sum(layer.active.numel() for layer in self.layers.values())

    def describe(self) -> dict[str, Any]:
        return {"levels": list(self.params["levels"]), "nesting": "values+positions",
                "pruning": f"magnitude, {self.params['allocation']} allocation",
                "allocation": self.params["allocation"],
                "reroute_training": bool(self.params["reroute_training"]), "seed": self.params["seed"],
                "dense_last": bool(self.params["dense_last"]),
                "frozen_in_growth": ["core weights", "biases", "bn affine"],
                "bn_running_stats": "per level", "layers": list(self.layers)}
