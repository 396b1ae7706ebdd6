"""Weight residency: which weights sit in the crossbars when, and what reprogramming them costs.

``reram.weight_residency``:

- ``resident``: every layer's weights are written once and stay; a model that does not fit the
  chip is refused (``mapping.map_model``'s ``MappingError``).
- ``reprogram`` (the default): when the weights do not fit, the chip is time-multiplexed. A layer
  larger than the chip is cut into **parts** (whole groups, else blocks of crossbar columns of one
  group) that fit; the parts, in forward order, are packed greedily into **programs**, each at
  most the chip's IMAs. Before a program's layers run, its weights are fetched from off-chip memory
  and written into the crossbars (one copy, no replicas). A model that fits is one program and
  resident: nothing changes.

Which programs are written in one iteration (steady state: the previous iteration left its last
program in the crossbars), for ``G`` programs:

- ``transposed_read`` (backward-data reads the same crossbars): the forward runs programs ``1..G``
  (``1`` is still there from the previous backward), so it writes ``2..G``; backward-data runs
  ``G..1``, reusing ``G``, so it writes ``G−1..1``: ``2(G−1)`` programs per iteration. The update
  finds program 1 in the crossbars and writes its changed cells (the ordinary update writes); the
  other programs' new weights are written by their next programming, so their updates write nothing.
- otherwise the forward writes all ``G`` programs every iteration (the last one is overwritten
  before it is read again) and no update writes cells.

A programming writes every cell of its crossbars from the level the previous program left to its
own. Weights of the next program are not correlated with the last one's, so the level change is the
expectation for two independent uniform levels (``activations.expected_level_change``), priced with
the training write model (``reram.write``: pulses, SET and RESET row phases, the drivers' bit-,
source- and word-line pulses with inhibit lines, a crossbar's decoders), exactly as the crossbar
writes of activation products. A program's write latency is its slowest crossbar (or the total over
``crossbars_in_parallel``); its weights (``weight_bits`` each) are read from off-chip memory at its
bandwidth, overlapped with the writes, so a program takes the longer of the two. Each part's share of
its program's time is its share of the program's crossbars.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from archs import Architecture, ReramCompute

from ..errors import MappingError
from ..pricing import price
from .activations import expected_level_change
from .mapping import LayerMap, chip_imas
from .writes import full_range_pulses


@dataclass(frozen=True)
class Part:
    """A piece of one layer that is programmed as a whole: groups ``[g0, g1)``, columns ``[c0, c1)`` of
    each group (``LayerMap`` of the piece, one copy)."""

    layer: str
    g0: int
    g1: int
    c0: int
    c1: int
    lm: LayerMap

    @property
    def cells(self) -> int:
        """Cells of the part: weights × slices × column sets."""
        return (self.g1 - self.g0) * self.lm.k * (self.c1 - self.c0) * self.lm.slices * self.lm.sets


@dataclass(frozen=True)
class PartWrites:
    """Writing one part into crossbars that held other weights: counts to be priced, and its share of
    the program's time."""

    cells: int  # cells programmed
    pulses: float  # expected write pulses (all cells)
    row_pulses: int  # row phases (SET + RESET pulses per written row)
    bit_line_pulses: float  # bit lines charged × pulses (SET cells; RESET phase inhibits)
    source_line_pulses: float  # source lines × pulses (RESET cells; SET phase inhibits)
    crossbars: int  # crossbars written
    fetch_bytes: float  # weights read from off-chip memory
    ns: float = 0.0  # the part's share of its program's time (writes and fetch overlapped)

    def energy(self, arch: Architecture) -> dict[str, Any]:
        """Energy per component, pJ: ``reprogram_cells`` (pulses), ``reprogram_drivers`` (lines,
        rows, crossbars), ``reprogram_fetch`` (off-chip reads of the weights)."""
        return {
            "reprogram_cells": self.pulses * price(arch, "cell", "write_pulse"),
            "reprogram_drivers": (self.row_pulses * price(arch, "write_driver", "row_pulse")
                                  + self.bit_line_pulses * price(arch, "write_driver", "bit_line_pulse")
                                  + self.source_line_pulses * price(arch, "write_driver", "source_line_pulse")
                                  + self.crossbars * price(arch, "write_driver", "crossbar")),
            "reprogram_fetch": self.fetch_bytes * price(arch, arch.off_chip.name, "read"),
        }


