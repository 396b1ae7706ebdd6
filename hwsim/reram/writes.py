"""Training writes: which cells an update changes, their pulses in SET and RESET phases, the write
latency, and the pulses each cell has taken (wear). NeuroSim V2.1's model (``ProcessingUnit.cpp``
``GetWriteUpdateEstimation``, ``SubArray.cpp`` write latency); docs/reram.md lists the differences.

For one step of one layer (one parameter's update, however many calls the layer had): the crossbars
hold ``W ⊙ mask`` before and ``(W + ΔW) ⊙ mask`` after. Both are quantized to ``weight_bits`` with a
symmetric scale that stays fixed for the run (``scale``, chosen by the caller: ``reram.weight_range_max``
or the layer's first max|W|; values beyond it clip), encoded (offset code or differential pair) and cut
into cells of ``bits_per_cell`` bits. A cell moving from level ``l0`` to ``l1`` of ``L = 2^bits - 1``
levels is potentiated (LTP, ``l1 > l0``) or depressed (LTD) with

- linear device: ``ceil(|l1 - l0| · N / L)`` pulses, ``N`` = ``levels_ltp`` or ``levels_ltd``
  (0: ``N = L``, one pulse per level);
- non-linear device: the pulse numbers of the two conductances on the curve
  ``g(p) = B(1 - exp(-p / A))``, ``A = nonlinearity · N``, ``g(N) = 1`` (LTD mirrored), subtracted and
  rounded up.

Row-parallel writes (NeuroSim): each crossbar row is written in a SET phase lasting its largest LTP
pulse count, then a RESET phase lasting its largest LTD count; a crossbar writes its rows one after
another; ``crossbars_in_parallel`` crossbars write at once (0: all).
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
    return levels.reshape((-1, *q.shape)).astype(np.int32)


def range_scale(weight: np.ndarray, mask: np.ndarray | None, r: ReramCompute) -> float:
    """The quantization step of a layer's array: ``weight_range_max`` (or ``max|W ⊙ mask|``) over
    ``2^(b-1) - 1``."""
    top = r.weight_range_max
    if top <= 0:
        w = weight.astype(np.float32) if mask is None else np.where(mask, weight.astype(np.float32), 0)
        top = float(np.abs(w).max(initial=0.0))
    return top / (2 ** (r.weight_bits - 1) - 1)


def full_range_pulses(r: ReramCompute) -> tuple[int, int]:
    """Pulses across the whole conductance range, (LTP, LTD)."""
    top = 2**r.crossbar.bits_per_cell - 1
    return (r.write.levels_ltp or top, r.write.levels_ltd or top)


def _curve_pulses(g: np.ndarray, n: int, a: float) -> np.ndarray:
    """Pulse number at normalized conductance ``g`` in [0, 1] on ``g(p) = B(1 - exp(-p / (a·n)))``."""
    big_a = a * n
    b = 1.0 / (1.0 - math.exp(-n / big_a))
    # the curve runs from 0 pulses (g = 0) to n (g = 1); the clip keeps a very non-linear curve finite
    x = np.minimum(np.clip(g, 0.0, 1.0) / b, 1.0 - 1e-15)
    return np.clip(-big_a * np.log1p(-x), 0.0, n)


def pulse_counts(l0: np.ndarray, l1: np.ndarray, r: ReramCompute) -> tuple[np.ndarray, np.ndarray]:
    """Pulses of each cell moving from level ``l0`` to ``l1``: ``(ltp, ltd)`` int32 arrays, one of the
    two zero per cell."""
    top = 2**r.crossbar.bits_per_cell - 1
    n_ltp, n_ltd = full_range_pulses(r)
    d = l1.astype(np.int64) - l0
    out = []
    for sign, n, a in ((1, n_ltp, r.write.nonlinearity_ltp), (-1, n_ltd, r.write.nonlinearity_ltd)):
        steps = np.maximum(sign * d, 0)
        if a <= 0:
            p = -(-steps * n // top)  # ceil(|Δ| · N / L), exact in integers
        else:
            g0, g1 = l0 / top, l1 / top
            if sign < 0:  # depression runs the mirrored curve from the top
                g0, g1 = 1.0 - g0, 1.0 - g1
            p = np.where(steps > 0, np.ceil(_curve_pulses(g1, n, a) - _curve_pulses(g0, n, a) - 1e-9), 0)
            p = np.maximum(p, (steps > 0).astype(np.int64))  # a change takes at least one pulse
        out.append(p.astype(np.int32))
    return out[0], out[1]


def conductance_factor(l0: np.ndarray, l1: np.ndarray, r: ReramCompute) -> np.ndarray | float:
    """Mean conductance of a written cell over ``G_on`` (the harmonic mean of before and after, as
    NeuroSim's ``V² / ((R_old + R_new) / 2)``); 1.0 without ``on_off_ratio``."""
    ratio = r.write.on_off_ratio
    if ratio <= 0:
        return 1.0
    top = 2**r.crossbar.bits_per_cell - 1
    g_off = 1.0 / ratio
    g0 = g_off + (1.0 - g_off) * l0 / top
    g1 = g_off + (1.0 - g_off) * l1 / top
    return 2.0 / (1.0 / g0 + 1.0 / g1)


@dataclass(frozen=True)
class StepWrites:
    """Writes of one step of one layer, one copy of its weights. Energies are counts to be priced:
    ``pulse_units`` × ``cell.write_pulse``, ``row_pulses`` × the driver's row price,
    ``bit_line_pulses`` and ``source_line_pulses`` × its line prices, ``verified_cells`` × the verify
    price."""

    changed: np.ndarray  # (sets × slices, Kout, Kr) bool: cells whose level changes
    pulses_per_cell: np.ndarray  # (sets × slices, Kout, Kr) int32: pulses each cell takes (wear)
    cell_writes: int  # cells written
    set_pulses: int  # LTP pulses over all cells
    reset_pulses: int  # LTD pulses over all cells
    pulse_units: float  # pulses weighted by the conductance factor (= pulses without on_off_ratio)
    rows_written: int  # crossbar rows with at least one written cell
    row_pulses: int  # per row its SET phase plus its RESET phase, summed (NeuroSim totalNumWritePulse)
    bit_line_pulses: int  # bit lines charged to V_w × pulses (SET cells' lines, RESET phase inhibits)
    source_line_pulses: int  # source lines × pulses (RESET cells' lines, SET phase inhibits)
    verified_cells: int  # cells read back in write-verify (row_pulses × columns when verifying)
    latency_ns: float  # write time of the layer
    crossbars_written: int  # crossbars with at least one written cell

    @property
    def pulses(self) -> int:
        return self.set_pulses + self.reset_pulses


def step_writes(weight: np.ndarray, delta: np.ndarray, mask: np.ndarray | None, lm: LayerMap,
                r: ReramCompute, scale: float, scale_before: float | None = None) -> StepWrites:
    """Writes of one update: ``weight``, ``delta`` float16 of the weight shape ``(Kout, ...)``,
    ``mask`` bool of the same shape (None: all weights held). ``scale``: the array's quantization
    step; ``scale_before``: the step the array was encoded with before this update (a rescale
    re-encodes every cell whose level moves; default ``scale``)."""
    w0 = weight.astype(np.float32)
    w1 = w0 + delta.astype(np.float32)
    if mask is not None:
        w0, w1 = np.where(mask, w0, 0), np.where(mask, w1, 0)
    kout = w0.shape[0]
    s0 = scale if scale_before is None else scale_before
    l0 = cell_levels(quantize(w0.reshape(kout, -1), s0, r.weight_bits), r)  # (cells, Kout, Kr)
    l1 = cell_levels(quantize(w1.reshape(kout, -1), scale, r.weight_bits), r)
    ltp, ltd = pulse_counts(l0, l1, r)  # (cells, Kout, Kr)
    per_cell = ltp + ltd
    changed = per_cell > 0
    factor = conductance_factor(l0, l1, r)
    units = float((per_cell * factor).sum()) if not isinstance(factor, float) else float(per_cell.sum())
    lay_set, lay_reset = _layout(ltp, lm, r), _layout(ltd, lm, r)  # (cells, G, n_x, cols, k_x, rows)
    set_row, reset_row = lay_set.max(axis=3), lay_reset.max(axis=3)  # (cells, G, n_x, k_x, rows): phases
    bit_lines, source_lines = _line_pulses(lay_set, lay_reset, set_row, reset_row, lm, r)
    phases = set_row.astype(np.int64) + reset_row  # row-phase pulses of each row
    w = r.write
    step_ns = w.pulse_ns + (w.verify_ns if w.write_verify else 0.0)
    if w.row_parallel:
        xbar_ns = phases.sum(axis=-1) * step_ns  # (cells, G, n_x, k_x)
    else:
        xbar_ns = _layout(per_cell, lm, r).sum(axis=(3, 5), dtype=np.int64) * step_ns
    latency = float(xbar_ns.max(initial=0))
    if w.crossbars_in_parallel > 0:
        latency = max(latency, float(xbar_ns.sum()) / w.crossbars_in_parallel)
    row_pulses = int(phases.sum())
    cols = r.crossbar.cols
    return StepWrites(changed, per_cell, int(changed.sum()), int(ltp.sum()), int(ltd.sum()), units,
                      int((phases > 0).sum()), row_pulses, bit_lines, source_lines,
                      row_pulses * cols if w.write_verify else 0, latency,
                      int((phases.sum(axis=-1) > 0).sum()))


def _line_pulses(lay_set: np.ndarray, lay_reset: np.ndarray, set_row: np.ndarray, reset_row: np.ndarray,
                 lm: LayerMap, r: ReramCompute) -> tuple[int, int]:
    """Lines charged to V_w, times the pulses of their row phase: ``(bit lines, source lines)``.

    A 1T1R row (NeuroSim V2.1 ``GetWriteUpdateEstimation``, RRAM with CMOS access) is SET by driving
    the bit lines of its SET cells and RESET by driving the source lines of its RESET cells. With
    ``inhibit_unselected_lines`` every other mapped column of the crossbar has its opposite line
    raised for the phase (source lines in SET, bit lines in RESET) so that its cell is not disturbed.
    ``lay_*``: ``(cells, G, n_x, cols, k_x, rows)`` pulses; ``*_row``: the phase lengths, axis 3 reduced.
    """
    n = lm.n  # weight columns of one group
    cols = r.crossbar.cols
    mapped = np.minimum(cols, n - np.arange(lm.n_xbars) * cols).reshape(1, 1, -1, 1, 1)  # (1, 1, n_x, 1, 1)
    set_sel = (lay_set > 0).sum(axis=3, dtype=np.int64)  # (cells, G, n_x, k_x, rows)
    reset_sel = (lay_reset > 0).sum(axis=3, dtype=np.int64)
    bit = int((set_sel * set_row).sum())
    source = int((reset_sel * reset_row).sum())
    if r.write.inhibit_unselected_lines:
        bit += int(((mapped - reset_sel) * reset_row).sum())
        source += int(((mapped - set_sel) * set_row).sum())
    return bit, source


def _layout(cells: np.ndarray, lm: LayerMap, r: ReramCompute) -> np.ndarray:
    """A per-cell array laid out on the crossbars: ``(cells, G, n_x, cols, k_x, rows)``; axis 3 runs
    along one crossbar row (its columns), axis 5 along one column (its rows)."""
    c, kout, kr = cells.shape
    rows, cols = r.crossbar.rows, r.crossbar.cols
    g = lm.groups
    p = cells.reshape(c, g, kout // g, kr)
    p = np.pad(p, ((0, 0), (0, 0), (0, lm.n_xbars * cols - kout // g), (0, lm.k_xbars * rows - kr)))
    return p.reshape(c, g, lm.n_xbars, cols, lm.k_xbars, rows)


def per_crossbar(cells: np.ndarray, lm: LayerMap, r: ReramCompute) -> np.ndarray:
    """Sum a per-cell array ``(sets × slices, Kout, Kr)`` (writes, pulses) over each crossbar of one
    copy of the layer: ``(sets × slices, groups, n_xbars, k_xbars)`` — a heat map of writes."""
    return _layout(cells.astype(np.int32), lm, r).sum(axis=(3, 5), dtype=np.int64)


def lifetime_epochs(max_pulses_per_epoch: float, r: ReramCompute) -> float:
    """Epochs until the most-pulsed cell reaches the endurance (inf when nothing is written)."""
    return r.write.endurance_cycles / max_pulses_per_epoch if max_pulses_per_epoch > 0 else math.inf
