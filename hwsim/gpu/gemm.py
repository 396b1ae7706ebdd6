"""The time of one dense or 2:4 GEMM on the tensor cores: tiles, waves, roofline per wave.

Per thread block (one ``tm × tn`` output tile, one K slice of ``k_steps`` steps of ``tk``):

- math: ``tm·tn·tk·k_steps`` FMAs (edge tiles in full, so MMA and tile padding are paid) at the
  SM's tensor-core rate, times ``math_speedup`` for a 2:4 operand;
- shared memory: per K step the A and B slices are written once (the async copy from L2) and read
  by the warps that need them: each warp (Ampere) or warpgroup (Hopper) computes a
  ``warp_tile_m × warp_tile_n`` piece of C, so A is read ``tn / warp_tile_n`` times and B
  ``tm / warp_tile_m`` times, at ``smem_bytes_per_cycle_per_sm``;
- the main loop lasts ``max(math, smem) / efficiency`` SM cycles (``threadblocks_per_sm`` blocks
  share one SM; ``efficiency`` is the library's: ``tensor_core_efficiency`` for the dense GEMM), which
  at the sustained clock are ``1 / sustained_clock_fraction`` counted cycles each, but at least
  ``k_steps · latency / pipeline_stages`` (only ``pipeline_stages`` K steps are in flight, each a
  round trip to memory: Little's law); a fixed :class:`Kernel` brings its own tile, K step and
  stages;
- a prologue (the first load's latency) and an epilogue (C written to L2 at the SM's share of the
  L2 bandwidth).

Short K (on a machine whose GEMM kernels are multistage, ``gpu.short_k_stages > 0``: a kernel whose
prologue fetches the block's whole K slice, at most ``stages − 1`` K steps of the kernel as shipped,
``gpu.short_k_tile_k`` × ``gpu.short_k_stages`` or a fixed :class:`Kernel`'s own): there is no
steady-state main loop, so nothing overlaps a block's loads with its MMAs, and its C stores follow
its MMAs. A wave's C bytes then leave at the HBM bandwidth after its main loops, hidden only by the
other blocks resident on the SM: ``min(threadblocks_per_sm, smem_bytes_per_sm // (stages · tk ·
(tm·a + tn·b) bytes))`` of them, each hiding its share.

Per wave: the longest of the blocks' time, the wave's L2 traffic over the L2 bandwidth, and its
HBM traffic over the HBM bandwidth, where tiles of one wave that share an A row panel or a B column
panel read it from HBM once (the rest hit L2): HBM bytes = distinct panels the wave touches. Panel
bytes are the real rows and columns (padding is predicated off, not loaded). The GEMM is the sum of
its waves plus one kernel launch; with split-K, the partial sums (FP32) go through HBM and a
reduction kernel adds them. The heuristic tries every candidate tile (and split-K when the grid is
smaller than the SM count) in either block order (M or N tiles fastest) and keeps the fastest, as a
library's heuristic would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from archs import Architecture

from ..errors import MappingError
from .kernels import hbm_bytes_per_cycle, launch_cycles, memory_kernel_cycles, sm_cycle_scale
from .tiling import Grid, candidate_tiles, grid, split_factors

PARTIAL_BYTES = 4  # split-K partial sums are FP32
# Block orders a library's heuristic may pick: M tiles fastest, or N tiles fastest (a swizzle that
# keeps an A row panel in L2 while the few N tiles of a narrow GEMM read it).
RASTERS = ("m", "n")


@dataclass(frozen=True)
class Operands:
    """Bytes per element of the GEMM's operands as stored (B may be compressed: data + metadata)."""

    a: float
    b: float
    c: float
    b_metadata: float = 0.0


@dataclass
class GemmCost:
    """Time and traffic of one GEMM kernel (plus its split-K reduction)."""

    cycles: int
    math_cycles: int  # tensor-core busy cycles at the sustained rate, summed over waves
    tile: tuple[int, int]
    split: int
    waves: int
    blocks: int
    traffic: dict[tuple[str, str, str, str], float] = field(default_factory=dict)  # (level, op, kind, dir)


