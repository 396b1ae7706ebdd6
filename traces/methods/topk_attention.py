"""Top-k attention: dynamic attention sparsity that keeps ``k`` scores per query (imports torch).

The rule of the Explicit Sparse Transformer (Zhao et al. 2019, arXiv 1912.11637) and of top-k
attention (Gupta et al. 2021, arXiv 2106.06899): for every query (each sample, head and position)
only the ``k`` largest scores ``q·kᵀ/√d`` among the keys it may see (the causal triangle in a GPT)
enter the softmax; the others are masked to −∞, so their probabilities and gradients are exactly
0. A query with fewer than ``k`` visible keys keeps them all. Ties go to the earlier key.

How it runs: the method sets every :class:`~traces.zoo.transformer.SelfAttention`'s ``select``;
at each call it computes the scores under ``torch.no_grad()`` inside the recorder's
``bookkeeping()`` (the selection is the method's own work, not a model GEMM), takes the top ``k``
per row and passes the boolean keep-mask (``(B, H, Lq, Lk)``, True = kept, causal triangle
included) to ``F.scaled_dot_product_attention`` as ``attn_mask``. The recorder's attention
capture stores that mask as the score product's ``y_sel`` (the result entries that are needed),
and the context product ``P·V`` sees the zeros of ``P`` outside it. The model's linear layers stay
dense (combine with a weight method in a later version).

Exact selection reads every visible score: ``B·H·Σ_rows visible·d_head`` MACs per call, the same
as the dense score product, so on hardware the saving is in the softmax, ``P·V`` and the whole
backward, not in the forward ``q·kᵀ``; :attr:`TopKAttention.last_stats` keeps, per attention
module, ``selection_macs`` (that product), ``selection_compares`` (one compare per visible score
plus ``⌈log2(k + 1)⌉`` heap compares per kept one) and ``kept_fraction`` (kept over visible).
A recorded step logs them on the attention's ``qkv`` linear (the recorder takes a method's
numbers per recorded module; ``kept_fraction`` as ``attention_kept_fraction``), and the replay
charges ``selection_macs`` and ``selection_compares`` as that layer's forward vector work, as it
does DSG's selection (hwsim/vector.py): an undercount where hardware would run the selection
product on its GEMM array, whose cost equals the dense score product's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..recording.recorder import active_recorder, bookkeeping
from ..zoo.models import Model
from .base import Method


def topk_keep(scores: torch.Tensor, k: int, causal: bool) -> torch.Tensor:
    """Bool mask of the ``k`` largest ``scores`` per row (last dim), within the causal triangle
    when ``causal`` (row ``i`` sees keys ``0..i``); rows with fewer visible keys keep them all."""
    lq, lk = scores.shape[-2:]
    s = scores
    visible = None
    if causal:
        visible = torch.ones(lq, lk, dtype=torch.bool, device=scores.device).tril(lk - lq)
        s = scores.masked_fill(~visible, float("-inf"))
    idx = s.topk(min(k, lk), dim=-1, sorted=False).indices
    keep = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, idx, True)
    return keep & visible if visible is not None else keep


class TopKAttention(Method):
    """Keep the ``k`` largest attention scores per query; the linears stay dense."""

    name: ClassVar[str] = "attn-topk"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "k": 8,  # scores kept per query (this project's default)
    }

    def check_params(self) -> None:
        k = self.params["k"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"attn-topk: k (--attn-k) must be an integer >= 1, got {k!r}")

    def prepare(self, model: Model) -> Model:
        from ..zoo.transformer import SelfAttention

        self.attentions = {n: m for n, m in model.named_modules() if isinstance(m, SelfAttention)}
        if not self.attentions:
            raise ValueError(f"attn-topk: {type(model).__name__} has no attention layers "
                             "(use a transformer: gpt-tiny, gpt-small, vit-tiny, vit-small)")
        self.names = {m: n for n, m in self.attentions.items()}
        self.last_stats: dict[str, dict[str, float]] = {}
        for m in self.attentions.values():
            m.select = self.select
        return super().prepare(model)

    def select(self, attention: nn.Module, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The keep-mask of one attention call (``q``, ``k``: ``(B, H, L, d_head)``)."""
        kk = self.params["k"]
        with torch.no_grad(), bookkeeping():
            scores = q @ k.transpose(-2, -1)  # the 1/√d scale does not change the order
            keep = topk_keep(scores, kk, attention.causal)
        b, h, lq, lk = scores.shape
        d = q.shape[-1]
        rows = torch.arange(lq)  # causal row i sees keys 0 .. i + (lk - lq)
        visible_per_head = lq * lk if not attention.causal else \
            int((rows + 1 + lk - lq).clamp(0, lk).sum())
        kept = int(keep.sum())
        visible = b * h * visible_per_head
        stats = {
            "selection_macs": visible * d,
            "selection_compares": visible + kept * math.ceil(math.log2(kk + 1)),
            "kept_fraction": round(kept / visible, 6),
        }
        self.last_stats[self.names[attention]] = stats
        rec = active_recorder()
        if rec is not None and attention.training and torch.is_grad_enabled():
            # the recorder takes a method's numbers per recorded module: the call's qkv linear
            rec.log(attention.qkv, selection_macs=stats["selection_macs"],
                    selection_compares=stats["selection_compares"],
                    attention_kept_fraction=stats["kept_fraction"])
        return keep

    def density(self) -> float | None:
        if not self.last_stats:
            return None
        return sum(s["kept_fraction"] for s in self.last_stats.values()) / len(self.last_stats)

    def describe(self) -> dict[str, Any]:
        return {**self.params, "selection": "exact", "attention_layers": list(self.attentions)}
