"""One pass's timing and totals, fed tile chunk by tile chunk: traffic, transfer cycles, schedule, energy.

A :class:`PassTimer` takes the pass's tiles in chunks (:class:`~hwsim.npu.tiles.TileCosts` of
consecutive tiles in loop order), turns each chunk into bytes per level (``traffic``), transfer
cycles per tile over the off-chip channels and compute cycles (the larger of the array's cycles
and the staging buffers' feed time), feeds a chunk-fed scheduler (``hwsim.engines``), and keeps
only running totals. Memory is bounded by the largest chunk, whatever the pass's tile count;
the result equals timing all tiles at once exactly (the schedulers are exact across chunks).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from archs import Architecture

from ..energy import pass_energy
from ..engines import scheduler
from ..pricing import total_pj
from ..vector import VectorWork
from .mapping import buffers
from .tiles import TileCosts
from .traffic import traffic


class PassTimer:
    """Running totals and schedule of one pass (``dense_baseline``: formats off, every byte dense).

    Args:
        read_operands: the operands the pass reads from off-chip (``a``, ``b`` and ``c`` where
            partial sums spill); they decide whether reads and write-backs share a channel.
        systolic: SCALE-Sim's Total Cycles convention (the schedule's end minus 1).
    """

    def __init__(self, arch: Architecture, backend: str, elem_bytes: dict[str, float], *,
                 dense_baseline: bool, read_operands: set[str], systolic: bool) -> None:
        self.arch, self.eb, self.dense_baseline, self.systolic = arch, elem_bytes, dense_baseline, systolic
        self.shared = shares_channel(arch, read_operands)
        # A dense baseline is scheduled analytically whatever the back end: the two back ends give
        # identical schedules (property-tested), and the baseline is a reference, not the study.
        self.sched = scheduler("analytic" if dense_baseline else backend, shared=self.shared)
        self.buf_bw = buffer_bytes_per_cycle(arch)
        # Where no transfer takes time the schedule is the computes back to back (the schedulers'
        # closed form from the start), whatever the back end, and bytes need no per-tile split
        # unless a format rounds per tile (csr/csc pointers).
        self.free = transfer_free(arch)
        self.linear = dense_baseline or not any(f.format in ("csr", "csc") for f in arch.sparse.formats)
        self.totals: dict[tuple[str, str, str, str], float] = defaultdict(float)
        self.sums = dict.fromkeys(("compute_cycles", "fed_cycles", "algorithmic", "actual", "gated",
                                   "skipped"), 0)
        self.tiles = 0

    def add(self, t: TileCosts) -> None:
        """Time and count a chunk of tiles (the next ones in loop order)."""
        compute = t.compute_cycles
        if self.buf_bw:
            fed = sum(t.buf_read[op] * self.eb[op] for op in ("a", "b"))
            compute = np.maximum(compute, np.ceil(fed / self.buf_bw).astype(np.int64))
        tr = traffic(self.arch, _summed(t) if self.free and self.linear else t, self.eb, self.dense_baseline)
        for key, moved in tr.totals.items():
            self.totals[key] += moved
        if not self.free:
            dma, wb = transfers(self.arch, tr.offchip_read_per_tile, tr.offchip_write_per_tile, len(compute))
            self.sched.feed(compute, dma, wb)
        s = self.sums
        s["compute_cycles"] += int(t.compute_cycles.sum())
        s["fed_cycles"] += int(compute.sum())
        for name in ("algorithmic", "actual", "gated", "skipped"):
            s[name] += int(getattr(t, name).sum())
        self.tiles += t.count

    def row(self, vec: VectorWork) -> dict[str, Any]:
        """The pass's report values, with the non-GEMM work ``vec`` on the vector unit."""
        arch, s = self.arch, self.sums
        total = s["fed_cycles"] if self.free else self.sched.finish().total_cycles
        quirk = 1 if self.systolic and self.tiles else 0  # SCALE-Sim's Total Cycles: the sum minus 1
        gemm_cycles = total - quirk
        vec_cycles = vec.cycles(arch)
        cycles = max(gemm_cycles, vec_cycles)  # the vector unit works on outputs as they are written back
        totals = dict(sorted(self.totals.items()))  # one column order however the tiles were chunked
        energy = pass_energy(arch, actual_macs=s["actual"], gated_macs=s["gated"], traffic=totals,
                             vector_ops=vec.ops, cycles=cycles)
        row: dict[str, Any] = {
            "cycles": int(cycles), "gemm_cycles": int(gemm_cycles), "compute_cycles": s["compute_cycles"],
            "stall_cycles": int(max(total - s["fed_cycles"], 0)),
            "vector_cycles": int(vec_cycles), "tiles": int(self.tiles),
            "algorithmic_macs": s["algorithmic"], "actual_macs": s["actual"], "gated_macs": s["gated"],
            "skipped_macs": s["skipped"], "vector_ops": float(vec.ops),
            "energy_pj": total_pj(energy),
        }
        for comp, pj in energy.items():
            row[f"energy_{comp}_pj"] = pj
        for (comp, op, kind, direction), moved in totals.items():
            suffix = "" if kind == "data" else "_metadata"
            row[f"{comp}_{op}{suffix}_{direction}_bytes"] = moved
        return row


