"""Build GPU replays of single layers from in-memory masks (no trace files)."""

from __future__ import annotations

import numpy as np

import archs
from hwsim import gpu
from hwsim.layer_input import LayerInput
from traces.format.layer import LayerSpec
from traces.format.manifest import TENSORS

A100 = archs.PRESETS["gpu-a100"]


def linear(rows: int, in_features: int, out_features: int) -> LayerSpec:
    """A linear layer whose GEMM has ``rows`` rows for a batch of one: forward is
    ``rows × in_features × out_features`` (torchao's ``mkn``)."""
    return LayerSpec("lin", "linear", "lin", 0, "Linear", (rows, in_features), (out_features, in_features),
                     (rows, out_features))


def transposable_24(out_features: int, in_features: int) -> np.ndarray:
    """A weight mask that is 2:4 along both axes: 4×4 blocks with two kept per row and column."""
    block = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=bool)
    return np.tile(block, (out_features // 4, in_features // 4))


def row_24(out_features: int, in_features: int) -> np.ndarray:
    """An ordinary 2:4 mask along the input axis, the same in every row: columns 0 and 1 of each
    group of four are kept in all rows, so down the output channels it is 4:4, not 2:4."""
    return np.tile(np.array([1, 1, 0, 0], dtype=bool), (out_features, in_features // 4))


def layer_input(spec: LayerSpec, w: np.ndarray, *, x_density: float = 1.0, dy_density: float = 1.0,
                y_sel: np.ndarray | None = None, stats: dict | None = None, seed: int = 0) -> LayerInput:
    """One iteration of one layer with batch 1, dense activations unless densities say otherwise."""
    rng = np.random.default_rng(seed)
    x = rng.random(spec.tensor_shape("x", 1)) < x_density
    dy = rng.random(spec.tensor_shape("dy", 1)) < dy_density
    masks = {"x": x, "w": w, "dy": dy, "y_sel": y_sel, "dw_needed": None}
    counts = {t: None for t in TENSORS}
    counts.update(x=int(x.sum()), w=int(w.sum()), dy=int(dy.sum()), y=spec.numel("y", 1),
                  dx=spec.numel("x", 1), dw=spec.numel("w", 1))
    return LayerInput(0, 1, 1, True, counts, masks, stats or {})


def replay(spec: LayerSpec, it: LayerInput, arch: archs.Architecture = A100, method: str = "synthetic",
           passes: tuple[str, ...] = ("forward", "backward_data", "backward_weight")) -> dict[str, dict]:
    """Report rows of one layer, by pass."""
    ctx = gpu.context(arch, {"method": {"name": method}}, dataflow=None, backend="analytic",
                      stream_chunk=None)
    return {r["pass"]: r for r in gpu.layer_rows(ctx, spec, it, 0, passes)}
