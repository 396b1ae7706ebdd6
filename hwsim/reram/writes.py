"""Training writes: which cells an update changes, the pulses, the write latency, wear per cell.

For one recorded step of one layer, the weights the crossbars hold before the step are the
recorded float16 weights ``W`` times the weight mask, and after it ``(W + ΔW)`` times the same mask
(a position the method masks out holds zero cells; the mask of the next step is not recorded with
this one). Both are quantized to ``weight_bits`` with one symmetric scale, ``max|W ⊙ mask| /
(2^(weight_bits-1) - 1)`` (the conductance range the array was programmed with; values beyond it
are clipped), encoded as the spec says (offset code or differential pair) and cut into cells of
``bits_per_cell`` bits. A cell whose level changes is written: ``ceil(|Δlevel| ·
max_pulses_per_update / (2^bits_per_cell - 1))`` pulses (a full-range change takes
``max_pulses_per_update``). With row-parallel writes a crossbar writes one row at a time, all its
changed cells at once, for as many pulses as the row's largest change; crossbars write in parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archs import ReramCompute

from .mapping import LayerMap, column_sets, slices_per_weight


def quantize(w: np.ndarray, scale: float, weight_bits: int) -> np.ndarray:
    """Signed integer codes in ``[-(2^(b-1)-1), 2^(b-1)-1]``, same shape as ``w`` (int32)."""
    q = 2 ** (weight_bits - 1) - 1
    if scale <= 0:
        return np.zeros(w.shape, np.int32)
    return np.clip(np.rint(w.astype(np.float64) / scale), -q, q).astype(np.int32)


def cell_levels(q: np.ndarray, r: ReramCompute) -> np.ndarray:
    """Cell levels ``(sets × slices, *q.shape)`` of integer codes: offset code ``q + 2^(b-1)``, or the
    positive then the negative magnitude; slice 0 holds the least significant bits."""
    b = r.crossbar.bits_per_cell
    s = slices_per_weight(r)
    shifts = (np.arange(s) * b).reshape((s,) + (1,) * q.ndim)
    if column_sets(r) == 1:
        codes = (q.astype(np.int64) + 2 ** (r.weight_bits - 1))[None]
    else:
        codes = np.stack([np.maximum(q, 0), np.maximum(-q, 0)]).astype(np.int64)
    levels = (codes[:, None] >> shifts[None]) & (2**b - 1)  # (sets, slices, *shape)
    return levels.reshape((-1, *q.shape)).astype(np.int16)


def write_scale(weight: np.ndarray, mask: np.ndarray | None, weight_bits: int) -> float:
    """The quantization step of a layer's array: ``max|W ⊙ mask| / (2^(b-1) - 1)``."""
    w = weight.astype(np.float32) if mask is None else np.where(mask, weight.astype(np.float32), 0)
    top = float(np.abs(w).max(initial=0.0))
    return top / (2 ** (weight_bits - 1) - 1)


@dataclass(frozen=True)
class StepWrites:
    """Writes of one step of one layer, one copy of its weights."""

    changed: np.ndarray  # (sets × slices, Kout, Kr) bool: cells whose level changes
    cell_writes: int  # cells written
    pulses: int  # write pulses over all cells
    rows_written: int  # crossbar rows with at least one written cell
    latency_ns: float  # the slowest crossbar's write time


def pulses_per_change(dlevel: np.ndarray, r: ReramCompute) -> np.ndarray:
    """Pulses of level changes of ``|dlevel|`` steps (int32, same shape)."""
    steps = 2**r.crossbar.bits_per_cell - 1
    return (-(-np.abs(dlevel).astype(np.int64) * r.write.max_pulses_per_update // steps)).astype(np.int32)


def step_writes(weight: np.ndarray, delta: np.ndarray, mask: np.ndarray | None, lm: LayerMap,
                r: ReramCompute) -> StepWrites:
    """Writes of one update: ``weight``, ``delta`` float16 of the weight shape ``(Kout, ...)``,
    ``mask`` bool of the same shape (None: all weights held)."""
    w0 = weight.astype(np.float32)
    w1 = w0 + delta.astype(np.float32)
    if mask is not None:
        w0, w1 = np.where(mask, w0, 0), np.where(mask, w1, 0)
    kout = w0.shape[0]
    scale = write_scale(w0, None, r.weight_bits)
    l0 = cell_levels(quantize(w0.reshape(kout, -1), scale, r.weight_bits), r)  # (cells, Kout, Kr)
    l1 = cell_levels(quantize(w1.reshape(kout, -1), scale, r.weight_bits), r)
    pulses = pulses_per_change(l1.astype(np.int32) - l0, r)  # (cells, Kout, Kr)
    changed = pulses > 0
    per_row = _row_pulses(pulses, lm, r)  # (cells, G, n_x, k_x, rows): the pulses of one row write
    if r.write.row_parallel:
        xbar_pulses = per_row.max(axis=3).sum(axis=-1)  # (cells, G, n_x, k_x)
    else:
        xbar_pulses = per_row.sum(axis=3).sum(axis=-1)
    return StepWrites(changed, int(changed.sum()), int(pulses.sum()), int((per_row.max(axis=3) > 0).sum()),
                      float(xbar_pulses.max(initial=0)) * r.write.pulse_ns)


def _row_pulses(pulses: np.ndarray, lm: LayerMap, r: ReramCompute) -> np.ndarray:
    """A per-cell array laid out on the crossbars: ``(cells, G, n_x, cols, k_x, rows)``; axis 3 runs
    along one crossbar row (its columns), axis 5 along one column (its rows)."""
    c, kout, kr = pulses.shape
    rows, cols = r.crossbar.rows, r.crossbar.cols
    g = lm.groups
    p = pulses.reshape(c, g, kout // g, kr)
    p = np.pad(p, ((0, 0), (0, 0), (0, lm.n_xbars * cols - kout // g), (0, lm.k_xbars * rows - kr)))
    return p.reshape(c, g, lm.n_xbars, cols, lm.k_xbars, rows)


def per_crossbar(cells: np.ndarray, lm: LayerMap, r: ReramCompute) -> np.ndarray:
    """Sum a per-cell array ``(sets × slices, Kout, Kr)`` (writes, pulses) over each crossbar of one
    copy of the layer: ``(sets × slices, groups, n_xbars, k_xbars)`` — a heat map of writes."""
    return _row_pulses(cells.astype(np.int32), lm, r).sum(axis=(3, 5), dtype=np.int64)


def lifetime_epochs(max_writes_per_epoch: float, r: ReramCompute) -> float:
    """Epochs until the most-written cell reaches the endurance (inf when nothing is written)."""
    return r.write.endurance_cycles / max_writes_per_epoch if max_writes_per_epoch > 0 else math.inf
