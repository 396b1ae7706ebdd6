"""The mapper: search buffer tiles and DRAM loop orders for one layer's pass, by an objective.

Candidates are every tile (each of ``B, K, C, OY, OX`` a divisor of its dimension; ``FY, FX``
whole) whose footprints fit the buffers staging them (a buffer shared by operands holds the sum;
a double-buffered one offers half), times every order of the five DRAM loops. Tiles that can grow
in one dimension and still fit are dominated (every DRAM and buffer-fill count is non-increasing
in a tile size; see docs/mapping.md) and are dropped when more than ``KEEP_ALL_TILES`` fit. All
candidates are costed at once (``hwsim.npu.loopnest.nest_costs``: arrays over tiles × orders),
bytes per element from the operands' densities and the formats declared at each level
(sparse-aware: a compressed operand's tile takes fewer buffer bytes, so larger tiles fit), and
the best by the objective wins; ties go to fewer DRAM bytes, then to the first candidate in the
canonical order (tiles ascending, orders in ``itertools.permutations`` order): deterministic.

Objectives: ``energy`` (pJ, default), ``latency`` (cycles: compute, or the DRAM transfer time
when that is longer), ``edp`` (their product), ``dram`` (DRAM bytes). Results are cached per
(layer shape, pass, architecture, densities, objective, dataflow) for the process.

Notation of a mapping (the ``mapping`` column of a report row):
``B1 K64 C64 OY8 OX56 | OY7`` — the buffer tile, then the DRAM loops that turn, outermost first
with their trips (``-`` when the whole layer is one tile; ``OY7~``: the input's slice slides along
that loop, loading only the new rows at each turn). Sliding is on wherever the loop order allows
it (it never moves more, takes more room or ends later), so the search costs only that point; a
given mapping may turn it off (``NestMapping.slide``).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from archs import Architecture

from ..errors import MappingError
from ..pricing import prices
from .loopnest import (
    DIMS,
    ROLES,
    ConvShape,
    divisors,
    footprints,
    nest_costs,
    place_slices,
    residency,
    stored,
    tie_rank,
)
from .mapping import buffers
from .nest_timing import TileStream, estimate
from .pe_tiles import PeMapping, best_pe, given_pe, pe_bound, register_files, tiled, unrollings
from .timing import buffer_bytes_per_cycle
from .traffic import PER_ELEMENT

OBJECTIVES = ("energy", "latency", "edp", "dram")
KEEP_ALL_TILES = 200  # up to this many fitting tiles are all evaluated; above, only undominated ones
RUNNERS_UP = 7  # next-best mappings a result keeps (the latency objective re-times them)
ORDERS = np.array(list(itertools.permutations(range(5))), np.int64)  # (120, 5), canonical order


@dataclass(frozen=True)
class NestMapping:
    """A buffer tile (elements per dimension, ``DIMS`` order) and the DRAM loop order (outermost
    first, all five dimensions)."""

    tile: tuple[int, int, int, int, int]
    order: tuple[str, ...] = DIMS
    pe: PeMapping | None = None  # the register-file level (``compute.register_file_tiling``)
    slide: bool = True  # an input slice may keep the overlap of windows along an OY/OX loop
    # (``loopnest.residency``); False re-fetches every window whole (ZigZag's LOMA's halos)

    def trips(self, shape: ConvShape) -> tuple[int, ...]:
        return tuple(d // t for d, t in zip(shape.dims, self.tile, strict=True))

    def notation(self, shape: ConvShape, slides: str | None = None,
                 rf_levels: dict[str, int] | None = None) -> str:
        """``B1 K64 C64 OY8 OX56 | OY7~``: tile, then the turning DRAM loops outermost first;
        ``~`` marks the loop ``slides`` (a dimension) the input's buffer slice slides along;
        ``rf_levels``: the register-file residency level of each tensor (``PeMapping.notation``)."""
        trips = dict(zip(DIMS, self.trips(shape), strict=True))
        tile = " ".join(f"{d}{t}" for d, t in zip(DIMS, self.tile, strict=True))
        loops = " ".join(f"{d}{trips[d]}{'~' if d == slides else ''}" for d in self.order if trips[d] > 1)
        if self.pe is None:
            return f"{tile} | {loops or '-'}"
        (rd, rf), (cd, cf) = self.pe.spatial
        per_pe = tuple(t // (rf if d == rd else cf if d == cd else 1) for d, t in zip(DIMS, self.tile,
                                                                                     strict=True))
        return f"{tile} | {loops or '-'} || {self.pe.notation(per_pe, rf_levels)}"


@dataclass
class NestResult:
    """The chosen mapping of one pass and what it costs (whole layer, all groups)."""

    mapping: NestMapping
    notation: str
    objective: str
    energy_pj: float
    cycles: int
    dram_bytes: float
    bytes: dict[tuple[str, str, str, str], float] = field(default_factory=dict)  # (level, op, kind, dir)
    energy: dict[str, float] = field(default_factory=dict)  # component -> pJ
    occupancy: dict[str, float] = field(default_factory=dict)  # buffer -> bytes its slices take
    levels: dict[str, int] = field(default_factory=dict)  # operand -> residency level (loopnest.residency)
    candidates: int = 0
    compute_cycles: int = 0  # the array's (or the buffers' feed) cycles of all tiles, no transfer
    runners_up: tuple[NestMapping, ...] = ()  # the next best mappings by the objective (search only)
    tile_array: tuple[int, float] | None = None  # register-file level, per tile: (PE cycles, bytes fed)
    tile_stream: TileStream | None = None  # register-file level: the tile's steps (nest_timing)
    rf_levels: dict[str, int] = field(default_factory=dict)  # tensor -> register-file residency level
    # (``hwsim.npu.pe_tiles``: its slice spans the buffer-level loops from that position in; 5: one tile)


def per_element(arch: Architecture, level: str, op: str, density: float,
                elem_bytes: float) -> tuple[float, float]:
    """(data, metadata) bytes per element of ``op`` at ``level`` in the format declared there
    (``hwsim.npu.traffic.moved_bytes``'s rule per element; csr/csc pointers: one per array-row
    vector of elements, averaged)."""
    fmt = next((f for f in arch.sparse.formats if f.level == level and f.operand == op), None)
    if fmt is None or fmt.format == "dense":
        return elem_bytes, 0.0
    if fmt.format in PER_ELEMENT:
        return density * elem_bytes, fmt.metadata_bits / 8
    meta = density * fmt.metadata_bits / 8
    if fmt.format in ("csr", "csc"):
        meta += fmt.pointer_bits / 8 / max(arch.compute.rows if arch.compute is not None else 1, 1)
    return density * elem_bytes, meta


def _energy(arch: Architecture, component: str, action: str) -> float:
    """One entry of the architecture's energy table (0 when it has none), looked up once per arch."""
    return prices(arch).get((component, action), 0.0)


