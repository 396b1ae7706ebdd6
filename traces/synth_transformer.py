"""Synthetic transformer traces from a configuration, without training (GPT-2/GPT-3-shaped models).

A decoder block of a GPT-style model (pre-LayerNorm, as GPT-2) per layer ``l`` records:

===========================  ======  ==============================================================
name                          kind    per sample
===========================  ======  ==============================================================
``h.l.attn.c_attn``           linear  ``(L, d) → (L, 3d)``: Q, K and V
``h.l.attn.scores``           matmul  ``Q (h, L, dh) · Kᵀ (h, dh, L) → S (h, L, L)``
``h.l.attn.context``          matmul  ``P (h, L, L) · V (h, L, dh) → (h, L, dh)``
``h.l.attn.c_proj``           linear  ``(L, d) → (L, d)``
``h.l.mlp.c_fc``              linear  ``(L, d) → (L, d_ff)``
``h.l.mlp.c_proj``            linear  ``(L, d_ff) → (L, d)``
===========================  ======  ==============================================================

and, with ``vocab``, the output projection ``lm_head`` ``(L, d) → (L, vocab)`` tied to the token
embedding (its parameter is ``wte.weight``). The two attention products carry the ``attention``
field (``call`` ``h.l.attn``, backend ``flash``: one SDPA call, as ``F.scaled_dot_product_attention``
records), so a family may cost them fused. The non-GEMM work is the manifest's ``vector_ops`` table
(written once the trace format has that table):
per layer two LayerNorms, GELU, two residual adds (and dropouts when ``dropout``), plus the final
LayerNorm; the softmax is inside the attention call.

Masks: every operand is drawn at the given densities (default 1: dense); causal attention adds its
structural zeros exactly: the scores' ``y_sel`` (entries computed: key ``j ≤`` query ``i``), the
probabilities ``P`` (the context product's ``x``) and the score gradients (the scores' ``dy``) are
zero above the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .format import bits
from .format.layer import LayerSpec
from .format.manifest import OPTIONAL, TENSOR_INDEX, TENSORS, new_manifest
from .format.writer import TraceWriter

BACKEND = "flash"  # the SDPA backend the attention pairs name (one fused call in the recorded model)


@dataclass(frozen=True)
class TransformerConfig:
    """A GPT-style decoder (or encoder when not causal); sizes per sample."""

    layers: int  # transformer blocks
    d_model: int  # hidden size d
    heads: int  # attention heads h (d = h · head_dim)
    seq: int  # tokens per sample L
    batch: int = 1  # samples per step
    d_ff: int = 0  # MLP inner size (0: 4 · d_model)
    causal: bool = True  # decoder: query i attends to keys j <= i
    vocab: int = 0  # output projection to the vocabulary, tied to the embedding (0: none)
    dropout: bool = False  # dropout after attention and MLP (vector ops)
    name: str = "transformer"

    def __post_init__(self) -> None:
        bad = {k: v for k, v in (("layers", self.layers), ("d_model", self.d_model), ("heads", self.heads),
                                 ("seq", self.seq), ("batch", self.batch)) if v < 1}
        bad.update({k: v for k, v in (("d_ff", self.d_ff), ("vocab", self.vocab)) if v < 0})
        if bad:
            raise ValueError(f"transformer config: sizes must be positive, got {bad}")
        if self.d_model % self.heads:
            raise ValueError(f"transformer config: d_model {self.d_model} is not a multiple of heads "
                             f"{self.heads}; choose heads dividing d_model")

    @property
    def inner(self) -> int:
        return self.d_ff or 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


# Published model sizes (GPT-2: Radford et al. 2019, Table 2 and the released configs, context 1024,
# vocabulary 50257; GPT-3 175B: Brown et al. 2020, Table 2.1, context 2048).
PRESETS: dict[str, dict[str, int]] = {
    "gpt2-small": {"layers": 12, "d_model": 768, "heads": 12, "seq": 1024, "vocab": 50257},
    "gpt2-medium": {"layers": 24, "d_model": 1024, "heads": 16, "seq": 1024, "vocab": 50257},
    "gpt3-175b": {"layers": 96, "d_model": 12288, "heads": 96, "seq": 2048, "vocab": 50257},
}
_INT_KEYS = ("layers", "d_model", "heads", "seq", "d_ff", "vocab", "batch")
_BOOL_KEYS = ("causal", "dropout")


def parse_config(text: str, *, batch: int = 1) -> TransformerConfig:
    """A config from ``preset[,key=value...]`` or ``key=value,...`` (ValueError naming the bad part)."""
    values: dict[str, Any] = {"batch": batch}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if "=" not in part:
            if part not in PRESETS:
                raise ValueError(f"--transformer: unknown preset {part!r}; presets: {', '.join(PRESETS)}")
            values.update(PRESETS[part], name=part)
            continue
        key, val = (x.strip() for x in part.split("=", 1))
        if key not in _INT_KEYS + _BOOL_KEYS:
            raise ValueError(f"--transformer: unknown key {key!r}; keys: {', '.join(_INT_KEYS + _BOOL_KEYS)}")
        try:
            values[key] = int(val) if key in _INT_KEYS else bool(int(val))
        except ValueError:
            raise ValueError(f"--transformer: {key}={val!r} is not an integer") from None
    missing = [k for k in ("layers", "d_model", "heads", "seq") if k not in values]
    if missing:
        raise ValueError(f"--transformer: give {', '.join(missing)} (or a preset: {', '.join(PRESETS)})")
    return TransformerConfig(**values)


def _linear(name: str, rows: int, fin: int, fout: int, parameter: str | None = None) -> LayerSpec:
    return LayerSpec(name, "linear", name, 0, "Linear", (rows, fin), (fout, fin), (rows, fout),
                     parameter=parameter)


def _matmul(name: str, call: str, role: str, a: tuple[int, int, int], n: int, causal: bool) -> LayerSpec:
    h, m, k = a
    att = {"call": call, "role": role, "causal": causal, "backend": BACKEND}
    return LayerSpec(name, "matmul", call, 0, "matmul", (h, m, k), (h, k, n), (h, m, n), groups=h,
                     attention=att)


def transformer_layers(cfg: TransformerConfig) -> list[LayerSpec]:
    """Every GEMM-bearing record of one training step, in execution order."""
    L, d, h, dh = cfg.seq, cfg.d_model, cfg.heads, cfg.head_dim
    out: list[LayerSpec] = []
    for i in range(cfg.layers):
        p = f"h.{i}"
        out += [
            _linear(f"{p}.attn.c_attn", L, d, 3 * d),
            _matmul(f"{p}.attn.scores", f"{p}.attn", "scores", (h, L, dh), L, cfg.causal),
            _matmul(f"{p}.attn.context", f"{p}.attn", "context", (h, L, L), dh, cfg.causal),
            _linear(f"{p}.attn.c_proj", L, d, d),
            _linear(f"{p}.mlp.c_fc", L, d, cfg.inner),
            _linear(f"{p}.mlp.c_proj", L, cfg.inner, d),
        ]
    if cfg.vocab:
        out.append(_linear("lm_head", L, d, cfg.vocab, parameter="wte.weight"))
    return out


def transformer_vector_ops(cfg: TransformerConfig) -> list[dict[str, Any]]:
    """The non-GEMM op calls of one step (the manifest's ``vector_ops`` rows; shapes per sample)."""
    L, d = cfg.seq, cfg.d_model
    both = ["forward", "backward_data"]
    rows: list[dict[str, Any]] = []

    def op(name: str, kind: str, aten: str, module: str, shape: tuple[int, ...]) -> None:
        rows.append({"name": name, "kind": kind, "op": aten, "module": module, "shape": list(shape),
                     "batched": True, "passes": both})

    for i in range(cfg.layers):
        p = f"h.{i}"
        op(f"{p}.ln_1", "layer_norm", "native_layer_norm", f"{p}.ln_1", (L, d))
        if cfg.dropout:
            op(f"{p}.attn.resid_dropout", "dropout", "native_dropout", f"{p}.attn", (L, d))
        op(f"{p}.add_1", "add", "add", p, (L, d))
        op(f"{p}.ln_2", "layer_norm", "native_layer_norm", f"{p}.ln_2", (L, d))
        op(f"{p}.mlp.act", "gelu", "gelu", f"{p}.mlp", (L, cfg.inner))
        if cfg.dropout:
            op(f"{p}.mlp.dropout", "dropout", "native_dropout", f"{p}.mlp", (L, d))
        op(f"{p}.add_2", "add", "add", p, (L, d))
    op("ln_f", "layer_norm", "native_layer_norm", "ln_f", (L, d))
    return rows


def _causal(shape: tuple[int, ...]) -> np.ndarray:
    """``(..., L, L)`` bool, True on and below the diagonal (a broadcast view)."""
    tril = np.tri(shape[-2], shape[-1], dtype=bool)
    return np.broadcast_to(tril, shape)


def _draw(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    """A Bernoulli(density) mask, drawn one sample at a time (4 bytes per element of one sample)."""
    if density >= 1:
        return np.ones(shape, dtype=bool)
    out = np.empty(shape, dtype=bool)
    for s in range(shape[0]):
        out[s] = rng.random(shape[1:], dtype=np.float32) < density
    return out


def _structural(spec: LayerSpec, tensor: str, causal: bool) -> bool:
    """Whether ``tensor`` of ``spec`` is zero above the diagonal (causal attention)."""
    if not causal or spec.attention is None:
        return False
    role = spec.attention["role"]
    return (role == "scores" and tensor in ("y_sel", "dy")) or (role == "context" and tensor == "x")


def write_transformer(cfg: TransformerConfig, path: str | Path, *, density: dict[str, float] | None = None,
                      iterations: int = 1, seed: int = 0, overwrite: bool = False) -> Path:
    """Write a trace of ``cfg`` whose operands are drawn at ``density`` (``x``, ``w``, ``dy``; default
    dense), causal structure exact. Every iteration carries masks; ``dx`` is present for every
    layer but the first, ``dw`` dense."""
    dens = {"x": 1.0, "w": 1.0, "dy": 1.0, **(density or {})}
    bad = {k: v for k, v in dens.items() if k not in ("x", "w", "dy") or not 0 < v <= 1}
    if bad:
        raise ValueError(f"densities must be in (0, 1] for x, w, dy; got {bad}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    layers = transformer_layers(cfg)
    batch = cfg.batch
    rng = np.random.default_rng(seed)
    writer = TraceWriter(path, overwrite=overwrite)
    model = {"name": cfg.name, "class": "synthetic transformer",
             "config": {k: getattr(cfg, k) for k in ("layers", "d_model", "heads", "seq", "d_ff", "causal",
                                                    "vocab", "dropout")}}
    manifest = new_manifest(layers, model=model, method={"name": "synthetic", "params": {"density": dens}},
                            dataset={"name": "synthetic"}, seed=seed, batch_size=batch,
                            schedule={"every": 1, "mask_samples": None, "weights": False})
    if "vector_ops" in OPTIONAL:  # the manifest's table of non-GEMM op calls, where the format has it
        manifest["vector_ops"] = transformer_vector_ops(cfg)
    writer.write_manifest(manifest)
    for it in range(iterations):
        counts = np.full((len(layers), len(TENSORS)), -1, dtype=np.int64)
        masks = {}
        for li, spec in enumerate(layers):
            for t in ("x", "w", "dy"):
                mask = _draw(rng, spec.tensor_shape(t, batch), dens[t])
                if _structural(spec, t, cfg.causal):
                    mask &= _causal(mask.shape)
                masks[(li, t)] = bits.pack(mask)
                counts[li, TENSOR_INDEX[t]] = int(mask.sum(dtype=np.int64))
                del mask
            if _structural(spec, "y_sel", cfg.causal):
                sel = np.ascontiguousarray(_causal(spec.tensor_shape("y_sel", batch)))
                masks[(li, "y_sel")] = bits.pack(sel)
                counts[li, TENSOR_INDEX["y_sel"]] = int(sel.sum(dtype=np.int64))
                del sel
            counts[li, TENSOR_INDEX["y"]] = spec.numel("y", batch)
            counts[li, TENSOR_INDEX["dw"]] = spec.numel("dw", batch)
            if li > 0:
                counts[li, TENSOR_INDEX["dx"]] = spec.numel("dx", batch)
        writer.write_iteration(it, {"batch": batch, "reasons": ["synthetic"]}, counts, masks)
    manifest["complete"], manifest["iterations"] = True, iterations
    writer.write_manifest(manifest)
    return Path(path)
