"""Write small traces with TraceWriter alone (numpy only), for format tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from traces import LayerSpec, TraceWriter
from traces.format import bits
from traces.format.manifest import TENSOR_INDEX, TENSORS, new_manifest

LAYERS = [
    LayerSpec("conv", "conv2d", "conv", 0, "Conv2d", (3, 8, 8), (4, 3, 3, 3), (4, 8, 8),
              padding=(1, 1)),
    LayerSpec("fc", "linear", "fc", 0, "Linear", (256,), (10, 256), (10,)),
]


def write_trace(path: Path, n_iter: int = 6, batch: int = 4, mask_every: int = 2,
                layers: list[LayerSpec] = LAYERS, snapshot_every: int = 3, seed: int = 0,
                flip_fraction: float = 0.01, counts_batch: int = 1) -> dict[int, dict]:
    """Write a trace of random masks; return what was written per mask iteration."""
    rng = np.random.default_rng(seed)
    writer = TraceWriter(path, weight_snapshot_every=snapshot_every, counts_batch=counts_batch)
    writer.write_manifest(new_manifest(layers, model={"name": "synthetic"},
                                       method={"name": "dense", "params": {}},
                                       dataset={"name": "random"}, schedule={"every": mask_every},
                                       batch_size=batch))
    w_masks = [rng.random(s.w_shape) < 0.6 for s in layers]
    written: dict[int, dict] = {}
    for it in range(n_iter):
        counts = np.full((len(layers), len(TENSORS)), -1, dtype=np.int64)
        masks: dict = {}
        truth: dict = {}
        for li, spec in enumerate(layers):
            flips = rng.random(spec.w_shape) < flip_fraction  # DST-like: a few flips per step
            w_masks[li] = w_masks[li] ^ flips
            tensors = {"x": rng.random(spec.tensor_shape("x", batch)) < 0.5,
                       "y": rng.random(spec.tensor_shape("y", batch)) < 0.7,
                       "dy": rng.random(spec.tensor_shape("dy", batch)) < 0.4,
                       "w": w_masks[li].copy()}
            for name, mask in tensors.items():
                counts[li, TENSOR_INDEX[name]] = int(mask.sum())
                masks[(li, name)] = bits.pack(mask)
            truth[li] = tensors
        has = it % mask_every == 0
        writer.write_iteration(it, {"batch": batch}, counts, masks if has else None)
        if has:
            written[it] = truth
    manifest = new_manifest(layers, model={"name": "synthetic"}, method={"name": "dense", "params": {}},
                            dataset={"name": "random"}, schedule={"every": mask_every},
                            batch_size=batch)
    manifest["complete"] = True
    manifest["iterations"] = n_iter
    writer.write_manifest(manifest)
    return written


def attention_layers(seq: int, dim: int, heads: int, causal: bool = True) -> list[LayerSpec]:
    """The two ``matmul`` records of one attention call: scores ``Q·Kᵀ`` and context ``P·V``."""
    att = {"call": "attn", "causal": causal, "backend": "explicit"}
    return [
        LayerSpec("attn.scores", "matmul", "attn", 0, "matmul", (heads, seq, dim), (heads, dim, seq),
                  (heads, seq, seq), groups=heads, attention={**att, "role": "scores"}),
        LayerSpec("attn.context", "matmul", "attn", 1, "matmul", (heads, seq, seq), (heads, seq, dim),
                  (heads, seq, dim), groups=heads, attention={**att, "role": "context"}),
    ]


def write_attention_trace(path: Path, seq: int = 6, dim: int = 4, heads: int = 2, batch: int = 3,
                          n_iter: int = 2, density: float = 0.6, causal: bool = True,
                          seed: int = 0) -> dict[int, dict]:
    """A trace of one attention call (``attention_layers``) with random Q, K, V masks, the causal
    structure in the scores' ``y_sel`` and P's mask inside it; every iteration has masks."""
    rng = np.random.default_rng(seed)
    layers = attention_layers(seq, dim, heads, causal)
    writer = TraceWriter(path)
    kw = {"model": {"name": "attention"}, "method": {"name": "dense", "params": {}},
          "dataset": {"name": "random"}, "schedule": {"every": 1}, "batch_size": batch}
    writer.write_manifest(new_manifest(layers, **kw))
    sel = np.tril(np.ones((seq, seq), bool)) if causal else np.ones((seq, seq), bool)
    sel = np.broadcast_to(sel, (batch, heads, seq, seq)).copy()
    written: dict[int, dict] = {}
    for it in range(n_iter):
        def rand(shape: tuple[int, ...], within: np.ndarray | None = None) -> np.ndarray:
            m = rng.random(shape) < density
            return m if within is None else m & within
        q, kt = rand((batch, heads, seq, dim)), rand((batch, heads, dim, seq))
        v = rand((batch, heads, seq, dim))
        p = rand(sel.shape, sel)  # softmax output: inside the structure (zeros: dropout)
        truth = {0: {"x": q, "w": kt, "y": sel.copy(), "y_sel": sel, "dy": rand(sel.shape, sel),
                     "dx": rand(q.shape), "dw": rand(kt.shape)},
                 1: {"x": p, "w": v, "y": rand(v.shape), "dy": rand(v.shape),
                     "dx": rand(p.shape, sel), "dw": rand(v.shape)}}
        counts = np.full((len(layers), len(TENSORS)), -1, dtype=np.int64)
        masks: dict = {}
        for li, tensors in truth.items():
            for name, mask in tensors.items():
                counts[li, TENSOR_INDEX[name]] = int(mask.sum())
                if name != "dw":
                    masks[(li, name)] = bits.pack(mask)
        writer.write_iteration(it, {"batch": batch}, counts, masks)
        written[it] = truth
    manifest = new_manifest(layers, **kw)
    manifest["complete"] = True
    manifest["iterations"] = n_iter
    writer.write_manifest(manifest)
    return written
