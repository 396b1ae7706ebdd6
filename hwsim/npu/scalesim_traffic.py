"""``--mapping scalesim``: a layer's DRAM traffic as SCALE-Sim 3.0.0 counts it in CALC mode.

SCALE-Sim's loop order (column folds outer, row folds inner, the whole streamed dimension per
fold) and its memory model: per-operand double-buffered SRAMs in front of DRAM whose reads and
writes follow from the address sequences the array asks for (``scalesim_demand``) and its read
windows and write drains (``scalesim_buffers``). The SRAM of an operand is its staging buffer
(``hwsim.npu.mapping.buffers``'s outermost on-chip holder), all of it (SCALE-Sim halves it itself),
in words of the operand's element size; a buffer staging several operands gives each an equal
share. Words become bytes through the format declared at each level (``per_element``), with the
iteration's densities for ``a`` and ``b`` and the output dense, as elsewhere in the mapper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archs import Architecture
from traces.format.layer import LayerSpec

from .mapper import NestMapping, NestResult, per_element
from .mapping import buffers
from .scalesim_buffers import dram_reads, dram_writes, window_words
from .scalesim_demand import Gemm, demand, folds, operand_addresses


@dataclass(frozen=True)
class ScalesimCounts:
    """Words of one layer pass (all groups): DRAM reads of ``a`` and ``b``, DRAM writes of ``c``."""

    dataflow: str
    row_folds: int
    col_folds: int
    buffer_words: dict[str, int]  # operand -> words of its SRAM (both halves)
    reads: dict[str, int]  # "a", "b" -> DRAM words read
    writes: int  # DRAM words of c written

    @property
    def notation(self) -> str:
        """``scalesim ws | C2 R12 | W a32750 b32750 | D c32768``: dataflow, column and row folds,
        the read windows of ``a`` and ``b`` and the drain of ``c`` (words; ``-``: never, without
        a buffer or with one under 100 words)."""
        w = {op: window_words(self.buffer_words[op]) or "-" for op in "ab"}
        drain = (self.buffer_words["c"] - -(-self.buffer_words["c"] // 2)) or "-"
        return (f"scalesim {self.dataflow} | C{self.col_folds} R{self.row_folds} | "
                f"W a{w['a']} b{w['b']} | D c{drain}")


def buffer_words(arch: Architecture, eb: dict[str, float]) -> dict[str, int]:
    """Per operand, the words its SCALE-Sim SRAM holds (0: no on-chip buffer, so unbounded)."""
    bufs = buffers(arch)
    out = {}
    for op, (name, _) in bufs.items():
        if not name:
            out[op] = 0
            continue
        mem = arch.memory(name)
        sharing = sum(1 for n, _ in bufs.values() if n == name)
        out[op] = int(mem.capacity_bytes * mem.instances / sharing // eb[op])
    return out


def layer_counts(spec: LayerSpec, pass_: str, batch: int, arch: Architecture, dataflow: str,
                 eb: dict[str, float], nm: tuple[int, int] | None = None) -> ScalesimCounts:
    """SCALE-Sim's DRAM words of one pass of ``spec`` for ``batch`` samples on ``arch``'s array
    (every group an identical SCALE-Sim layer of its own); ``nm``: the filter is N:M-compressed
    as SCALE-Sim's ``[sparsity]`` does it (:func:`nm_gemm`)."""
    rows, cols = arch.compute.rows, arch.compute.cols
    gemm = operand_addresses(spec, pass_, batch)
    if nm is not None:
        gemm = nm_gemm(gemm, *nm)
    words = buffer_words(arch, eb)
    groups = spec.groups
    space = {op: gemm.space(op) for op in ("a", "b")}
    reads = {}
    for op in ("a", "b"):
        stream = (addr for addr, _ in demand(dataflow, op, rows, cols, gemm))
        reads[op] = groups * dram_reads(stream, words[op], space[op])
    cycles = (cyc for _, cyc in demand(dataflow, "c", rows, cols, gemm, with_cycles=True))
    c_words = words["c"] or 1 << 62  # no ofmap buffer: nothing drains before the end
    writes = groups * dram_writes(cycles, c_words, cols)
    rf, cf = folds(dataflow, rows, cols, gemm)
    return ScalesimCounts(dataflow, rf, cf, words, reads, writes)


def nm_gemm(gemm: Gemm, n: int, m: int) -> Gemm:
    """The GEMM SCALE-Sim 3.0.0 runs for an ``n:m`` filter (``compute/operand_matrix.py``,
    ``OptimizedMapping: false``): its fixed pattern keeps the first ``n`` of every ``m`` reduction
    indices (its im2col order: filter row, filter column, channel), the same for every filter; the
    filter matrix keeps those rows (``K' × N``) and the ifmap matrix those columns (``M × K'``), each
    element at its own address, and everything runs as a dense GEMM ``M × K' × N``. Which values a
    trace's masks keep does not change these counts: they are SCALE-Sim's model, not the masks'."""
    kept = np.flatnonzero(np.arange(gemm.k) % m < n)
    a_rows, a_cols = gemm.parts["a"]
    b_rows, b_cols = gemm.parts["b"]
    parts = {"a": (a_rows, a_cols[kept]), "b": (b_rows[kept], b_cols), "c": gemm.parts["c"]}
    return Gemm(gemm.m, len(kept), gemm.n, parts)


def result(counts: ScalesimCounts, arch: Architecture, eb: dict[str, float],
           dens: dict[str, float]) -> NestResult:
    """The bytes above the array (DRAM, the staging buffers' fills and drains) as a
    :class:`NestResult` for ``nestrows.merge``."""
    off = arch.off_chip.name
    bufs = buffers(arch)
    moved: dict[tuple[str, str, str, str], float] = {}

    def add(level: str, op: str, direction: str, words: int, density: float) -> None:
        data, meta = per_element(arch, level, op, density, eb[op])
        moved[(level, op, "data", direction)] = moved.get((level, op, "data", direction), 0.0) + words * data
        if meta:
            key = (level, op, "metadata", direction)
            moved[key] = moved.get(key, 0.0) + words * meta

    for op in ("a", "b"):
        add(off, op, "read", counts.reads[op], dens[op])
        if bufs[op][0]:
            add(bufs[op][0], op, "write", counts.reads[op], dens[op])
    add(off, "c", "write", counts.writes, 1.0)
    if bufs["c"][0]:
        add(bufs["c"][0], "c", "read", counts.writes, 1.0)
    dram = sum(v for (lv, *_), v in moved.items() if lv == off)
    return NestResult(NestMapping((1, 1, 1, 1, 1)), counts.notation, "scalesim", 0.0, 0, dram, moved)


__all__ = ["ScalesimCounts", "buffer_words", "layer_counts", "nm_gemm", "result"]