def split_layer(name: str, lm: LayerMap, arch: Architecture) -> list[Part]:
    """Parts of one layer that each fit the chip: the whole layer; else runs of whole groups; else, per
    group, blocks of crossbar columns. MappingError when one block of ``rows`` inputs of one crossbar
    column does not fit."""
    r = arch.reram
    have = chip_imas(r)
    cols = r.crossbar.cols
    if lm.imas <= have:
        return [Part(name, 0, lm.groups, 0, lm.n, lm)]
    per_group = lm.imas // lm.groups
    if per_group <= have:
        step = have // per_group
        return [Part(name, g, min(g + step, lm.groups), 0, lm.n,
                     replace(lm, groups=min(g + step, lm.groups) - g)) for g in range(0, lm.groups, step)]

    def imas(n_x: int) -> int:
        return lm.k_xbars * math.ceil(n_x * lm.slices * lm.sets / r.crossbars_per_ima)

    fit = max((n_x for n_x in range(1, lm.n_xbars + 1) if imas(n_x) <= have), default=0)
    if fit == 0:
        raise MappingError(
            f"layer {name}: one column of crossbars over its {lm.k:,} inputs needs {imas(1):,} IMAs but the "
            f"chip has {have:,}, short by {imas(1) - have:,} IMAs, even written in turns; use a larger chip "
            f"(reram.tiles, reram.crossbars_per_ima) or more bits per cell")
    out = []
    for g in range(lm.groups):
        for c0 in range(0, lm.n, fit * cols):
            c1 = min(c0 + fit * cols, lm.n)
            n_x = math.ceil((c1 - c0) / cols)
            per_block = math.ceil(n_x * lm.slices * lm.sets / r.crossbars_per_ima)
            out.append(Part(name, g, g + 1, c0, c1,
                            replace(lm, n=c1 - c0, groups=1, n_xbars=n_x, imas_per_k_block=per_block)))
    return out


def expected_pulses_per_cell(r: ReramCompute) -> float:
    """Pulses that programming one cell over an unrelated level takes, expected: ``E|Δ| · N / L``,
    half LTP and half LTD."""
    n_ltp, n_ltd = full_range_pulses(r)
    top = 2**r.crossbar.bits_per_cell - 1
    return expected_level_change(r) * (n_ltp + n_ltd) / 2 / top


def part_writes(part: Part, arch: Architecture) -> PartWrites:
    """Counts of programming one part over whatever its crossbars held (expected level change)."""
    r = arch.reram
    lm = part.lm
    n_ltp, n_ltd = full_range_pulses(r)
    per_cell = expected_pulses_per_cell(r)
    groups, width = part.g1 - part.g0, part.c1 - part.c0
    rows = groups * lm.slices * lm.sets * lm.n_xbars * lm.k  # crossbar rows written
    half = rows * min(width, r.crossbar.cols) / 2  # per row phase, half the columns SET, half RESET
    inhibit = 1 if r.write.inhibit_unselected_lines else 0
    return PartWrites(part.cells, part.cells * per_cell, rows * (n_ltp + n_ltd),
                      half * (n_ltp + inhibit * n_ltd), half * (n_ltd + inhibit * n_ltp), lm.crossbars,
                      groups * lm.k * width * r.weight_bits / 8)


def crossbar_write_ns(part: Part, arch: Architecture) -> float:
    """Write time of one crossbar of the part, ns: its rows one after another, each a SET and a RESET
    phase across the whole range (row-parallel), or cell by cell."""
    r = arch.reram
    w = r.write
    n_ltp, n_ltd = full_range_pulses(r)
    step_ns = w.pulse_ns + (w.verify_ns if w.write_verify else 0.0)
    rows = min(part.lm.k, r.crossbar.rows)
    if w.row_parallel:
        return rows * (n_ltp + n_ltd) * step_ns
    return rows * min(part.c1 - part.c0, r.crossbar.cols) * expected_pulses_per_cell(r) * step_ns


@dataclass(frozen=True)
class Residency:
    """The chip's plan for one replay: the programs, the writes each layer's passes pay per iteration,
    and how much of each layer is still in the crossbars at its update."""

    programs: tuple[tuple[Part, ...], ...]
    parts: dict[str, tuple[Part, ...]]  # layer -> its parts, in order (one part: not split)
    before: dict[tuple[str, str], PartWrites]  # (layer, pass) -> the writes that precede it, summed
    update_share: dict[str, float]  # layer -> fraction of its crossbars in the crossbars at its update
    program_ns: tuple[float, ...]  # time of writing each program (writes and fetch overlapped)
    written: tuple[tuple[int, str], ...]  # (program, the pass it precedes) written in one iteration

    @property
    def programmings_per_iteration(self) -> int:
        """Programs written per iteration (steady state): no cell is written more often than this."""
        return len(self.written)

    def lifetime_iterations(self, arch: Architecture) -> float:
        """Iterations until a cell written at every programming reaches the endurance (expected pulses
        per programming, ``part_writes``); inf when nothing is rewritten."""
        per_iteration = self.programmings_per_iteration * expected_pulses_per_cell(arch.reram)
        return arch.reram.write.endurance_cycles / per_iteration if per_iteration > 0 else math.inf

    @property
    def crossbars(self) -> int:
        """Crossbars the largest program occupies."""
        return max((sum(p.lm.crossbars for p in prog) for prog in self.programs), default=0)