def _candidates(shape: ConvShape, pass_: str, arch: Architecture, elem: dict[str, float]) -> np.ndarray:
    """Fitting tiles ``(T, 5)``; undominated ones only when more than KEEP_ALL_TILES fit.

    The tiles are the grid of every dimension's divisors (in ``itertools.product``'s order): a
    tile grown in dimension ``d`` is its neighbour one step along that axis of the grid, so
    whether it still fits is read off the grid, not costed again."""
    divs = [divisors(d) for d in shape.dims]
    caps = {name: cap for name, cap in buffers(arch).values() if name}
    grid = np.ones(tuple(len(dv) for dv in divs), bool)  # (divisors of B, K, C, OY, OX): the tile fits
    for name, used in occupancy(shape, pass_, arch, elem, np.ix_(*divs)).items():
        if caps[name] > 0:
            grid &= used <= caps[name]
    if not grid.any():
        raise MappingError(_no_fit(shape, pass_, arch, elem))
    keep = grid
    if grid.sum() > KEEP_ALL_TILES and not tiled(arch):  # a register-file level may prefer a smaller
        # tile (its per-PE extent divides into a register-file tile that fits): no prune there
        grows = np.zeros_like(grid)  # the next divisor along some dimension still fits
        for d in range(5):
            inner = [slice(None)] * 5
            outer = list(inner)
            inner[d], outer[d] = slice(None, -1), slice(1, None)
            grows[tuple(inner)] |= grid[tuple(outer)]
        keep = grid & ~grows
    at = np.nonzero(keep)  # in itertools.product's order of the divisors
    return np.stack([dv[i] for dv, i in zip(divs, at, strict=True)], axis=1)