@dataclass(frozen=True)
class Kernel:
    """A fixed kernel configuration (a library that ships one tile instead of a heuristic):
    thread-block tile ``tm × tn``, ``tk`` per main-loop step, ``stages`` K steps in flight, blocks
    issued M tiles fastest (``raster="m"``) or N tiles fastest (``"n"``)."""

    tm: int
    tn: int
    tk: int
    stages: int
    raster: str = "m"


def gemm_cost(arch: Architecture, m: int, k: int, n: int, ops: Operands, *, math_speedup: float = 1.0,
              split_k: bool = True, kernel: Kernel | None = None, efficiency: float = 0.0,
              stream_k: bool | None = None, serial_epilogue: bool = False, groups: int = 1) -> GemmCost:
    """The fastest tiling of ``m × k × n`` on ``arch`` (cached: arguments are hashable); with
    ``kernel``, that one configuration only (split-K still tried if ``split_k``). ``efficiency``: the
    main loop's fraction of the tensor cores' peak (0: ``gpu.tensor_core_efficiency``, the dense
    library's). ``stream_k``: whether a last, partial wave is spread over every SM along K (None:
    ``gpu.stream_k``, the dense library's behaviour). ``serial_epilogue``: a wave writes its C tiles
    after its main loops (a kernel of one thread block per SM, whose epilogue no other block's main loop
    hides), at the HBM bandwidth when C streams out of L2, instead of overlapping them. ``groups``:
    that many independent GEMMs of the shape in one launch (a batched GEMM: their blocks share the
    waves, each group reads its own panels)."""
    if arch.gpu is None:
        raise MappingError(f"{arch.name} is a {arch.family} machine; the GPU model needs a gpu section")
    if min(m, k, n, groups) <= 0:
        raise MappingError(f"GEMM {groups} × {m}×{k}×{n}: every dimension and the group count must be "
                           "positive")
    return _best(arch, m, k, n, ops, math_speedup, split_k, kernel,
                 efficiency or arch.gpu.tensor_core_efficiency,
                 arch.gpu.stream_k if stream_k is None else stream_k, serial_epilogue, groups)