def written_programs(n: int, backward: Sequence[int]) -> tuple[list[tuple[int, str]], int]:
    """The programs written in one steady-state iteration, as (program, the pass it precedes), and the
    program left in the crossbars at the end (the update's). ``n`` programs; ``backward``: those
    holding a layer whose backward-data reads the crossbars (transposed read). The forward runs
    ``0..n-1``, the backward-data the ``backward`` programs from the last: the last forward program
    is reused, and the first forward program is not rewritten when the previous backward left it."""
    if n <= 1:
        return [], 0
    back = sorted(set(backward), reverse=True)
    last = back[-1] if back else n - 1
    out = [(p, "forward") for p in range(n) if not (p == 0 and last == 0)]
    out += [(p, "backward_data") for p in back if p != n - 1]
    return out, last


def plan(names: Sequence[str], maps: dict[str, LayerMap], arch: Architecture,
         backward: Collection[str] | None = None) -> Residency:
    """Cut the layers (``names`` in forward order, ``maps`` one copy each) into programs that fit.
    ``backward``: the layers with a backward-data pass (default: all); it matters only with
    ``transposed_read``, when backward-data reads the crossbars."""
    r = arch.reram
    have = chip_imas(r)
    parts = {name: tuple(split_layer(name, maps[name], arch)) for name in names}
    programs: list[list[Part]] = []
    used = have + 1
    for name in names:
        for part in parts[name]:
            if used + part.lm.imas > have:
                programs.append([])
                used = 0
            programs[-1].append(part)
            used += part.lm.imas
    back = set(names if backward is None else backward) if r.transposed_read else set()
    written, last = written_programs(len(programs), [i for i, prog in enumerate(programs)
                                                     if any(p.layer in back for p in prog)])
    if len(programs) <= 1:
        return Residency(tuple(map(tuple, programs)), parts, {}, dict.fromkeys(names, 1.0), (), ())
    bw = arch.off_chip.bandwidth_bytes_per_s * arch.off_chip.instances
    program_ns, shares = [], {}
    for prog in programs:
        writes = [part_writes(p, arch) for p in prog]
        xbar_ns = [crossbar_write_ns(p, arch) for p in prog]
        write_ns = max(xbar_ns)
        if r.write.crossbars_in_parallel > 0:
            total = sum(w.crossbars * t for w, t in zip(writes, xbar_ns, strict=True))
            write_ns = max(write_ns, total / r.write.crossbars_in_parallel)
        fetch = sum(w.fetch_bytes for w in writes)
        ns = max(write_ns, fetch / bw * 1e9 if bw > 0 else 0.0)
        program_ns.append(ns)
        xbars = sum(w.crossbars for w in writes)
        for p, w in zip(prog, writes, strict=True):
            shares[id(p)] = replace(w, ns=ns * w.crossbars / xbars)
    before: dict[tuple[str, str], PartWrites] = {}
    for index, pass_ in written:
        for p in programs[index]:
            key = (p.layer, pass_)
            before[key] = _add(before[key], shares[id(p)]) if key in before else shares[id(p)]
    # the update writes the changed cells of the program left in the crossbars only when the next
    # forward reads it before rewriting it: the first program
    kept = programs[0] if last == 0 else []
    update_share = {}
    for name in names:
        total = sum(p.lm.crossbars for p in parts[name])
        update_share[name] = sum(p.lm.crossbars for p in kept if p.layer == name) / total if total else 0.0
    return Residency(tuple(map(tuple, programs)), parts, before, update_share, tuple(program_ns),
                     tuple(written))


def _add(a: PartWrites, b: PartWrites) -> PartWrites:
    return PartWrites(a.cells + b.cells, a.pulses + b.pulses, a.row_pulses + b.row_pulses,
                      a.bit_line_pulses + b.bit_line_pulses, a.source_line_pulses + b.source_line_pulses,
                      a.crossbars + b.crossbars, a.fetch_bytes + b.fetch_bytes, a.ns + b.ns)
