"""Timing of a loop nest: the tiles of one mapping in loop order through the timing back end.

A mapping (``hwsim.npu.mapper``: a buffer tile, a DRAM loop order, a residency level per operand)
runs ``Π trips`` tiles per group, in its loop order (outermost first, mixed radix). Per tile:

- **compute**: the tile's GEMM on the array with SCALE-Sim's folds (``loopnest.array_counts``:
  every fold pays its fill and drain), or the staging buffers' feed time when that is longer
  (their ``bandwidth_bytes_per_s``), times ``compute_scale`` (a sparse replay's compute ratio);
- **DMA-in**: an operand's slice is loaded at the tiles where a relevant loop outside its
  residency level turns (tile ``i`` with ``i mod inner = 0``, ``inner`` the product of the trips
  inside the innermost relevant turning loop); the written operand's slice is read back only on
  a revisit (a reduction loop outside it has turned: partial sums);
- **write-back**: the written operand's slice at the last tile of each visit.

Each operand's DRAM bytes (``NestResult.bytes``: data and metadata, spills at the dense size) are
spread evenly over its events, so the totals are the nest's to the byte. The DMA and write-back
cycles come from the off-chip channels (``timing.transfers``), and the back end
(``hwsim.engines``) schedules DMA-in → compute → write-back with two buffer slots when every
staging buffer in use is double-buffered (the next tile loads while this one computes), one
otherwise; the channel is shared when the write-back travels on a read's channel.

With two slots and the register-file level (its tile's own loops are known: ``TileStream``), the
first and last tiles are not whole-tile transfers: a tile runs as blocks of its buffer-level loops,
so the first tile computes once its first register-file tile's data is in (the rest streams in
behind it at the channel's rate: ``fill_exposed``) and the last write-back is what the last block
finishes (what earlier tiles and blocks finished drains while the last tile computes:
``drain_exposed``). Every byte still
crosses the channel: the cycles taken off the first load join the second, those taken off the last
write-back the one before it. Without the register-file level a tile's loop nest inside is the
array's folds, and transfers stay whole tiles.

:func:`estimate` is the mapper's closed form of the same schedule (per candidate, no loop):
exact when no transfer takes time, and a bound-based estimate otherwise (``docs/mapping.md``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from archs import Architecture

from ..engines import scheduler
from .loopnest import DIMS, RELEVANT, ROLES, ConvShape, array_counts, residency, stored, tile_gemm
from .mapping import buffers
from .timing import buffer_bytes_per_cycle, channel, shares_channel, transfer_free, transfers

CHUNK_TILES = 1 << 20  # tiles generated and fed to the scheduler at once


@dataclass(frozen=True)
class NestTiming:
    """The schedule of one mapping (all groups): cycles as the back end ends it."""

    total_cycles: int  # the last compute or write-back end
    compute_cycles: int  # Σ per-tile compute (array or feed, scaled)
    array_cycles: int  # Σ per-tile array cycles (folds × (fill + streamed length)), unscaled
    tiles: int
    slots: int


@dataclass(frozen=True)
class TileStream:
    """How a tile meets its data when its own loop nest is known (the register-file level): with
    double-buffered staging buffers the first tile starts on its first block's data while the rest
    streams in behind, and the last write-back drains what is final while the last tile computes.

    Block ``j`` (``j = 1..5``) fixes the first (or, at the end, the last) iteration of the tile's
    buffer-level loops down to the ``j``-th, outermost first (``substeps``: their trips). ``start_a``,
    ``start_b``: off-chip bytes of ``a`` and ``b`` the first block of each level needs (all of an
    operand its loops do not index); ``tile_write``: the written operand's bytes of one tile;
    ``late_write``: those the last block of each level finishes."""

    substeps: tuple[int, ...]
    start_a: tuple[float, ...]
    start_b: tuple[float, ...]
    tile_write: float
    late_write: tuple[float, ...]


def _levels_compute(c: np.ndarray, steps: np.ndarray) -> list[np.ndarray]:
    """Compute cycles of a tile's blocks ``c_0 = c, c_j = c_{j-1} / k_j`` (``(N,)`` each, float)."""
    out = [np.asarray(c, np.float64)]
    for j in range(steps.shape[1]):
        out.append(out[-1] / np.maximum(steps[:, j], 1))
    return out