@lru_cache(maxsize=4096)
def _best(arch: Architecture, m: int, k: int, n: int, ops: Operands, speedup: float,
          split_k: bool, kernel: Kernel | None, efficiency: float, stream_k: bool,
          serial_epilogue: bool = False, groups: int = 1) -> GemmCost:
    g = arch.gpu
    slots = g.sms * g.threadblocks_per_sm
    tk = kernel.tk if kernel else g.threadblock_k
    stages = kernel.stages if kernel else g.pipeline_stages
    # the shipped kernel's K step and stages, which decide the short-K regime ((0, 0): none)
    shipped = ((kernel.tk, kernel.stages) if kernel else (g.short_k_tile_k, g.short_k_stages)) \
        if g.short_k_stages else (0, 0)
    best: GemmCost | None = None
    for tm, tn in ([(kernel.tm, kernel.tn)] if kernel else candidate_tiles(arch)):
        small = groups * -(-m // tm) * -(-n // tn) < g.sms
        k_total = -(-k // tk)
        splits = split_factors(k_total, g.max_split_k) if split_k and small else [1]
        for s in splits:
            for raster in (kernel.raster,) if kernel else RASTERS:
                c = _cost(arch, grid(m, k, n, tm, tn, tk, s, slots, raster, groups), m, k, n, ops, speedup,
                          stages, efficiency, stream_k, serial_epilogue, shipped)
                if best is None or c.cycles < best.cycles:
                    best = c
    assert best is not None
    return best


def _cost(arch: Architecture, gr: Grid, m: int, k: int, n: int, ops: Operands, speedup: float,
          stages: int | None = None, efficiency: float = 0.0, stream_k: bool = False,
          serial_epilogue: bool = False, shipped: tuple[int, int] = (0, 0)) -> GemmCost:
    g = arch.gpu
    stages = stages or g.pipeline_stages
    eff = efficiency or g.tensor_core_efficiency
    scale = sm_cycle_scale(arch)  # counted cycles per SM cycle (the SM holds its sustained clock)
    tm, tn, tk, steps = gr.tm, gr.tn, gr.tk, gr.k_steps
    fma_per_sm = g.tensor_cores_per_sm * g.tensor_core.fma_per_cycle * speedup
    math_c = tm * tn * tk * steps / fma_per_sm
    b_elem = ops.b + ops.b_metadata
    warps_m, warps_n = max(1, tm // g.warp_tile_m), max(1, tn // g.warp_tile_n)
    step_bytes = tm * tk * ops.a * (1 + warps_n) + tk * tn * b_elem * (1 + warps_m)  # writes + reads
    smem_c = steps * step_bytes / g.smem_bytes_per_cycle_per_sm if g.smem_bytes_per_cycle_per_sm else 0.0
    main = g.threadblocks_per_sm * max(math_c, smem_c) * scale / eff
    main = max(main, steps * g.memory_latency_cycles / stages)
    out_bytes = PARTIAL_BYTES if gr.split > 1 else ops.c
    # real (unpadded) sizes per panel and per output tile, averaged over the grid
    k_slice = k / gr.split
    a_panel, b_panel = m / gr.gm * k_slice * ops.a, k_slice * n / gr.gn
    c_tile = m / gr.gm * n / gr.gn * out_bytes
    l2_per_sm = g.l2_bytes_per_cycle / g.sms if g.l2_bytes_per_cycle else 0.0
    epilogue = tm * tn * out_bytes / l2_per_sm if l2_per_sm else 0.0
    block = math.ceil(main + g.memory_latency_cycles + epilogue)  # prologue: the first load's latency
    per_wave = gr.blocks_per_wave.astype(np.float64)  # (waves,)
    hbm_read_a = gr.a_panels_per_wave * a_panel  # (waves,)
    hbm_read_b = gr.b_panels_per_wave * b_panel * ops.b
    hbm_read_md = gr.b_panels_per_wave * b_panel * ops.b_metadata
    hbm_write = per_wave * c_tile
    l2_bytes = per_wave * (a_panel + b_panel * b_elem + c_tile)
    hbm_bpc = hbm_bytes_per_cycle(arch)
    wave = np.full(gr.waves, float(block))
    share = 1.0  # of a full wave's main loop that the last wave runs
    if stream_k and gr.split == 1 and gr.blocks_per_wave[-1] < gr.slots:
        share, last = _stream_k_wave(gr, main, g.l2_bytes_per_cycle, g.memory_latency_cycles)
        wave[-1] = last + epilogue
    hbm_read = hbm_read_a + hbm_read_b + hbm_read_md
    resident = _short_k_residents(arch, gr, k_slice, ops, shipped)
    if serial_epilogue or resident:  # main loops (bounded by the reads), then the C tiles
        hiding = 1 if serial_epilogue else resident  # blocks per SM whose work hides another's stores
        l2_read = per_wave * (a_panel + b_panel * b_elem)
        body = np.maximum(np.maximum(wave - epilogue, _over(hbm_read, hbm_bpc)),
                          _over(l2_read, g.l2_bytes_per_cycle))
        store = np.maximum(epilogue, _over(hbm_write, hbm_bpc))
        wave = np.maximum(body, store) + np.minimum(body, store) / hiding
    else:
        wave = np.maximum(np.maximum(wave, _over(hbm_read + hbm_write, hbm_bpc)),
                          _over(l2_bytes, g.l2_bytes_per_cycle))
    cycles = launch_cycles(arch) + int(np.ceil(wave).sum())
    off, l2, smem = arch.off_chip.name, _level(arch, "l2"), _level(arch, "shared_memory")
    blocks = gr.blocks
    traffic = {
        (off, "a", "data", "read"): float(hbm_read_a.sum()),
        (off, "b", "data", "read"): float(hbm_read_b.sum()),
        (off, "c", "data", "write"): float(hbm_write.sum()),
        (l2, "a", "data", "read"): blocks * a_panel, (l2, "b", "data", "read"): blocks * b_panel * ops.b,
        (l2, "c", "data", "write"): blocks * c_tile,
        (smem, "a", "data", "write"): blocks * steps * tm * tk * ops.a,
        (smem, "a", "data", "read"): blocks * steps * tm * tk * ops.a * warps_n,
        (smem, "b", "data", "write"): blocks * steps * tk * tn * ops.b,
        (smem, "b", "data", "read"): blocks * steps * tk * tn * ops.b * warps_m,
    }
    if ops.b_metadata:
        traffic[(off, "b", "metadata", "read")] = float(hbm_read_md.sum())
        traffic[(l2, "b", "metadata", "read")] = blocks * b_panel * ops.b_metadata
        traffic[(smem, "b", "metadata", "read")] = blocks * steps * tk * tn * ops.b_metadata * warps_m
    if gr.split > 1:  # the reduction kernel reads the FP32 partials and writes C
        outputs = gr.groups * m * n
        partials = gr.split * outputs * PARTIAL_BYTES
        cycles += memory_kernel_cycles(arch, partials + outputs * ops.c, ops=gr.split * outputs)
        traffic[(off, "c", "data", "read")] = float(partials)
        traffic[(off, "c", "data", "write")] += outputs * ops.c
    traffic = {key: v for key, v in traffic.items() if key[0] is not None}  # levels the machine has
    math_total = math.ceil((gr.waves - 1 + share) * g.threadblocks_per_sm * math_c * scale / eff)
    return GemmCost(cycles, math_total, (tm, tn), gr.split, gr.waves, blocks, traffic)


def _short_k_residents(arch: Architecture, gr: Grid, k_slice: float, ops: Operands,
                       shipped: tuple[int, int]) -> int:
    """Blocks sharing one SM when a block's whole K slice fits the prologue of the shipped kernel
    (``shipped = (tk, stages)``: at most ``stages − 1`` K steps), 0 when it does not (a steady-state main
    loop overlaps loads, MMAs and, across waves, the C stores). At most ``threadblocks_per_sm``, and as
    many as the SM's shared memory holds of the kernel's ``stages`` A and B slices; at least one (a
    library ships the stages that fit)."""
    tk, stages = shipped
    if stages < 2 or math.ceil(k_slice / tk) > stages - 1:
        return 0
    g = arch.gpu
    footprint = stages * tk * (gr.tm * ops.a + gr.tn * (ops.b + ops.b_metadata))  # bytes per block
    fit = int(g.smem_bytes_per_sm // footprint) if g.smem_bytes_per_sm else g.threadblocks_per_sm
    return max(1, min(g.threadblocks_per_sm, fit))


def _stream_k_wave(gr: Grid, main: float, l2_bytes_per_cycle: float, latency: int) -> tuple[float, float]:
    """(share of a full wave's main loop, cycles) of a last, partial wave run stream-K (Osama et al.,
    PPoPP'23; CUTLASS 3's ``sm90_tile_scheduler_stream_k``): its ``b`` tiles' K steps are spread evenly
    over all ``slots`` blocks, so the main loop lasts ``b / slots`` of a full one; each tile is shared by
    ``q = ceil(slots / b)`` blocks, ``q − 1`` of which write an FP32 partial tile that the tile's owner
    reads back and adds before its epilogue (the fix-up: ``2·b·(q − 1)`` partial tiles through L2)."""
    b = int(gr.blocks_per_wave[-1])
    share = b / gr.slots
    q = -(-gr.slots // b)
    fixup_bytes = 2 * b * (q - 1) * gr.tm * gr.tn * PARTIAL_BYTES
    fixup = fixup_bytes / l2_bytes_per_cycle if l2_bytes_per_cycle else 0.0
    return share, float(math.ceil(main * share + latency + fixup))


def _over(moved: np.ndarray, bytes_per_cycle: float) -> np.ndarray:
    """Cycles to move ``moved`` bytes per wave at ``bytes_per_cycle`` (0: unlimited)."""
    return moved / bytes_per_cycle if bytes_per_cycle else np.zeros_like(moved)


def _level(arch: Architecture, kind: str) -> str | None:
    """The name of the machine's first memory of ``kind`` (None: it has none; its traffic is not
    reported)."""
    return next((mem.name for mem in arch.memories if mem.kind == kind), None)
