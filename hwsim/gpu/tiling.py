"""Thread-block tiling of one GEMM: candidate tiles, the grid, waves over the SMs, and the operand
panels each wave touches.

A GEMM ``C[M×N] = A[M×K]·B[K×N]`` is cut into ``tm × tn`` output tiles; with split-K each tile's
K range is cut into ``split`` slices computed by separate thread blocks; a batched GEMM
(``groups`` independent GEMMs in one launch, cuBLAS ``gemmStridedBatched``) repeats the grid per
group. Thread blocks are issued in grid order, M fastest (CUDA's ``blockIdx.x``; a kernel may raster
N fastest), then N, then the K slice, then the group, and run in waves of
``sms × threadblocks_per_sm`` blocks; the last partial wave costs a full wave (wave quantization,
NVIDIA "Matrix Multiplication Background" guide §3.2). Edge tiles are computed in full (tile
quantization, same guide §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archs import Architecture

# (tm, tn): cuBLAS's typical thread-block tiles for FP16 tensor-core GEMMs (NVIDIA "Matrix
# Multiplication Background" guide §2.3: 256×128, 128×256, 128×128, 256×64, 64×256, 128×64, 64×128,
# 64×64); the architecture's own tile is added to them.
CANDIDATE_TILES = ((256, 128), (128, 256), (128, 128), (256, 64), (64, 256), (128, 64), (64, 128), (64, 64))


def candidate_tiles(arch: Architecture) -> tuple[tuple[int, int], ...]:
    """The tiles the GEMM heuristic tries: the spec's tile first, then cuBLAS's set."""
    g = arch.gpu
    own = (g.threadblock_m, g.threadblock_n)
    return (own, *[t for t in CANDIDATE_TILES if t != own])


def split_factors(k_steps: int, max_split: int) -> list[int]:
    """Split-K factors tried: powers of two up to ``max_split`` that leave every slice a K step."""
    out, s = [1], 2
    while s <= max_split and s <= k_steps:
        out.append(s)
        s *= 2
    return out


@dataclass(frozen=True)
class Grid:
    """The thread blocks of one GEMM and how they fall into waves.

    Per-wave arrays have shape ``(waves,)``.
    """

    tm: int
    tn: int
    tk: int
    split: int
    gm: int  # tiles along M
    gn: int  # tiles along N
    k_steps: int  # K steps of tk per thread block (its slice of K)
    slots: int  # thread blocks resident at once (sms × threadblocks_per_sm)
    blocks_per_wave: np.ndarray  # (waves,) thread blocks in each wave
    a_panels_per_wave: np.ndarray  # (waves,) distinct (M tile, K slice) A panels a wave reads
    b_panels_per_wave: np.ndarray  # (waves,) distinct (N tile, K slice) B panels a wave reads
    groups: int = 1  # GEMMs of a batch, each its own A and B panels

    @property
    def blocks(self) -> int:
        return self.gm * self.gn * self.split * self.groups

    @property
    def waves(self) -> int:
        return len(self.blocks_per_wave)


def grid(m: int, k: int, n: int, tm: int, tn: int, tk: int, split: int, slots: int,
         raster: str = "m", groups: int = 1) -> Grid:
    """Tile ``m × k × n`` into ``tm × tn`` blocks with ``split`` K slices, issued ``slots`` at a time,
    M tiles fastest (``raster="m"``) or N tiles fastest (``"n"``: the transposed problem's grid), for
    each of ``groups`` GEMMs of a batch in turn (a group's panels are its own, like a K slice's)."""
    if raster == "n":
        t = grid(n, k, m, tn, tm, tk, split, slots, groups=groups)
        return Grid(tm, tn, tk, split, t.gn, t.gm, t.k_steps, slots, t.blocks_per_wave,
                    t.b_panels_per_wave, t.a_panels_per_wave, groups)
    gm, gn = -(-m // tm), -(-n // tn)
    k_total = -(-k // tk)
    k_steps = -(-k_total // split)
    blocks = gm * gn * split * groups
    waves = -(-blocks // slots)
    start = np.arange(waves, dtype=np.int64) * slots  # (waves,) first block of each wave
    stop = np.minimum(start + slots, blocks)  # (waves,) one past the last
    return Grid(tm, tn, tk, split, gm, gn, k_steps, slots, stop - start,
                _distinct_a(start, stop, gm, gn), _distinct_b(start, stop, gm), groups)


def _distinct_b(start: np.ndarray, stop: np.ndarray, gm: int) -> np.ndarray:
    """Distinct (N tile, K slice) pairs among blocks ``start..stop-1``: consecutive runs of ``gm``
    blocks share one, so they are the distinct values of ``index // gm``."""
    return (stop - 1) // gm - start // gm + 1


def _distinct_a(start: np.ndarray, stop: np.ndarray, gm: int, gn: int) -> np.ndarray:
    """Distinct (M tile, K slice) pairs among blocks ``start..stop-1``: within one K slice (a run
    of ``gm·gn`` blocks) a contiguous range of length L touches ``min(L, gm)`` M tiles."""
    per_slice = gm * gn
    first_slice, last_slice = start // per_slice, (stop - 1) // per_slice
    # blocks of the range in its first slice, its last slice and each full slice between
    in_first = np.minimum(stop, (first_slice + 1) * per_slice) - start
    in_last = stop - np.maximum(start, last_slice * per_slice)
    middle = np.maximum(last_slice - first_slice - 1, 0)
    same = first_slice == last_slice
    return np.where(same, np.minimum(stop - start, gm),
                    np.minimum(in_first, gm) + np.minimum(in_last, gm) + middle * gm)
