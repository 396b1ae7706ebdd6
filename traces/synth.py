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

from .format import bits
from .format import structured as nm
from .format.layer import MAX_BATCH, LayerSpec, conv_out_size
from .format.manifest import TENSOR_INDEX, TENSORS, new_manifest
from .format.reader import irregular
from .format.writer import TraceWriter

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


def read_scalesim_sparsity(path: str | Path) -> dict[str, tuple[int, int]]:
    """Each layer's N:M from a SCALE-Sim v3 topology's ``Sparsity`` column (the last cell with a
    ``:``); layers without one are left out (SCALE-Sim runs them dense, ``1:1``)."""
    p = Path(path)
    out = {}
    for i, row in enumerate(_csv_rows(p)[1:], start=2):
        cells = [c.strip() for c in row if c.strip()]
        text = next((c for c in cells[1:] if ":" in c), None)
        if text is None:
            continue
        try:
            n, m = (int(v) for v in text.split(":"))
            nm.check_nm(n, m)
        except ValueError as exc:
            raise ValueError(f"{p}: line {i}: Sparsity {text!r}: expected N:M such as 2:4 ({exc})") from None
        out[cells[0]] = (n, m)
    return out


def read_scalesim_topology(path: str | Path) -> list[LayerSpec]:
    """Layers of a SCALE-Sim topology CSV, conv (8 columns) or GEMM (``name, M, N, K``), each
    optionally followed by v3's ``Sparsity`` column (``2:4``; :func:`read_scalesim_sparsity`).

    SCALE-Sim's IFMAP sizes include any padding and its output is ``ceil((H − R + S)/S)``: where
    ``(H − R)`` is not a multiple of the stride, that reads past the edge, so the input is widened
    to ``(P − 1)·S + R`` to keep SCALE-Sim's GEMM dims. A GEMM row becomes a linear layer whose
    sample is an ``M × K`` matrix. Replay at batch 1, as SCALE-Sim runs.
    """
    p = Path(path)
    rows = [r for r in _csv_rows(p) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{p}: empty topology")
    layers = []
    for i, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row if c.strip() and ":" not in c]  # the Sparsity column aside
        try:
            nums = [int(v) for v in cells[1:]]
        except ValueError:
            raise ValueError(f"{p}: line {i}: expected integers after the layer name, "
                             f"got {cells[1:]}") from None
        if any(v < 1 for v in nums):
            raise ValueError(f"{p}: line {i}: sizes must be positive integers, got {cells[1:]}")
        if len(nums) == 3:  # GEMM: M, N, K
            m, n, k = nums
            layers.append(_checked(linear(cells[0], k, n, rows=m), p, i))
        elif len(nums) >= 7:
            h, w, r, s, c, k, stride = nums[:7]
            pq = [math.ceil((dim - f + stride) / stride) for dim, f in ((h, r), (w, s))]
            hh, ww = ((pq[0] - 1) * stride + r, (pq[1] - 1) * stride + s)
            layers.append(_checked(conv(cells[0], c, hh, ww, k, r, s, stride=stride), p, i))
        else:
            raise ValueError(f"{p}: line {i}: expected 8 conv columns or 4 GEMM columns, got {len(cells)}")
    return layers


def _csv_rows(p: Path) -> list[list[str]]:
    """The rows of a CSV file; ValueError naming the file when it cannot be read as text CSV (or is
    not a regular file: reading a FIFO would wait forever)."""
    what = irregular(p)
    if what is not None:
        raise ValueError(f"{p}: {what}; give a CSV layer table")
    try:
        return list(csv.reader(p.read_text().splitlines()))
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not a text file (UTF-8 expected); give a CSV layer table") from None
    except csv.Error as exc:
        raise ValueError(f"{p}: malformed CSV ({exc})") from None


def _checked(spec: LayerSpec, p: Path, line: int) -> LayerSpec:
    """``spec`` if its geometry is consistent, else ValueError naming the file, line and field."""
    problems = spec.check()
    if problems:
        raise ValueError(f"{p}: line {line}: {problems[0]}")
    return spec