def fill_exposed(c: np.ndarray, d0: np.ndarray, start: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Cycles of the first tile's loads that its compute waits for ``(N,)``: ``c`` a tile's compute,
    ``d0`` its loads, ``start`` ``(N, 5)`` the loads its first block of each level needs, ``steps``
    ``(N, 5)`` the loops' trips. A block of ``k`` sub-blocks whose data streams in at the channel's
    rate, in the order they use it, ends at ``max(E_sub + c_block, S_block + c_sub)`` (its first
    sub-block waits ``E_sub``, its last one all of its ``S_block``): from the innermost level out,
    ``E = max(E, S_j − c_j + c_{j+1})``, and the tile's ``max(E, D0 − c + c_1)``."""
    cl = _levels_compute(c, steps)
    e = start[:, -1].astype(np.float64)
    for j in range(start.shape[1] - 1, 0, -1):
        e = np.maximum(e, start[:, j - 1] - cl[j] + cl[j + 1])
    e = np.maximum(e, d0 - cl[0] + cl[1])
    return np.minimum(d0, np.ceil(e - 1e-9)).astype(np.int64)


def drain_exposed(c: np.ndarray, w: np.ndarray, late: np.ndarray, late_bytes: np.ndarray,
                  steps: np.ndarray) -> np.ndarray:
    """Cycles of the last write-back after the last compute ends ``(N,)``: ``w`` the last visit's
    write-back (what earlier tiles finished drains while the last one computes: ``w − c``),
    ``late`` ``(N, 6)`` the write-back of the tile (column 0) and of its last block of each level,
    ``late_bytes`` their bytes. A block finishing ``L_{j-1}`` in sub-blocks that each finish
    ``L_j`` drains behind them: ``X = max(X, T_{j-1} − c_{j-1} + c_{j-1}·L_j/L_{j-1})``."""
    cl = _levels_compute(c, steps)
    x = late[:, -1].astype(np.float64)
    for j in range(late.shape[1] - 1, 0, -1):
        whole = late_bytes[:, j - 1]
        share = np.where(whole > 0, late_bytes[:, j] / np.maximum(whole, 1e-300), 1)
        x = np.maximum(x, late[:, j - 1] - cl[j - 1] + cl[j - 1] * share)
    x = np.maximum(x, w - cl[0])
    return np.minimum(w, np.ceil(x - 1e-9)).astype(np.int64)


def slots_of(arch: Architecture) -> int:
    """Buffer slots per side: 2 when every staging buffer is double-buffered, else 1."""
    names = {name for name, _ in buffers(arch).values() if name}
    return 2 if names and all(arch.memory(n).double_buffered for n in names) else 1


def _events(shape: ConvShape, tile: tuple[int, ...], order: tuple[str, ...], tensor: str,
            level: int) -> tuple[np.ndarray, int, np.ndarray]:
    """``(trips in order, inner, first_mask)``: a slice of ``tensor`` at residency ``level`` is
    loaded at tiles ``i`` with ``i mod inner == 0``; ``first_mask`` (bool per position) marks the
    loops whose index must be 0 for that load to be the slice's first visit (the loops outside
    the innermost relevant turning one that do not index the tensor)."""
    pos = [DIMS.index(d) for d in order]
    trips = np.array([shape.dims[p] // tile[p] for p in pos], np.int64)
    rel = np.array([RELEVANT[tensor][p] for p in pos])
    active = [q for q in range(min(level, 5)) if rel[q] and trips[q] > 1]
    p = active[-1] if active else -1
    inner = int(np.prod(trips[p + 1:])) if p >= 0 else int(np.prod(trips))
    first_mask = np.array([q < p and not rel[q] and trips[q] > 1 for q in range(5)])
    return trips, inner, first_mask


@dataclass(frozen=True)
class NestPlan:
    """What every tile of a nest does, in closed form: compute cycles (the same for every tile),
    and per operand the period of its loads (``inner``), the loops that mark a revisit and the
    bytes one event moves."""

    tiles_per_group: int
    groups: int
    compute: int  # cycles per tile
    array_cycles: int  # the array's cycles per tile (unscaled)
    inner: dict[str, int]  # operand -> a slice loads at tiles i with i mod inner == 0
    strides: np.ndarray  # (5,) tiles per step of the loop at each position (c's order)
    trips: np.ndarray  # (5,) trips of the loops in order
    revisit_loops: np.ndarray  # (5,) bool: a c load with one of these loops past 0 is a revisit
    per_event: dict[str, float]  # bytes per event: "a", "b" (reads), "c" (partial-sum reads), "c_write"
    stream: TileStream | None = None  # the tile's own steps (register-file level), else whole tiles
    sweep: dict[str, int] | None = None  # a sliding slice of "a" or "b": the trips of its loop; the
    # first load of each sweep is ``per_event``, the others ``per_slide`` (only the new rows)
    per_slide: dict[str, float] | None = None

    def load_bytes(self, o: str, i: np.ndarray) -> np.ndarray:
        """Bytes of ``o``'s load at tiles ``i`` (within a group; loads at ``i mod inner == 0``)."""
        sweep = (self.sweep or {}).get(o, 1)
        if sweep <= 1:
            return np.full(len(i), self.per_event[o])
        first = (i // self.inner[o]) % sweep == 0
        return np.where(first, self.per_event[o], self.per_slide[o])

    @property
    def total(self) -> int:
        return self.tiles_per_group * self.groups

    def _revisit(self, i: np.ndarray) -> np.ndarray:
        """Whether a load of the written operand at tile ``i`` (within its group) is a revisit."""
        revisit = np.zeros(len(i), bool)
        for q in np.flatnonzero(self.revisit_loops):
            revisit |= (i // self.strides[q]) % self.trips[q] > 0
        return revisit

    def chunk(self, start: int, stop: int,
              prefetch: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Tiles ``start..stop-1`` (loop order, groups one after the other): compute cycles,
        off-chip read bytes per operand, write-back bytes; each ``(stop - start,)``.

        ``prefetch`` (double-buffered staging buffers): a slice is loaded while the slice before it
        is in use — the bytes of the load at tile ``e`` are spread evenly over the ``inner`` tiles
        before ``e`` — and a visit's write-back drains over the next visit's tiles; only the first
        loads (tile 0) and the last write-back stay whole. Without it every load and write-back
        happens at its own tile."""
        if prefetch:
            return self._prefetched(np.arange(start, stop, dtype=np.int64))
        i = np.arange(start, stop, dtype=np.int64) % self.tiles_per_group
        reads = {o: np.where(i % self.inner[o] == 0, self.load_bytes(o, i), 0.0) for o in "ab"}
        load_c = i % self.inner["c"] == 0
        if self.per_event["c"]:
            if self.revisit_loops.any():
                reads["c"] = np.where(load_c & self._revisit(i), self.per_event["c"], 0.0)
            else:  # halo read-modify-writes only (backward-data): with every visit's load
                reads["c"] = np.where(load_c, self.per_event["c"], 0.0)
        writes = np.where((i + 1) % self.inner["c"] == 0, self.per_event["c_write"], 0.0)
        return np.full(len(i), self.compute, np.int64), reads, writes

    def _prefetched(self, g: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """``chunk(prefetch=True)``: the load due at tile ``e`` streams in with the DMAs of tiles
        ``e - inner + 1 .. e`` (each overlaps the compute of the tile before it); the write-back of
        a visit ending at tile ``x`` drains with tiles ``x .. x + inner - 1``."""
        total, first = self.total, g == 0
        reads = {}
        for o in "abc":
            period, per = self.inner[o], self.per_event[o]
            if not per:
                continue
            due = (g + period - 1) // period * period  # the load whose stream this tile's DMA carries
            ok = (g > 0) & (due < total)
            if o == "c" and self.revisit_loops.any():  # partial sums: only revisits are read back
                reads[o] = np.where(ok & self._revisit(due % self.tiles_per_group), per / period, 0.0)
            else:
                due_bytes = per if o == "c" else self.load_bytes(o, due % self.tiles_per_group)
                reads[o] = np.where(ok, due_bytes / period, 0.0) + np.where(first, per, 0.0)
        period, per = self.inner["c"], self.per_event["c_write"]
        ending = (g + 1) // period * period - 1  # the last tile of the visit this tile drains
        spread = (ending >= 0) & (ending < total - 1)
        writes = np.where(spread, per / period, 0.0) + np.where(g == total - 1, per, 0.0)
        return np.full(len(g), self.compute, np.int64), reads, writes

    def starts(self, start: int, stop: int, prefetch: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Tiles where a transfer begins — its latency is paid there once, however its bytes are
        spread (``chunk``'s ``prefetch``) — as ``(dma_in, write_back)`` bool arrays ``(stop - start,)``."""
        g = np.arange(start, stop, dtype=np.int64)
        total, n = self.total, self.tiles_per_group
        dma = np.zeros(len(g), bool)
        for o in "abc":
            if not self.per_event[o]:
                continue
            period = self.inner[o]
            due = g - 1 + period if prefetch else g  # the load that starts streaming at this tile
            at = ((g - 1) % period == 0) & (g > 0) & (due < total) if prefetch else g % period == 0
            if o == "c" and self.revisit_loops.any():
                at &= self._revisit(due % n)
            dma |= at | ((g == 0) & (o != "c" or not self.revisit_loops.any()))
        wb = (g + 1) % self.inner["c"] == 0 if self.per_event["c_write"] else np.zeros(len(g), bool)
        return dma, wb


def nest_plan(shape: ConvShape, pass_: str, arch: Architecture, tile: tuple[int, ...],
              order: tuple[str, ...], levels: dict[str, int], dram_bytes: dict[tuple[str, str], float],
              elem_bytes: dict[str, float], dataflow: str, compute_scale: float = 1.0,
              array: tuple[int, float] | None = None, stream: TileStream | None = None,
              slide: bool = True) -> NestPlan:
    """The per-tile plan of one mapping.

    Args:
        levels: residency level per GEMM operand (``NestResult.levels``).
        dram_bytes: off-chip bytes per ``(operand, "read" | "write")`` (data and metadata).
        elem_bytes: bytes per element of ``a``, ``b`` (the buffer feed time).
        compute_scale: multiplies every tile's compute cycles (rounded up).
        array: a register-file level's ``(PE cycles, bytes the buffers feed)`` per tile
            (``NestResult.tile_array``), instead of the systolic array's folds.
        stream: the tile's steps (``NestResult.tile_stream``): the first tile starts on its first
            step's data and the last write-back drains behind the last tile's steps.
        slide: whether an input slice slides (``NestMapping.slide``, ``loopnest.residency``): the
            first load of each sweep of its loop brings the whole window, the others the new rows.
    """
    shape = stored(shape, arch)
    n = int(np.prod([d // t for d, t in zip(shape.dims, tile, strict=True)]))
    if array is None:
        m, k, nn = tile_gemm(shape, np.array([tile], np.int64), pass_)
        arr = array_counts(m, k, nn, arch.compute.rows, arch.compute.cols, dataflow)
        per_tile = int(arr["cycles"][0])
        fed = float(arr["a"][0]) * elem_bytes["a"] + float(arr["b"][0]) * elem_bytes["b"]
    else:
        per_tile, fed = array
    compute = per_tile
    buf_bw = buffer_bytes_per_cycle(arch)
    if buf_bw:
        compute = max(compute, int(np.ceil(fed / buf_bw)))
    if compute_scale != 1.0:
        compute = int(np.ceil(compute * compute_scale - 1e-9))
    roles, g = ROLES[pass_], shape.groups
    ev = {op: _events(shape, tile, order, roles[op], levels[op]) for op in "abc"}
    trips, inner_c, revisit_loops = ev["c"]
    per_event = {op: dram_bytes.get((op, "read"), 0.0) / (n // ev[op][1] * g) for op in "ab"}
    sweep, per_slide = {}, {}
    if slide:  # a sliding slice: its bytes split between whole first windows and new rows
        res = residency(shape, np.array([tile], np.int64), np.array([[DIMS.index(d) for d in order]]))
        for op in "ab":
            fp, _ld, fills, at = (x[levels[op], 0] for x in res[roles[op]])
            moved = dram_bytes.get((op, "read"), 0.0)
            if at < 0 or not moved:
                continue
            sweeps = n // ev[op][1] // int(trips[at])  # per group
            added = (fills / sweeps - fp) / (int(trips[at]) - 1)  # elements per turn
            per_el = moved / (fills * g)
            sweep[op] = int(trips[at])
            per_event[op], per_slide[op] = fp * per_el, added * per_el
    visits = n // inner_c
    per_event["c_write"] = dram_bytes.get(("c", "write"), 0.0) / (visits * g)
    revisits = visits - visits // int(np.prod(np.where(revisit_loops, trips, 1)))
    c_read = dram_bytes.get(("c", "read"), 0.0)
    per_event["c"] = c_read / ((revisits if revisit_loops.any() else visits) * g) if c_read else 0.0
    strides = np.array([int(np.prod(trips[q + 1:])) for q in range(5)], np.int64)
    return NestPlan(n, g, compute, per_tile, {op: ev[op][1] for op in "abc"}, strides, trips,
                    revisit_loops, per_event, stream, sweep, per_slide)


def nest_timing(plan: NestPlan, arch: Architecture, backend: str = "analytic") -> NestTiming:
    """Schedule a plan's tiles (DMA-in → compute → write-back) on the back end."""
    read_ops = {o for o in "abc" if plan.per_event[o] > 0}
    slots = slots_of(arch)
    prefetch = slots == 2
    shared = shares_channel(arch, read_ops or {"a"})
    sched = scheduler(backend, slots=slots, shared=shared)
    # the off-chip latency: paid where a transfer starts, not per tile it is spread over
    lat = 0 if transfer_free(arch) else arch.off_chip.latency_cycles
    no_latency = replace(arch, memories=tuple(replace(m, latency_cycles=0) if m.off_chip else m
                                              for m in arch.memories)) if lat else arch
    edges = [*range(0, plan.total, CHUNK_TILES), plan.total]
    if len(edges) > 2 and edges[-1] - edges[-2] == 1:  # the last two tiles in one chunk
        edges[-2] -= 1
    stream = plan.stream if prefetch else None
    for start, stop in itertools.pairwise(edges):
        compute, reads, writes = plan.chunk(start, stop, prefetch=prefetch)
        dma, wb = transfers(no_latency, reads, writes, len(compute))
        if lat:
            dma_at, wb_at = plan.starts(start, stop, prefetch)
            dma, wb = dma + lat * dma_at, wb + lat * wb_at
        if stream is not None:
            _stream_ends(plan, stream, no_latency, lat, dma, wb, start == 0, stop == plan.total, shared)
        sched.feed(compute, dma, wb)
    end = sched.finish().total_cycles if plan.total else 0
    return NestTiming(int(end), plan.compute * plan.total, plan.array_cycles * plan.total, plan.total, slots)


def _stream_ends(plan: NestPlan, stream: TileStream, arch: Architecture, lat: int, dma: np.ndarray,
                 wb: np.ndarray, first: bool, last: bool, shared: bool) -> None:
    """Shorten the first tile's loads and the last write-back in place to what the tile's blocks
    leave exposed (``fill_exposed``, ``drain_exposed``); the cycles taken off move to the next load
    and to the write-back before, so the channel carries every byte. A nest of one tile streams its
    loads in and its finished blocks out during that tile's compute: on a channel shared by reads
    and write-backs what does not fit in the compute waits after it."""
    c = np.array([plan.compute])
    steps = np.array([stream.substeps], np.int64)
    rest = 0  # a one-tile nest's load cycles streamed during its compute
    if first and len(dma) and dma[0] > 0:
        moved = {o: np.minimum(np.array(b, np.float64), plan.per_event[o])
                 for o, b in (("a", stream.start_a), ("b", stream.start_b)) if plan.per_event[o]}
        need = transfers(arch, moved, np.zeros(5), 5)[0] + (lat if moved else 0)
        cut = int(fill_exposed(c, np.array([dma[0]]), need[None, :], steps)[0])
        if plan.total > 1:
            dma[1] += dma[0] - cut
        else:
            rest = int(dma[0]) - cut
        dma[0] = cut
    if last and wb[-1] > 0:
        write = plan.per_event["c_write"]
        tile_w = min(stream.tile_write, write)
        late_b = np.minimum(np.array([tile_w, *stream.late_write]), tile_w)
        late = transfers(arch, {}, late_b, 6)[1] + lat
        w = int(wb[-1])
        cut = int(drain_exposed(c, np.array([w]), late[None, :], late_b[None, :], steps)[0])
        if plan.total > 1:
            wb[-2] += w - cut
        elif shared:
            cut = max(cut, rest + w - plan.compute)
        wb[-1] = cut


def estimate(arch: Architecture, compute_cycles: np.ndarray, dram: dict[tuple[str, str], np.ndarray],
             first_loads: dict[str, np.ndarray], last_write_bytes: np.ndarray, tiles: np.ndarray,
             transfers_: np.ndarray, stream: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The mapper's closed-form cycles of each candidate ``(N,)`` for the schedule above.

    Args:
        dram: off-chip bytes per ``(operand, "read" | "write")``, each ``(N,)``.
        first_loads: per operand ``a``, ``b``, the bytes of its first slice ``(N,)``.
        transfers_: DMA-ins and write-backs of all tiles ``(N,)`` (each pays the off-chip latency).
        stream: the register-file level's tile blocks (``TileStream``'s fields as arrays: ``(N, 5)``
            ``substeps``, ``start_a``, ``start_b``, ``late_write``; ``(N,)`` ``tile_write``; bytes).

    Per channel (``timing.channel``: a link from or to the off-chip memory, else its own channel),
    ``D`` is the busiest channel's transfer cycles plus the latency once per transfer, ``D0`` the
    first tile's loads, ``Wl`` the last write-back, ``C`` all computes and ``c`` one tile's.
    ``S = 2``: ``max(D0 + C + Wl, D)`` (the first loads, every compute and the last write-back in
    a row; or the busiest channel throughout; with ``stream``, ``D0`` and ``Wl`` are what the
    tile's steps leave exposed, as the schedule takes them); ``S = 1``: ``D + C`` on one channel
    shared by reads and write-backs (a tile's load, compute and write-back never overlap another's),
    ``max(D0 + C + Wl, D + c)`` otherwise. Exact when no transfer takes time (``C``); on a shared
    channel both are lower bounds of the schedule (``S = 1``: equal to it where the loads and
    write-backs serialize).
    """
    per_cycle = {}
    busy: dict[str, np.ndarray] = {}
    first: dict[str, np.ndarray] = {}
    for (op, direction), moved in dram.items():
        name, bw = channel(arch, op, direction == "read")
        per_cycle[name] = bw / arch.clock_hz
        busy[name] = busy.get(name, 0) + moved
        if direction == "read" and op in first_loads:
            first[name] = first.get(name, 0) + first_loads[op]
    limited = {n for n, bw in per_cycle.items() if bw > 0}
    if not limited:
        return compute_cycles.astype(np.int64)
    lat = arch.off_chip.latency_cycles  # every transfer holds its channel that much longer (timing.transfers)
    zero = np.zeros(len(compute_cycles))
    d_all = np.max([np.ceil(zero + busy[n] / per_cycle[n]) for n in limited], axis=0) + lat * transfers_
    d0 = np.max([np.ceil(zero + first.get(n, 0) / per_cycle[n]) for n in limited], axis=0)
    d0 = d0 + np.where(sum(first_loads.values()) > 0, lat, 0)
    _, c_bw = channel(arch, "c", False)
    wl = np.ceil(last_write_bytes / (c_bw / arch.clock_hz)) + lat if c_bw > 0 else np.zeros_like(d0)
    wl = np.where(last_write_bytes > 0, wl, 0)
    per_tile = np.ceil(compute_cycles / np.maximum(tiles, 1))
    reads = {op for (op, direction) in dram if direction == "read"}
    if slots_of(arch) == 2:  # the next slices stream in while this one computes
        if stream is not None:
            d0, wl = _exposed(arch, stream, first_loads, last_write_bytes, per_tile, d0, wl, lat)
        out = np.maximum(d0 + compute_cycles + wl, d_all)
    elif shares_channel(arch, reads) and len(per_cycle) == 1:
        out = d_all + compute_cycles
    else:
        out = np.maximum(d0 + compute_cycles + wl, d_all + per_tile)
    return out.astype(np.int64)


def _exposed(arch: Architecture, stream: dict[str, np.ndarray], first_loads: dict[str, np.ndarray],
             last_write_bytes: np.ndarray, per_tile: np.ndarray, d0: np.ndarray, wl: np.ndarray,
             lat: int) -> tuple[np.ndarray, np.ndarray]:
    """``estimate``'s first loads and last write-back as ``_stream_ends`` leaves them exposed."""
    steps = stream["substeps"]
    start: dict[str, np.ndarray] = {}
    per_cycle: dict[str, float] = {}
    for op in ("a", "b"):
        if op in first_loads:
            name, bw = channel(arch, op, True)
            per_cycle[name] = bw / arch.clock_hz
            start[name] = start.get(name, 0) + np.minimum(stream[f"start_{op}"], first_loads[op][:, None])
    need = np.max([np.ceil(b / per_cycle[n]) if per_cycle[n] > 0 else np.zeros(b.shape)
                   for n, b in start.items()], axis=0) + lat
    d0 = np.where(d0 > 0, fill_exposed(per_tile, d0, need, steps), d0)
    _, c_bw = channel(arch, "c", False)
    if c_bw <= 0:
        return d0, wl
    tile_w = np.minimum(stream["tile_write"], last_write_bytes)
    late_b = np.minimum(np.concatenate([tile_w[:, None], stream["late_write"]], axis=1), tile_w[:, None])
    late = np.ceil(late_b / (c_bw / arch.clock_hz)) + lat
    # one tile: W = W_tile, and the channel's total (``D`` in ``estimate``) bounds the rest
    return d0, np.where(wl > 0, drain_exposed(per_tile, wl, late, late_b, steps), wl)
