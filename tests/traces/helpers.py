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