def occupancy(shape: ConvShape, pass_: str, arch: Architecture, elem: dict[str, float],
              tiles: np.ndarray | tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Bytes each buffer's tiles take, per buffer name -> ``(T,)`` (or the broadcast shape of five
    per-dimension arrays, ``loopnest.footprints``); ``elem`` is bytes per element of each operand
    in that buffer's format."""
    fp = footprints(shape, tiles)
    out: dict[str, np.ndarray] = {}
    for op, (name, _cap) in buffers(arch).items():
        if name:
            out[name] = out.get(name, 0) + fp[ROLES[pass_][op]] * elem[f"{name}:{op}"]
    return out


def _fits(shape: ConvShape, pass_: str, arch: Architecture, elem: dict[str, float],
          tiles: np.ndarray) -> np.ndarray:
    caps = {name: cap for name, cap in buffers(arch).values() if name}
    occ = occupancy(shape, pass_, arch, elem, tiles)
    ok = np.ones(len(tiles), bool)
    for name, used in occ.items():
        if caps[name] > 0:
            ok &= used <= caps[name]
    return ok


def _no_fit(shape: ConvShape, pass_: str, arch: Architecture, elem: dict[str, float]) -> str:
    ones = np.ones((1, 5), np.int64)
    occ = occupancy(shape, pass_, arch, elem, ones)
    caps = {name: cap for name, cap in buffers(arch).values() if name}
    worst = max(occ, key=lambda n: float(occ[n][0]) / max(caps[n], 1e-9))
    return (f"{pass_}: even a one-element tile (whole {shape.fy}×{shape.fx} filter window) needs "
            f"{float(occ[worst][0]):g} B of {worst}, which offers {caps[worst]:g} B; use a larger {worst}")


def _elem_bytes(arch: Architecture, pass_: str, eb: dict[str, float],
                dens: dict[str, float]) -> dict[str, float]:
    """Bytes per element (data + metadata) of each operand at each level that stages it."""
    out = {}
    levels = [m.name for m in arch.memories if not m.off_chip] + [arch.off_chip.name]
    for op in ("a", "b", "c"):
        for lv in levels:
            d, m = per_element(arch, lv, op, dens[op], eb[op])
            out[f"{lv}:{op}"] = d + m
            out[f"{lv}:{op}:data"], out[f"{lv}:{op}:meta"] = d, m
    return out


