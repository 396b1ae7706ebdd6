"""Transformer models (imports torch): a GPT-like character model and a small ViT for MNIST.

Both are pre-LayerNorm transformers built from ``nn.Linear`` layers and
``F.scaled_dot_product_attention``:

- :class:`GPT`: token ``nn.Embedding`` plus a learned position table (a parameter added to the
  embeddings), ``depth`` blocks ``x + attn(LN(x))``, ``x + mlp(LN(x))`` with causal attention, a
  final LayerNorm and an output head whose weight *is* the token embedding's (tied, as GPT-2 and
  nanoGPT: one parameter, named ``wte.weight``, used by the gather and by the head's GEMM).
- :class:`ViT`: a ``Conv2d`` patch embedding (kernel = stride = patch), a class token and a
  position table, the same blocks without the causal mask, a final LayerNorm and a linear
  classifier on the class token.

Attention (:class:`SelfAttention`): one ``qkv`` linear ``D → 3D``, heads of ``D / heads``, SDPA
(``is_causal`` for the GPT), an output ``proj`` ``D → D``. A method may set ``select`` to a function
``(attention, q, k) → bool mask (B, H, Lq, Lk)`` (True = keep, the causal triangle included); the
call then passes it to SDPA as ``attn_mask`` (the top-k attention method,
:mod:`traces.methods.topk_attention`). MLP: ``fc`` ``D → 4D``, GELU, ``proj`` ``4D → D``.

The methods see (:meth:`Model.blocks`) every block's ``attn.qkv``, ``attn.proj``, ``mlp.fc`` and
``mlp.proj``, plus the ViT's patch embedding and classifier. The GPT's tied head is *not* a block:
converting it would give it a weight of its own (untying it) and sparsifying it would sparsify the
embedding table too, so every method leaves it dense (docs/methods.md). DSG's output selection
applies only to ``mlp.fc`` (``selectable``): GELU(0) = 0, so a skipped output stays an exact zero
downstream as after a ReLU, whereas q/k/v feed a softmax and the projections write into the
residual stream, where a dropped output is not skipped work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .models import Block, Model

Select = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``."""

    def __init__(self, dim: int, heads: int, causal: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention: dim {dim} is not a multiple of heads {heads}")
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.heads, self.causal = heads, causal
        self.select: Select | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = self.select(self, q, k) if self.select is not None else None
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal and mask is None)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    """``proj(GELU(fc(x)))`` with a hidden width of ``ratio · dim``."""

    def __init__(self, dim: int, ratio: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, ratio * dim)
        self.proj = nn.Linear(ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(LN(x))`` then ``x + mlp(LN(x))``."""

    def __init__(self, dim: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, causal)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class _Transformer(Model):
    """What the two models share: the blocks, their initialization and their method view."""

    def _init_blocks(self, dim: int, depth: int, heads: int, causal: bool) -> None:
        self.layers = nn.ModuleList(TransformerBlock(dim, heads, causal) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)

    def _init_weights(self, depth: int) -> None:
        """GPT-2's: normal(0, 0.02) weights, zero biases, residual projections scaled by
        ``1/√(2·depth)``."""
        for name, p in self.named_parameters():
            if name.endswith("bias") or ".ln" in name or name.startswith("ln_f"):
                continue
            nn.init.normal_(p, std=0.02 / math.sqrt(2 * depth) if name.endswith("proj.weight") else 0.02)

    def _block_linears(self) -> list[tuple[nn.Module, nn.Module | None]]:
        return [(m, None) for blk in self.layers
                for m in (blk.attn.qkv, blk.attn.proj, blk.mlp.fc, blk.mlp.proj)]

    def selectable(self, module: nn.Module) -> bool:
        """Whether DSG's output selection applies to this GEMM module (the MLPs' ``fc``)."""
        return any(module is blk.mlp.fc for blk in self.layers)


class GPT(_Transformer):
    """A GPT-like causal language model with tied input/output embeddings (see the module doc)."""

    def __init__(self, vocab: int, context: int, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, context, dim))
        self._init_blocks(dim, depth, heads, causal=True)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied: one parameter
        self._init_weights(depth)

    def _pairs(self):
        return self._block_linears()

    def blocks(self) -> list[Block]:
        """The transformer linears; no classifier (the head is the tied embedding, left dense)."""
        names = {m: n for n, m in self.named_modules()}
        return [Block(names[g], g, None) for g, _ in self._pairs()]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx``: ``(B, L)`` token ids, ``L ≤ context``; returns ``(B, L, vocab)`` logits."""
        if idx.shape[1] > self.context:
            raise ValueError(f"gpt: sequence of {idx.shape[1]} tokens exceeds the context {self.context}")
        x = self.wte(idx) + self.pos[:, : idx.shape[1]]
        for blk in self.layers:
            x = blk(x)
        return self.head(self.ln_f(x))


class ViT(_Transformer):
    """A small vision transformer (see the module doc)."""

    def __init__(self, in_shape: Sequence[int], n_classes: int, patch: int, dim: int, depth: int,
                 heads: int) -> None:
        super().__init__()
        c, h, w = in_shape
        if h % patch or w % patch:
            raise ValueError(f"vit: image {h}×{w} is not a whole number of {patch}×{patch} patches")
        self.patch_embed = nn.Conv2d(c, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (h // patch) * (w // patch) + 1, dim))
        self._init_blocks(dim, depth, heads, causal=False)
        self.head = nn.Linear(dim, n_classes)
        self._init_weights(depth)

    def _pairs(self):
        return [(self.patch_embed, None), *self._block_linears(), (self.head, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.pos
        for blk in self.layers:
            x = blk(x)
        return self.head(self.ln_f(x)[:, 0])


# presets: tiny ones record in seconds (tests, demo); the larger ones are for real runs
GPT_PRESETS = {
    "gpt-tiny": {"context": 32, "dim": 32, "depth": 4, "heads": 2},
    "gpt-small": {"context": 128, "dim": 192, "depth": 6, "heads": 6},
}
VIT_PRESETS = {
    "vit-tiny": {"patch": 7, "dim": 32, "depth": 2, "heads": 2},
    "vit-small": {"patch": 4, "dim": 64, "depth": 6, "heads": 4},
}


def build_gpt(name: str, input_shape: Sequence[int], vocab: int) -> GPT:
    """A GPT preset; ``input_shape`` is ``(seq_len,)`` and must fit its context."""
    p = GPT_PRESETS[name]
    if len(input_shape) != 1 or input_shape[0] > p["context"]:
        raise ValueError(f"{name}: takes token sequences of at most {p['context']}, "
                         f"got inputs {tuple(input_shape)}")
    return GPT(vocab, p["context"], p["dim"], p["depth"], p["heads"])


def build_vit(name: str, input_shape: Sequence[int], n_classes: int) -> ViT:
    """A ViT preset for image inputs ``(C, H, W)``."""
    if len(input_shape) != 3:
        raise ValueError(f"{name}: takes images (C, H, W), got inputs {tuple(input_shape)}")
    return ViT(input_shape, n_classes, **VIT_PRESETS[name])