def read_layer_table(path: str | Path) -> list[LayerSpec]:
    """Layers from a CSV with columns ``name, kind, in_channels, height, width, out_channels,
    kernel, stride, padding, groups`` (conv) or ``name, linear, in_features, out_features``."""
    p = Path(path)
    out = []
    for i, row in enumerate(_csv_rows(p), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or cells[0].startswith("#") or cells[0] == "name":
            continue
        need = {"linear": 4, "conv2d": 10}.get(cells[1] if len(cells) > 1 else "", 0)
        if need == 0:
            raise ValueError(f"{p}: line {i}: kind must be conv2d or linear, got "
                             f"{cells[1] if len(cells) > 1 else 'nothing'!r}")
        if len(cells) < need:
            raise ValueError(f"{p}: line {i}: a {cells[1]} row has {need} columns "
                             f"({LAYER_COLUMNS[cells[1]]}), got {len(cells)}")
        try:
            nums = [int(v) for v in cells[2:need]]
        except ValueError:
            raise ValueError(f"{p}: line {i}: expected integers after the kind, "
                             f"got {cells[2:need]}") from None
        bad = [v for j, v in enumerate(nums) if v < (0 if cells[1] == "conv2d" and j == 6 else 1)]
        if bad:
            raise ValueError(f"{p}: line {i}: sizes must be positive (padding >= 0), got {cells[2:need]}")
        if cells[1] == "linear":
            out.append(_checked(linear(cells[0], *nums), p, i))
        else:
            c, h, w, k, r, st, pad, g = nums
            if c % g:
                raise ValueError(f"{p}: line {i}: groups {g} does not divide {c} input channels")
            out.append(_checked(conv(cells[0], c, h, w, k, r, stride=st, padding=pad, groups=g), p, i))
    return out


LAYER_COLUMNS = {"linear": "name, linear, in, out",
                 "conv2d": "name, conv2d, C, H, W, K, kernel, stride, padding, groups"}
MAX_SYNTH_ELEMENTS = 2**31  # one synthetic mask at most (drawing it takes 8 bytes per element)


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
                    name: str = "synthetic", structured: tuple[int, int, bool] | None = None,
                    layer_nm: dict[str, tuple[int, int]] | None = None) -> Path:
    """Write a trace whose masks are drawn at the given densities (tensors ``x``, ``w``, ``dy``).

    Every iteration carries masks; ``dx`` is recorded as present for every layer but the first
    and ``dw`` as dense, so all passes are replayed. ``structured=(n, m, transposable)`` draws
    N:M weight masks instead of a weight density (the manifest's method params say so, and the
    reader then checks every weight mask is N:M). ``layer_nm`` gives some layers their own N:M
    (a SCALE-Sim topology's Sparsity column): those layers' weight masks keep exactly
    ``min(n, group length)`` random values per group of ``m`` along Kr, and the manifest's method
    params record them as ``nm`` (an N:M machine compresses each such layer at its own N:M).
    """
    dens = {**DEFAULT_DENSITY, **(density or {})}
    bad = {k: v for k, v in dens.items() if k not in DEFAULT_DENSITY or not 0 < v <= 1}
    if bad:
        raise ValueError(f"densities must be in (0, 1] for x, w, dy; got {bad}")
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be in 1..2**20 samples, got {batch}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    for spec in layers:
        for t in ("x", "w", "dy"):
            if spec.numel(t, batch) > MAX_SYNTH_ELEMENTS:
                raise ValueError(f"layer {spec.name!r}: a {t} mask of {spec.numel(t, batch):.3g} elements at "
                                 f"batch {batch} is over 2**31 (16 GiB to draw); use a smaller batch")
    params: dict = {"density": dens, "per_channel": per_channel}
    if structured is not None:
        n, m, transposable = structured
        nm.check_nm(n, m)
        if density and "w" in density:
            raise ValueError("a weight density (w=...) and structured N:M weights exclude each other; "
                             "drop one")
        params["structured"] = {"n": n, "m": m, "transposable": bool(transposable)}
    if layer_nm:
        unknown = sorted(set(layer_nm) - {spec.name for spec in layers})
        if unknown:
            raise ValueError(f"layer_nm names layers the table does not have: {unknown}")
        if structured is not None or (density and "w" in density):
            raise ValueError("per-layer N:M weights exclude a weight density (w=...) and --structured; "
                             "drop one")
        for n_, m_ in layer_nm.values():
            nm.check_nm(n_, m_)
        params["nm"] = {k: [int(v[0]), int(v[1])] for k, v in layer_nm.items()}
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
                elif t == "w" and layer_nm and spec.name in layer_nm:
                    mask = nm.random_nm_mask(rng, shape, *layer_nm[spec.name])
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
