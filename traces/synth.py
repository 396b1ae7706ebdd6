"""Synthetic traces without training: a layer table plus densities, or a SCALE-Sim topology.

So users can ask "ResNet-50 at 80 % activation sparsity" without a training run. Masks are drawn
with a seeded generator, uniformly at the given density or per channel (each channel's density
drawn around the mean), and written with :class:`traces.TraceWriter` like a recorded trace.
Weight masks may instead be N:M structured (``structured=(n, m, transposable)``): each group of
``m`` along ``Kr`` keeps ``n`` seeded random positions (transposable: per ``m × m`` block).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import bits
from . import structured as nm
from .layer import LayerSpec, conv_out_size
from .manifest import TENSOR_INDEX, TENSORS, new_manifest
from .writer import TraceWriter

DEFAULT_DENSITY = {"x": 1.0, "w": 1.0, "dy": 1.0}


def conv(name: str, c: int, h: int, w: int, k: int, r: int, s: int | None = None, stride: int = 1,
         padding: int = 0, groups: int = 1, dilation: int = 1) -> LayerSpec:
    """A Conv2d layer spec from its geometry."""
    s = r if s is None else s
    p, q = conv_out_size((h, w), (r, s), (stride, stride), (padding, padding), (dilation, dilation))
    return LayerSpec(name, "conv2d", name, 0, "Conv2d", (c, h, w), (k, c // groups, r, s), (k, p, q),
                     (stride, stride), (padding, padding), (dilation, dilation), groups)


def linear(name: str, in_features: int, out_features: int, rows: int | None = None) -> LayerSpec:
    """A Linear layer spec; with ``rows``, each sample is a ``(rows, in_features)`` matrix."""
    lead = () if rows is None else (rows,)
    return LayerSpec(name, "linear", name, 0, "Linear", (*lead, in_features), (out_features, in_features),
                     (*lead, out_features))


def read_scalesim_topology(path: str | Path) -> list[LayerSpec]:
    """Layers of a SCALE-Sim topology CSV, conv (8 columns) or GEMM (``name, M, N, K``).

    SCALE-Sim's IFMAP sizes include any padding and its output is ``ceil((H − R + S)/S)``: where
    ``(H − R)`` is not a multiple of the stride, that reads past the edge, so the input is widened
    to ``(P − 1)·S + R`` to keep SCALE-Sim's GEMM dims. A GEMM row becomes a linear layer whose
    sample is an ``M × K`` matrix. Replay at batch 1, as SCALE-Sim runs.
    """
    p = Path(path)
    rows = [r for r in csv.reader(p.read_text().splitlines()) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{p}: empty topology")
    layers = []
    for i, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row if c.strip()]
        try:
            nums = [int(v) for v in cells[1:]]
        except ValueError:
            raise ValueError(f"{p}: line {i}: expected integers after the layer name, "
                             f"got {cells[1:]}") from None
        if len(nums) == 3:  # GEMM: M, N, K
            m, n, k = nums
            layers.append(linear(cells[0], k, n, rows=m))
        elif len(nums) >= 7:
            h, w, r, s, c, k, stride = nums[:7]
            pq = [math.ceil((dim - f + stride) / stride) for dim, f in ((h, r), (w, s))]
            hh, ww = ((pq[0] - 1) * stride + r, (pq[1] - 1) * stride + s)
            layers.append(conv(cells[0], c, hh, ww, k, r, s, stride=stride))
        else:
            raise ValueError(f"{p}: line {i}: expected 8 conv columns or 4 GEMM columns, got {len(cells)}")
    return layers


def read_layer_table(path: str | Path) -> list[LayerSpec]:
    """Layers from a CSV with columns ``name, kind, in_channels, height, width, out_channels,
    kernel, stride, padding, groups`` (conv) or ``name, linear, in_features, out_features``."""
    p = Path(path)
    out = []
    for i, row in enumerate(csv.reader(p.read_text().splitlines()), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or cells[0].startswith("#") or cells[0] == "name":
            continue
        try:
            if cells[1] == "linear":
                out.append(linear(cells[0], int(cells[2]), int(cells[3])))
            elif cells[1] == "conv2d":
                c, h, w, k, r, st, pad, g = (int(v) for v in cells[2:10])
                out.append(conv(cells[0], c, h, w, k, r, stride=st, padding=pad, groups=g))
            else:
                raise ValueError(f"kind must be conv2d or linear, got {cells[1]!r}")
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{p}: line {i}: {exc}") from None
    return out


PER_CHANNEL_CONCENTRATION = 8.0  # Beta(d·κ, (1 − d)·κ): channel densities with mean d


def _mask(rng: np.random.Generator, shape: tuple[int, ...], density: float, per_channel: bool) -> np.ndarray:
    """Bernoulli mask; ``per_channel`` draws one density per channel (axis 1) around ``density``."""
    if density >= 1:
        return np.ones(shape, dtype=bool)
    if per_channel and len(shape) >= 2:
        k = PER_CHANNEL_CONCENTRATION
        d = rng.beta(density * k, (1 - density) * k, size=shape[1])
        view = [1] * len(shape)
        view[1] = shape[1]
        return rng.random(shape) < d.reshape(view)
    return rng.random(shape) < density


def write_synthetic(layers: Sequence[LayerSpec], path: str | Path, *, batch: int = 1,
                    density: dict[str, float] | None = None, per_channel: bool = False,
                    iterations: int = 1, seed: int = 0, overwrite: bool = False,
                    name: str = "synthetic", structured: tuple[int, int, bool] | None = None) -> Path:
    """Write a trace whose masks are drawn at the given densities (tensors ``x``, ``w``, ``dy``).

    Every iteration carries masks; ``dx`` is recorded as present for every layer but the first
    and ``dw`` as dense, so all passes are replayed. ``structured=(n, m, transposable)`` draws
    N:M weight masks instead of a weight density (the manifest's method params say so, and the
    reader then checks every weight mask is N:M).
    """
    dens = {**DEFAULT_DENSITY, **(density or {})}
    bad = {k: v for k, v in dens.items() if k not in DEFAULT_DENSITY or not 0 < v <= 1}
    if bad:
        raise ValueError(f"densities must be in (0, 1] for x, w, dy; got {bad}")
    params: dict = {"density": dens, "per_channel": per_channel}
    if structured is not None:
        n, m, transposable = structured
        nm.check_nm(n, m)
        if density and "w" in density:
            raise ValueError("a weight density (w=...) and structured N:M weights exclude each other; "
                             "drop one")
        params["structured"] = {"n": n, "m": m, "transposable": bool(transposable)}
    rng = np.random.default_rng(seed)
    writer = TraceWriter(path, overwrite=overwrite)
    manifest = new_manifest(list(layers), model={"name": name, "class": "synthetic"},
                            method={"name": "synthetic", "params": params},
                            dataset={"name": "synthetic"}, seed=seed, batch_size=batch,
                            schedule={"every": 1, "mask_samples": None, "weights": False})
    writer.write_manifest(manifest)
    for it in range(iterations):
        counts = np.full((len(layers), len(TENSORS)), -1, dtype=np.int64)
        masks = {}
        for li, spec in enumerate(layers):
            for t in ("x", "w", "dy"):
                shape = spec.tensor_shape(t, batch)
                if t == "w" and structured is not None:
                    mask = nm.random_nm_mask(rng, shape, n, m, transposable, spec.groups)
                else:
                    mask = _mask(rng, shape, dens[t], per_channel)
                masks[(li, t)] = bits.pack(mask)
                counts[li, TENSOR_INDEX[t]] = int(mask.sum())
            counts[li, TENSOR_INDEX["y"]] = spec.numel("y", batch)
            counts[li, TENSOR_INDEX["dw"]] = spec.numel("w", 1)
            if li > 0:
                counts[li, TENSOR_INDEX["dx"]] = spec.numel("x", batch)
        writer.write_iteration(it, {"batch": batch, "reasons": ["synthetic"]}, counts, masks)
    manifest["complete"], manifest["iterations"] = True, iterations
    writer.write_manifest(manifest)
    return Path(path)