def _summed(t: TileCosts) -> TileCosts:
    """The chunk as one entry: every per-tile count summed (for totals that are sums over tiles)."""
    def one(v: np.ndarray) -> np.ndarray:
        return np.array([v.sum()], dtype=v.dtype)

    out = TileCosts(*(one(getattr(t, f)) for f in ("compute_cycles", "algorithmic", "actual", "gated",
                                                   "skipped")), merged_tiles=t.count)
    for name in ("buf_read", "buf_read_nz", "dram_read", "dram_read_nz", "dram_write"):
        setattr(out, name, {k: one(v) for k, v in getattr(t, name).items()})
    return out


def transfer_free(arch: Architecture) -> bool:
    """Whether every off-chip transfer takes no time (unlimited bandwidth on every channel)."""
    off = arch.off_chip
    bws = [off.bandwidth_bytes_per_s] + [ln.bandwidth_bytes_per_s for ln in arch.links
                                         if off.name in (ln.source, ln.destination)]
    return all(bw <= 0 for bw in bws)


def shares_channel(arch: Architecture, read_operands: set[str]) -> bool:
    """Whether the output's write-back travels on a channel that one of the reads also uses."""
    return channel(arch, "c", False)[0] in {channel(arch, op, True)[0] for op in read_operands}


def channel(arch: Architecture, op: str, read: bool) -> tuple[str, float]:
    """The channel an operand travels on between off-chip and its buffer: the link between them if
    the architecture has one, else the off-chip memory's own; ``(name, bytes/s)``."""
    off = arch.off_chip
    for ln in arch.links:
        end = ln.source if read else ln.destination
        if op in ln.operands and end == off.name:
            return ln.name, ln.bandwidth_bytes_per_s
    return off.name, off.bandwidth_bytes_per_s


def buffer_bytes_per_cycle(arch: Architecture) -> float:
    """Bytes per cycle the staging buffer(s) can feed the array (0: unlimited)."""
    names = {b for b, _ in buffers(arch).values() if b}
    bws = [arch.memory(n).bandwidth_bytes_per_s for n in names]
    if not bws or any(b == 0 for b in bws):
        return 0.0
    return sum(bws) / arch.clock_hz


def transfers(arch: Architecture, reads: dict[str, np.ndarray], writes: np.ndarray,
               n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile DMA-in and write-back cycles over the off-chip channels; reads on different
    channels overlap."""
    per_channel: dict[str, tuple[float, np.ndarray]] = {}
    for op, moved in reads.items():
        name, bw = channel(arch, op, True)
        per_channel[name] = (bw, per_channel.get(name, (bw, np.zeros(n)))[1] + moved)
    dma = np.zeros(n, np.int64)
    for bw, moved in per_channel.values():
        dma = np.maximum(dma, _cycles(arch, bw, moved))
    return dma, _cycles(arch, channel(arch, "c", False)[1], writes)


def _cycles(arch: Architecture, bandwidth: float, moved: np.ndarray) -> np.ndarray:
    if bandwidth <= 0:
        return np.zeros(len(moved), np.int64)
    per_cycle = bandwidth / arch.clock_hz
    cyc = np.ceil(moved / per_cycle).astype(np.int64)
    return np.where(moved > 0, cyc + arch.off_chip.latency_cycles, 0)
