"""Batched GEMMs on a GPU: ``groups`` independent ``m × k × n`` GEMMs in one launch.

Attention's score and context products (one GEMM per sample and head: ``groups = batch × heads``)
and grouped convolutions run as one batched kernel (cuBLAS ``gemmStridedBatched``): the thread
blocks of every group share the waves, so a group with fewer tiles than SMs does not cost a wave of
its own, and wave quantization is over all ``groups × tiles`` blocks. The library picks the tile for
the whole batch (not for one group: a small group alone would be split along K, a batch that
fills the machine is not). Per candidate tile and block order, one group's GEMM on that fixed
configuration gives the time of its waves; the batch takes ``ceil(groups · blocks / slots)`` such
waves, and at least every group's HBM bytes at the achievable bandwidth.
"""

from __future__ import annotations

import math

from archs import Architecture

from .gemm import RASTERS, GemmCost, Kernel, Operands, gemm_cost
from .kernels import hbm_bytes_per_cycle, launch_cycles
from .tiling import candidate_tiles


def batched_gemm_cost(arch: Architecture, groups: int, m: int, k: int, n: int, ops: Operands, *,
                      efficiency: float = 0.0) -> GemmCost:
    """The fastest tiling of ``groups`` batched ``m × k × n`` GEMMs (one group: the GEMM heuristic,
    split-K included)."""
    if groups == 1:
        return gemm_cost(arch, m, k, n, ops, efficiency=efficiency)
    g = arch.gpu
    slots = g.sms * g.threadblocks_per_sm
    best: GemmCost | None = None
    for tm, tn in candidate_tiles(arch):
        for raster in RASTERS:
            one = gemm_cost(arch, m, k, n, ops, split_k=False, efficiency=efficiency,
                            kernel=Kernel(tm, tn, g.threadblock_k, g.pipeline_stages, raster))
            cost = spread(arch, one, groups, slots)
            if best is None or cost.cycles < best.cycles:
                best = cost
    assert best is not None
    return best


def spread(arch: Architecture, one: GemmCost, groups: int, slots: int) -> GemmCost:
    """``groups`` copies of the GEMM ``one`` in one launch: its average wave time per wave of the
    batch, at least all groups' HBM bytes at the achievable bandwidth."""
    launch = launch_cycles(arch)
    waves = -(-groups * one.blocks // slots)
    per_wave = (one.cycles - launch) / one.waves  # one group's average wave
    hbm = sum(v for (level, *_), v in one.traffic.items() if level == arch.off_chip.name)
    bpc = hbm_bytes_per_cycle(arch)
    body = max(per_wave * waves, groups * hbm / bpc if bpc else 0.0)
    return GemmCost(launch + math.ceil(body), math.ceil(one.math_cycles * waves / one.waves), one.tile,
                    one.split, waves, groups * one.blocks,
                    {key: v * groups for key, v in one.traffic.items()})
