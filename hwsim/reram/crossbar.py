"""In-situ matrix-vector products on crossbars: action counts and time of one pass, from the masks.

One group of one pass is ``A[M×K]·B[K×N]`` with ``B`` held in the crossbars (``LayerMap``). Every
row of ``A`` is an input vector, cut into segments of ``in_block`` elements, one per block of
crossbars along K; a segment is applied bit-serially through the DACs (``ceil(input_bits /
dac_bits)`` reads) to every crossbar of its block (``n_xbars × slices × sets`` of them), and every
mapped column of those crossbars is converted once per read by the IMA's time-multiplexed ADCs.
A crossbar that drives at most ``parallel_rows`` lines at once (NeuroSim's partial parallel read)
reads one block in ``ceil(in_block / parallel_rows)`` sequential reads per input bit.
The transposed read (backward-data) is the same with the roles of rows and columns swapped.

Sparse features (``SparseFeatures.skip_zero_*``), from the masks, exactly:

- ``skip_zero_input_rows``: a zero input element drives no word line; an all-zero segment costs
  no read, DAC drive or ADC conversion at all;
- ``skip_zero_weight_columns``: an output column whose weights in a block are all zero is not
  programmed and not converted;
- ``skip_zero_crossbars``: a crossbar whose weights are all zero is not activated.

A read lasts ``max(read_cycle, conversions per crossbar / (ADCs per crossbar × sample rate))``;
the blocks along K work in parallel, the replicas of a layer split the vectors round-robin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archs import ReramCompute, SparseFeatures

from .mapping import LayerMap


@dataclass(frozen=True)
class Skips:
    """Which zeros the machine skips (all False: the dense baseline)."""

    input_rows: bool = False
    weight_columns: bool = False
    crossbars: bool = False

    @classmethod
    def of(cls, sparse: SparseFeatures) -> Skips:
        return cls(sparse.skip_zero_input_rows, sparse.skip_zero_weight_columns, sparse.skip_zero_crossbars)


DENSE = Skips()


@dataclass(frozen=True)
class MvmCosts:
    """Action counts (integers) and time of one pass of one layer; ``time_ns`` of the pass."""

    algorithmic_macs: int = 0
    actual_macs: int = 0
    crossbar_reads: int = 0  # crossbar activations, one per input bit-slice
    dac_drives: int = 0  # word-line (or bit-line) drives
    adc_conversions: int = 0
    active_segments: int = 0  # (vector, block) pairs that were applied
    segments: int = 0  # all (vector, block) pairs
    ima_busy_ns: float = 0.0  # IMA-nanoseconds of activity (peripherals are charged by it)
    time_ns: float = 0.0
    digital_macs: int = 0  # MACs run on the digital MAC array (passes off the crossbars)
    # conversions whose largest possible partial sum (every driven line at full input times a full
    # cell) exceeds the ADC's 2^bits - 1: an upper bound of the clipped conversions (masks, no values)
    over_range_conversions: int = 0

    def __add__(self, o: MvmCosts) -> MvmCosts:
        """Groups run side by side on their own crossbars: counts add, time is the longest."""
        return MvmCosts(self.algorithmic_macs + o.algorithmic_macs, self.actual_macs + o.actual_macs,
                        self.crossbar_reads + o.crossbar_reads, self.dac_drives + o.dac_drives,
                        self.adc_conversions + o.adc_conversions, self.active_segments + o.active_segments,
                        self.segments + o.segments, self.ima_busy_ns + o.ima_busy_ns,
                        max(self.time_ns, o.time_ns), self.digital_macs + o.digital_macs,
                        self.over_range_conversions + o.over_range_conversions)


def reads_per_vector(r: ReramCompute) -> int:
    """Crossbar reads that apply one input vector: input bits through the DACs."""
    return math.ceil(r.input_bits / r.dac.bits)


def _blocks(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Pad ``axis`` of a 2-D array to a multiple of ``size`` and split it: (..., blocks, size, ...)."""
    pad = -x.shape[axis] % size
    if pad:
        widths = [(0, 0), (0, 0)]
        widths[axis] = (0, pad)
        x = np.pad(x, widths)
    shape = list(x.shape)
    shape[axis : axis + 1] = [shape[axis] // size, size]
    return x.reshape(shape)


def mvm_costs(a: np.ndarray | None, b: np.ndarray | None, dims: tuple[int, int, int], lm: LayerMap,
              r: ReramCompute, skips: Skips, *, transposed: bool = False) -> MvmCosts:
    """Costs of one group: ``a`` (M, K) bool input vectors, ``b`` (K, N) bool weights in the crossbars.

    ``transposed``: ``b`` is the transpose of the mapped matrix (backward-data: inputs drive the
    bit lines, ``in_block = cols``; the word lines are sensed, ``out_block = rows``). ``a``/``b``
    may be None with ``skips == DENSE`` (the dense baseline needs only ``dims``).
    """
    m, k, n = dims
    xb = r.crossbar
    in_block, out_block = (xb.cols, xb.rows) if transposed else (xb.rows, xb.cols)
    kb, nb = math.ceil(k / in_block), math.ceil(n / out_block)
    sets = lm.slices * lm.sets  # crossbars per (K block, N block)
    pair = 2 if r.signed_weights == "differential_subtract" else 1  # crossbars sharing each conversion
    conv_sets = sets // pair  # crossbars' worth of conversions per (K block, N block)
    bits = reads_per_vector(r)
    adcs_per_xbar = r.adcs_per_ima / r.crossbars_per_ima * pair
    imas_per_block = math.ceil(nb * sets / r.crossbars_per_ima)
    width = np.minimum(out_block, n - out_block * np.arange(nb))  # (nb,) mapped columns per crossbar
    rows_in = np.minimum(in_block, k - in_block * np.arange(kb))  # (kb,) mapped rows per block
    if skips.weight_columns or skips.crossbars:
        col_nz = _blocks(b, 0, in_block).any(axis=1)  # (kb, N)
        per_xbar = _blocks(col_nz, 1, out_block).sum(axis=2)  # (kb, nb) non-zero columns
    if skips.weight_columns:
        conv_cols = per_xbar  # (kb, nb)
    elif skips.crossbars:
        conv_cols = np.where(per_xbar > 0, width[None, :], 0)
    else:
        conv_cols = np.broadcast_to(width[None, :], (kb, nb))
    xbars = ((per_xbar > 0).sum(axis=1) if skips.crossbars else np.full(kb, nb)) * sets  # (kb,)
    conv_per_read = conv_cols.sum(axis=1).astype(np.int64) * conv_sets  # (kb,) conversions per read
    adc_ns = np.ceil(conv_cols.max(axis=1, initial=0) / adcs_per_xbar) / r.adc.sample_rate_hz * 1e9
    read_ns = np.maximum(xb.read_cycle_ns, adc_ns)  # (kb,)
    p = xb.parallel_rows if 0 < xb.parallel_rows < in_block else in_block  # lines driven at once
    spb = math.ceil(in_block / p)  # sequential reads of one block per input bit
    if skips.input_rows:
        seg = _blocks(a, 1, in_block)  # (M, kb, in_block)
        if spb * p != in_block:
            seg = np.pad(seg, ((0, 0), (0, 0), (0, spb * p - in_block)))
        drives = seg.reshape(m, kb, spb, p).sum(axis=3, dtype=np.int64)  # (M, kb, spb) lines per read
    else:
        sub = np.clip(rows_in[:, None] - p * np.arange(spb)[None, :], 0, p)  # (kb, spb) mapped lines
        drives = np.broadcast_to(sub[None], (m, kb, spb)).astype(np.int64)
    active = drives > 0  # (M, kb, spb): the reads that happen
    full = (2**r.crossbar.bits_per_cell - 1) * (2**r.dac.bits - 1)  # one line's largest contribution
    lines_in_range = min((2**r.adc.bits - 1) // full, 2**62)  # lines whose full sum the ADC still holds
    over = (drives > lines_in_range).sum(axis=(0, 2), dtype=np.int64)  # (kb,) reads that can clip
    n_active = active.sum(axis=(0, 2), dtype=np.int64)  # (kb,)
    macs = int(drives.sum(axis=(0, 2)) @ (conv_cols.sum(axis=1).astype(np.int64)))
    vec_ns = bits * (active.sum(axis=2) * read_ns[None, :]).max(axis=1, initial=0.0)  # (M,) blocks parallel
    reps = max(1, min(lm.replicas, m))
    per_rep = _blocks(vec_ns[:, None], 0, reps).reshape(-1, reps).sum(axis=0)  # round-robin
    return MvmCosts(
        algorithmic_macs=m * k * n, actual_macs=macs,
        crossbar_reads=int(bits * n_active @ xbars),
        dac_drives=int(bits * drives.sum(axis=(0, 2)) @ xbars),
        adc_conversions=int(bits * n_active @ conv_per_read),
        over_range_conversions=int(bits * over @ conv_per_read),
        active_segments=int(n_active.sum()), segments=m * int((rows_in[:, None] > p * np.arange(spb)).sum()),
        ima_busy_ns=float(bits * (n_active * read_ns) @ np.full(kb, imas_per_block)),
        time_ns=float(per_rep.max(initial=0.0)))


def tiles_per_copy(lm: LayerMap, r: ReramCompute) -> int:
    """Tiles that hold one copy of a layer (its IMAs packed into whole tiles)."""
    return max(1, math.ceil(lm.imas / r.imas_per_tile))


def data_movement_ns(dims: tuple[int, int, int], groups: int, lm: LayerMap,
                     r: ReramCompute) -> tuple[float, float]:
    """Time of one pass's activation traffic, ns: ``(tile buffers, chip interconnect)``.

    As NeuroSim V1.4 charges it (``Tile.cpp`` ``TileCalculatePerformance``, ``Chip.cpp``
    ``ChipCalculatePerformance``, ``sync_data_transfer = false``), in series with the crossbar time:

    - tile buffers: the ``M × K`` inputs of ``input_bits`` each are written into and read out of the
      input buffers, and the ``M × N`` outputs of ``output_buffer_bits`` each pass through the output
      buffers, of the tiles of **one** copy, which work in parallel. Copies do not shorten it ("no
      matter speedup or not, the total number of data transferred is fixed", ``Tile.cpp``);
    - interconnect: the layer's inputs and outputs, ``input_bits`` each, over the chip bus.

    ``dims = (M, K, N)`` of one group; a bandwidth of 0 is unlimited (no time). Activations move
    densely: zero inputs are moved too.
    """
    m, k, n = dims
    in_bits = groups * m * k * r.input_bits
    out_bits = groups * m * n * (r.output_buffer_bits or r.input_bits)
    tiles = tiles_per_copy(lm, r)
    buf_s = 0.0
    if r.tile_input_buffer_bandwidth_bytes_per_s > 0:
        buf_s += in_bits / 8 / (tiles * r.tile_input_buffer_bandwidth_bytes_per_s)
    if r.tile_output_buffer_bandwidth_bytes_per_s > 0:
        buf_s += out_bits / 8 / (tiles * r.tile_output_buffer_bandwidth_bytes_per_s)
    ic_s = 0.0
    if r.interconnect_bandwidth_bytes_per_s > 0:
        ic_s = groups * m * (k + n) * r.input_bits / 8 / r.interconnect_bandwidth_bytes_per_s
    return buf_s * 1e9, ic_s * 1e9