def costs(shape: ConvShape, pass_: str, arch: Architecture, tiles: np.ndarray, orders: np.ndarray,
          eb: dict[str, float], dens: dict[str, float], dataflow: str,
          pe: dict[str, np.ndarray] | None = None, slide: bool = True,
          tile_index: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Bytes, energy (pJ) and cycles of every candidate ``(N,)`` (tile ``tiles[i]`` under order
    ``orders[i]``, or ``tiles[tile_index[i]]`` when ``tiles`` lists distinct tiles; ``pe``: their
    register-file level, ``hwsim.npu.pe_tiles.pe_costs``'s counts, which replace the systolic
    array's; ``slide``: whether input slices may slide, ``loopnest.residency``): keys ``energy_pj``,
    ``cycles``, ``dram_bytes`` and ``bytes:<level>:<op>:<data|metadata>:<read|write>``,
    ``energy:<component>``."""
    elem = _elem_bytes(arch, pass_, eb, dens)
    slices = residency(shape, tiles, orders, tile_index)
    levels = _levels(arch, {op: slices[t] for op, t in ROLES[pass_].items()}, elem, (len(orders),), slide)
    c = nest_costs(shape, pass_, tiles, orders, arch.compute.rows, arch.compute.cols, dataflow, levels,
                   slices, slide, tile_index)
    off = arch.off_chip.name
    bufs = buffers(arch)
    if pe is not None:
        for key in ("array_a", "array_b", "array_c", "array_read_c", "compute_cycles"):
            c[key] = pe[key]
        # an operand no buffer stages moves between DRAM and the register files directly: DRAM
        # serves every register-file fill (multicast as the buffer would) and takes every drain
        for op in ("a", "b"):
            if not bufs[op][0]:
                c[f"dram_read_{op}"] = pe[f"array_{op}"]
        if not bufs["c"][0]:
            c["dram_write_c"], c["dram_read_c"] = pe["array_c"], pe["array_read_c"]
    moved: dict[tuple[str, str, str, str], np.ndarray] = {}

    psum = arch.compute.precision.psum_bits / 8  # partial sums move at the accumulators' width

    def add(level: str, op: str, elems: np.ndarray, direction: str, dense: bool = False,
            partial: bool = False) -> None:
        data = psum if partial else eb[op] if dense else elem[f"{level}:{op}:data"]
        meta = 0.0 if dense or partial else elem[f"{level}:{op}:meta"]
        for kind, per in (("data", data), ("metadata", meta)):
            if per:
                key = (level, op, kind, direction)
                moved[key] = moved.get(key, 0) + elems * per
    final = shape.size(ROLES[pass_]["c"])
    for op in ("a", "b"):
        add(off, op, c[f"dram_read_{op}"], "read")
        if bufs[op][0]:
            add(bufs[op][0], op, c[f"dram_read_{op}"], "write")
            add(bufs[op][0], op, c[f"array_{op}"], "read")
    spill = c["dram_write_c"] - final  # partial sums written back before their last visit
    add(off, "c", np.full(spill.shape, final, np.float64), "write")
    add(off, "c", spill, "write", partial=True)
    add(off, "c", c["dram_read_c"], "read", partial=True)
    if bufs["c"][0]:  # spills leave the output buffer and come back at psum width (its own
        # accumulation traffic is counted at the output's width, as Timeloop counts words)
        cb = bufs["c"][0]
        add(cb, "c", c["array_c"], "write", dense=True)
        add(cb, "c", c["array_read_c"], "read", dense=True)
        add(cb, "c", np.full(spill.shape, final, np.float64), "read", dense=True)
        add(cb, "c", spill, "read", partial=True)
        add(cb, "c", c["dram_read_c"], "write", partial=True)
    shape2 = c["dram_write_c"].shape
    macs = float(shape.macs)
    rfs = register_files(arch) if pe is not None else {}
    for op, (rf, _cap) in rfs.items():  # fills from the buffer and drains to it, plus every MAC's access
        if op == "c":
            add(rf, "c", macs + pe["rf_fill_c"], "read", partial=True)  # a fresh visit's first update
            # reads nothing: reads = updates − fresh visits + drains = updates + partial sums filled
            add(rf, "c", macs + pe["rf_fill_c"], "write", partial=True)
        else:
            add(rf, op, pe[f"rf_fill_{op}"], "write", dense=True)
            add(rf, op, np.full(shape2, macs), "read", dense=True)
    energy: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(shape2))
    for (level, _op, kind, direction), b in moved.items():
        action = direction if kind == "data" else f"metadata_{direction}"
        energy[level] = energy[level] + b * _energy(arch, level, action)
    for m in arch.memories:  # register files: per MAC, as hwsim.npu.traffic charges them
        if m.kind == "register_file" and m.name not in {rf for rf, _ in rfs.values()}:
            per = sum(eb[op] for op in ("a", "b") if op in m.operands) * _energy(arch, m.name, "read")
            if "c" in m.operands:
                per += eb["c"] * (_energy(arch, m.name, "read") + _energy(arch, m.name, "write"))
            if per:
                energy[m.name] = energy[m.name] + macs * per
    for ln in arch.links:
        for op in ln.operands:
            end, direction = ((ln.source, "read") if ln.destination != off else (ln.destination, "write"))
            for kind in ("data", "metadata"):
                if (end, op, kind, direction) in moved:
                    energy[ln.name] = energy[ln.name] + moved[(end, op, kind, direction)] * _energy(
                        arch, ln.name, "transfer")
    energy["compute"] = energy["compute"] + macs * _energy(arch, "compute", "mac")
    out: dict[str, np.ndarray] = {f"bytes:{':'.join(k)}": v for k, v in moved.items()}
    out.update({f"energy:{k}": v for k, v in energy.items()})
    out["energy_pj"] = sum(energy.values())
    dram = sum(v for (lv, _o, _k, _d), v in moved.items() if lv == off)
    out["dram_bytes"] = np.broadcast_to(dram, shape2)
    compute = c["compute_cycles"]
    buf_bw = buffer_bytes_per_cycle(arch)
    if buf_bw:  # a tile computes no faster than its staging buffers feed the array
        n_t = np.maximum(c["tiles"], 1)
        fed = np.ceil((c["array_a"] * eb["a"] + c["array_b"] * eb["b"]) / n_t / buf_bw)
        compute = np.maximum(compute // n_t, fed).astype(np.int64) * n_t
    first = {op: c[f"slice_{op}"] * elem[f"{off}:{op}"] for op in ("a", "b")}
    last = c["slice_c"] * elem[f"{off}:c"]
    dram_by_op: dict[tuple[str, str], np.ndarray] = {}
    for (lv, op, _kind, direction), b in moved.items():
        if lv == off:
            dram_by_op[(op, direction)] = dram_by_op.get((op, direction), 0) + b
    # a tile loads every operand whose slice turns there: the operand loaded most often marks them
    # all (a sliding slice's loads are its turns, each of the new rows only)
    dma = np.maximum(*(np.where(c[f"dram_read_{op}"] > 0, c[f"loads_{op}"], 0) for op in ("a", "b")))
    writes = np.where(c["dram_write_c"] > 0, c["loads_c"], 0)
    out["compute_cycles"] = compute
    stream = None
    if pe is not None and "substeps" in pe:  # the register-file level: the tile's own steps
        each = tiles if tile_index is None else tiles[tile_index]
        stream = {"substeps": pe["substeps"], "tile_write": footprints(shape, each)[ROLES[pass_]["c"]]
                  * elem[f"{off}:c"], "late_write": pe["step_c"] * elem[f"{off}:c"]}
        for op in ("a", "b"):
            stream[f"start_{op}"] = np.minimum(pe[f"step_{op}"] * elem[f"{off}:{op}"], first[op][:, None])
        out.update({f"stream:{k}": v for k, v in stream.items()})
    out["cycles"] = estimate(arch, compute, dram_by_op, first, last, c["tiles"], np.maximum(dma, 0) + writes,
                             stream)
    bufs_used: dict[str, np.ndarray] = {}
    for op, (name, _cap) in bufs.items():
        if name:
            bufs_used[name] = bufs_used.get(name, 0) + c[f"slice_{op}"] * elem[f"{name}:{op}"]
    for name, used in bufs_used.items():
        out[f"occupancy:{name}"] = used
    for op in ("a", "b", "c"):
        out[f"level_{op}"] = levels[op]
    for op in ("a", "b"):
        out[f"slide_{op}"] = c[f"slide_{op}"]
    for op, (name, _cap) in rfs.items():  # the register files: each tensor's slice at its level
        out[f"rf_level:{ROLES[pass_][op]}"] = pe[f"rf_level_{op}"]
        out[f"occupancy:{name}"] = pe[f"rf_bytes:{name}"]
    return out


def _levels(arch: Architecture, res: dict[str, tuple[np.ndarray, ...]], elem: dict[str, float],
            tp: tuple[int, int], slide: bool = True) -> dict[str, np.ndarray]:
    """Residency level of each operand ``(N,)``: the smallest slice that moves as few DRAM bytes
    as the largest slice its buffer still holds.

    An operand's DRAM traffic at level ``r`` is its slice's footprint times its loads; a larger
    slice never moves more, but one that saves nothing over a smaller one only takes room (and is
    loaded earlier). So each operand takes, among the levels that fit, the innermost (smallest slice)
    of least traffic; operands sharing a buffer start at one tile each and are placed in the order
    c, b, a, each in the room the others leave.
    """
    levels = {op: np.full(tp, 5, np.int64) for op in ("a", "b", "c")}
    bufs = buffers(arch)
    for name in sorted({n for n, _ in bufs.values() if n}):
        ops = [op for op in ("c", "b", "a") if bufs[op][0] == name]
        cap = bufs[ops[0]][1]
        if cap <= 0:  # unbounded: every operand keeps its whole tensor
            for op in ops:
                levels[op][:] = 0
            continue
        size = {op: res[op][0] * elem[f"{name}:{op}"] for op in ops}  # (6, N) bytes per level
        # elements per group at each level (a read slice slides)
        fills = {op: res[op][2] if slide and op != "c" else res[op][0] * res[op][1] for op in ops}
        levels.update(place_slices(size, fills, cap))
    return levels


def objective_of(cost: dict[str, np.ndarray], objective: str) -> np.ndarray:
    if objective == "energy":
        return cost["energy_pj"]
    if objective == "latency":
        return cost["cycles"].astype(np.float64)
    if objective == "edp":
        return cost["energy_pj"] * cost["cycles"]
    if objective == "dram":
        return cost["dram_bytes"]
    raise MappingError(f"unknown mapping objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")


def search(shape: ConvShape, pass_: str, arch: Architecture, eb: dict[str, float],
           densities: dict[str, float] | None = None, objective: str = "energy",
           dataflow: str | None = None) -> NestResult:
    """The best mapping of one pass by ``objective`` (cached per arguments for the process).

    Args:
        eb: bytes per element of the GEMM operands ``a``, ``b``, ``c`` of the pass.
        densities: non-zero fraction of each operand (default 1); formats shrink its bytes.
    """
    shape = stored(shape, arch)
    dens = {"a": 1.0, "b": 1.0, "c": 1.0, **(densities or {})}
    key_d = tuple(round(float(dens[o]), 6) for o in ("a", "b", "c"))
    key_e = tuple(float(eb[o]) for o in ("a", "b", "c"))
    df = dataflow or arch.compute.dataflow
    if objective not in OBJECTIVES:
        raise MappingError(f"unknown mapping objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    key = (shape, pass_, id(arch), key_e, key_d, objective, df)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not arch:  # the entry keeps its architecture: an id is never reused
        if len(_CACHE) >= CACHE_ENTRIES:  # a long-lived process: start over rather than grow
            _CACHE.clear()
        hit = _CACHE[key] = (arch, _search(shape, pass_, arch, key_e, key_d, objective, df))
    return hit[1]


_CACHE: dict[tuple, tuple[Architecture, NestResult]] = {}  # search results by arguments (arch by id)
CACHE_ENTRIES = 20000


def _search(shape: ConvShape, pass_: str, arch: Architecture, key_e: tuple, key_d: tuple, objective: str,
            dataflow: str) -> NestResult:
    eb = dict(zip("abc", key_e, strict=True))
    dens = dict(zip("abc", key_d, strict=True))
    elem = _elem_bytes(arch, pass_, eb, dens)
    tiles = _candidates(shape, pass_, arch, elem)
    ti, pi = _pairs(shape, tiles)
    # a register-file level is searched below the best buffer tiles, ranked first without it
    pe = pe_bound(shape, pass_, arch, tiles[ti], dataflow) if tiled(arch) else None
    cost = costs(shape, pass_, arch, tiles, ORDERS[pi], eb, dens, dataflow, pe, tile_index=ti)
    obj = objective_of(cost, objective)
    # ties: fewer bytes, then the first; a register-file level ranks every buffer candidate
    ranked = _ranked(obj, cost["dram_bytes"], None if tiled(arch) else RUNNERS_UP + 1)
    if tiled(arch):  # the register-file level below the best buffer tiles, then ranked again
        first = np.zeros(len(tiles), bool)  # each tile under its best DRAM order
        pick = ranked[~_seen(ti[ranked], len(tiles), first)]
        full = _fills_array(shape, pass_, arch, dataflow, tiles[ti[pick]])
        if full.any():  # tiles that can use every row and column of the array, where some can
            pick = pick[full]
        volume = np.prod(tiles[ti[pick]].astype(np.float64), axis=1)  # ties: larger tiles (more to unroll)
        pick = pick[np.lexsort((np.arange(len(pick)), -volume, tie_rank(obj[pick])))][:PE_FINALISTS]
        return _search_pe(shape, pass_, arch, eb, dens, objective, dataflow, tiles[ti[pick]],
                          ORDERS[pi[pick]], len(ti))
    best = int(ranked[0])

    def mapping_at(j: int) -> NestMapping:
        return NestMapping(tuple(int(x) for x in tiles[ti[j]]), tuple(DIMS[i] for i in ORDERS[pi[j]]))

    res = _result(shape, mapping_at(best), cost, best, objective, len(ti))
    return replace(res, runners_up=tuple(mapping_at(int(j)) for j in ranked[1:RUNNERS_UP + 1]))


LEADERS_PREFIX = 64  # the smallest objective values among which the leading candidates are sought first


def _ranked(obj: np.ndarray, dram_bytes: np.ndarray, k: int | None = None) -> np.ndarray:
    """Candidate indices by ``tie_rank(obj)``, then fewer ``dram_bytes``, then index; the first ``k``
    only when ``k`` is given.

    Those are found among the ``LEADERS_PREFIX`` smallest values when the rank group of the
    ``k``-th one ends among them (a gap of more than ``TIE_REL`` follows it there: every value of
    its group and of the groups before it is there, and their order is the full sort's);
    otherwise every candidate is sorted."""
    n = len(obj)
    if k is not None and n > 2 * LEADERS_PREFIX:
        head = np.argpartition(obj, LEADERS_PREFIX)[:LEADERS_PREFIX]  # the smallest values, any order
        rank = tie_rank(obj[head])
        if np.sort(rank)[k - 1] < rank.max():  # the k-th one's group ends inside the head
            return head[np.lexsort((head, dram_bytes[head], rank))][:k]
    ranked = np.lexsort((np.arange(n), dram_bytes, tie_rank(obj)))
    return ranked if k is None else ranked[:k]


def _fills_array(shape: ConvShape, pass_: str, arch: Architecture, dataflow: str,
                 tiles: np.ndarray) -> np.ndarray:
    """Whether each tile's extents of some unrolling's dimensions (``pe_tiles.unrollings``) are
    multiples of the array's sides."""
    full = np.zeros(len(tiles), bool)
    for rd, cd in unrollings(arch, pass_, dataflow):
        full |= ((tiles[:, DIMS.index(rd)] % arch.compute.rows == 0)
                 & (tiles[:, DIMS.index(cd)] % arch.compute.cols == 0))
    return full


def _seen(idx: np.ndarray, n: int, first: np.ndarray) -> np.ndarray:
    """Whether each entry of ``idx`` repeats an earlier one (``first``: scratch of ``n`` False)."""
    _, at = np.unique(idx, return_index=True)
    dup = np.ones(len(idx), bool)
    dup[at] = False
    return dup


PE_FINALISTS = 64  # buffer tiles (best by the objective with the array's per-MAC charges) whose
# register-file level is searched on a machine with register_file_tiling


def _pe_level(shape: ConvShape, pass_: str, arch: Architecture, eb: dict[str, float], dataflow: str,
              tiles: np.ndarray, orders: np.ndarray,
              given: list[PeMapping | None]) -> tuple[list[PeMapping], dict[str, np.ndarray]]:
    """The register-file mapping of each buffer candidate (the given one, or the best) and their
    counts stacked ``(N,)``."""
    bufs = {op: name or arch.off_chip.name for op, (name, _) in buffers(arch).items()}  # a bypass
    price = prices(arch)  # reads DRAM
    eb = {**eb, "c": arch.compute.precision.psum_bits / 8}  # a PE keeps and moves partial sums
    maps, rows = [], []
    for tile, order, mp in zip(tiles, orders, given, strict=True):
        t, o = tuple(int(x) for x in tile), tuple(DIMS[i] for i in order)
        if mp is None:
            mp, counts = best_pe(shape, pass_, arch, t, o, eb, dataflow, bufs, price)
        else:
            counts = given_pe(shape, pass_, arch, t, o, eb, dataflow, mp)
        maps.append(mp)
        rows.append(counts)
    return maps, {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _search_pe(shape: ConvShape, pass_: str, arch: Architecture, eb: dict[str, float], dens: dict[str, float],
               objective: str, dataflow: str, tiles: np.ndarray, orders: np.ndarray, n: int) -> NestResult:
    maps, pe = _pe_level(shape, pass_, arch, eb, dataflow, tiles, orders, [None] * len(tiles))
    cost = costs(shape, pass_, arch, tiles, orders, eb, dens, dataflow, pe)
    obj = objective_of(cost, objective)
    partial = pe["array_c"] + pe["array_read_c"]  # ties: fewer DRAM bytes, fewer partial sums through
    ranked = np.lexsort((np.arange(len(tiles)), partial, cost["dram_bytes"], tie_rank(obj)))  # the buffer

    def mapping_at(j: int) -> NestMapping:
        return NestMapping(tuple(int(x) for x in tiles[j]), tuple(DIMS[i] for i in orders[j]), maps[j])

    best = int(ranked[0])
    res = _result(shape, mapping_at(best), cost, best, objective, n, pe, eb)
    return replace(res, runners_up=tuple(mapping_at(int(j)) for j in ranked[1:RUNNERS_UP + 1]))


def _pairs(shape: ConvShape, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tile, order) index pairs worth costing, tile-major: orders that differ only in where the
    loops of one trip sit are the same nest, so only the order that puts those loops innermost in
    ``DIMS`` order is kept (``|turning loops|!`` orders per tile instead of 120; which ones depends
    only on the set of turning loops: ``_KEPT_ORDERS``)."""
    turning = ((np.array(shape.dims)[None, :] // tiles) > 1) @ (1 << np.arange(5))  # (T,) 5-bit sets
    ti, pi = np.nonzero(_KEPT_ORDERS[turning])
    return ti, pi


def _kept_orders() -> np.ndarray:
    """``(32, 120)`` bool: the orders :func:`_pairs` keeps for each set of turning loops (bit d:
    dimension d's loop turns)."""
    t_ord = ((np.arange(32)[:, None, None] >> ORDERS[None, :, :]) & 1) > 0  # (32, P, 5) outermost first
    outer, inner = t_ord[:, :, :-1], t_ord[:, :, 1:]  # each pair of neighbouring loops
    rising = (ORDERS[None, :, :-1] < ORDERS[None, :, 1:]) | outer | inner  # still loops in DIMS order
    keep = (outer | ~inner) & rising  # and no turning loop inside a still one
    return keep.all(axis=2)


_KEPT_ORDERS = _kept_orders()


def evaluate(shape: ConvShape, pass_: str, arch: Architecture, mapping: NestMapping, eb: dict[str, float],
             densities: dict[str, float] | None = None, dataflow: str | None = None) -> NestResult:
    """The cost of a given mapping (a user's, or SCALE-Sim's); MappingError when it does not fit
    or its tile does not divide the layer."""
    shape = stored(shape, arch)
    dens = {"a": 1.0, "b": 1.0, "c": 1.0, **(densities or {})}
    for d, size, t in zip(DIMS, shape.dims, mapping.tile, strict=True):
        if t < 1 or size % t:
            raise MappingError(f"tile {d}{t} does not divide the layer's {d} = {size}; use a divisor "
                               f"({', '.join(str(x) for x in divisors(size)[:8])}, ...)")
    if sorted(mapping.order) != sorted(DIMS):
        raise MappingError(f"order {list(mapping.order)} must name each of {', '.join(DIMS)} once")
    elem = _elem_bytes(arch, pass_, eb, dens)
    tiles = np.array([mapping.tile], np.int64)
    if not _fits(shape, pass_, arch, elem, tiles)[0]:
        occ = {n: float(v[0]) for n, v in occupancy(shape, pass_, arch, elem, tiles).items()}
        raise MappingError(f"tile {mapping.notation(shape).split(' |')[0]} needs {occ} bytes; over a buffer "
                           f"({ {n: c for n, c in buffers(arch).values() if n} })")
    order = np.array([[DIMS.index(d) for d in mapping.order]], np.int64)
    df = dataflow or arch.compute.dataflow
    if not tiled(arch):
        cost = costs(shape, pass_, arch, tiles, order, eb, dens, df, slide=mapping.slide)
        return _result(shape, mapping, cost, 0, "given", 1)
    maps, pe = _pe_level(shape, pass_, arch, eb, df, tiles, order, [mapping.pe])
    cost = costs(shape, pass_, arch, tiles, order, eb, dens, df, pe, mapping.slide)
    return _result(shape, replace(mapping, pe=maps[0]), cost, 0, "given", 1, pe, eb)


def _result(shape: ConvShape, mapping: NestMapping, cost: dict, at: int, objective: str,
            n: int, pe: dict[str, np.ndarray] | None = None,
            eb: dict[str, float] | None = None) -> NestResult:
    get = lambda k: float(cost[k][at])  # noqa: E731
    moved = {tuple(k.split(":")[1:]): get(k) for k in cost if k.startswith("bytes:")}
    energy = {k.split(":", 1)[1]: get(k) for k in cost if k.startswith("energy:")}
    occ = {k.split(":", 1)[1]: get(k) for k in cost if k.startswith("occupancy:")}
    cycles = int(cost["cycles"][at])
    slid = [int(cost[f"slide_{op}"][at]) for op in ("a", "b") if int(cost[f"slide_{op}"][at]) >= 0]
    slides = mapping.order[slid[0]] if slid else None  # the DRAM loop an input slice slides along
    array = stream = None
    if pe is not None:  # per tile: the PEs' cycles and the bytes the buffers feed them
        n_tiles = int(np.prod(mapping.trips(shape))) * shape.groups
        array = (int(pe["compute_cycles"][at]) // n_tiles,
                 float(pe["array_a"][at] * eb["a"] + pe["array_b"][at] * eb["b"]) / n_tiles)
        lv = lambda k: tuple(float(x) for x in cost[f"stream:{k}"][at])  # noqa: E731
        stream = TileStream(tuple(int(x) for x in cost["stream:substeps"][at]), lv("start_a"), lv("start_b"),
                            get("stream:tile_write"), lv("late_write"))
    rf_levels = {k.split(":", 1)[1]: int(cost[k][at]) for k in cost if k.startswith("rf_level:")}
    return NestResult(mapping, mapping.notation(shape, slides, rf_levels), objective, get("energy_pj"),
                      cycles, get("dram_bytes"), moved, energy, occ,
                      {op: int(cost[f"level_{op}"][at]) for op in "abc"}, n,
                      int(cost["compute_cycles"][at]), tile_array=array, tile_stream=stream,
                      rf_levels=rf_levels)
