"""The per-PE register-file level: spatial unrolling over the PE array and the tile each PE keeps.

On a machine with ``compute.register_file_tiling`` the per-PE register files (memories of kind
``register_file``) are a tiling level of their own, below the buffer tile of ``hwsim.npu.mapper``
(Timeloop's model of a PE array):

- **spatial**: one loop dimension is unrolled over the array's rows and one over its columns
  (``SPATIAL``: the dataflow's stationary GEMM dimensions as loop dimensions; the factor is the
  largest divisor of the buffer tile's extent that fits the array side). A tensor that the
  unrolled dimension does not index is *multicast* (one buffer read feeds the whole row or
  column) or, for the written tensor, *spatially reduced* (one buffer write per row or column);
- **the register-file tile**: how many of ``B, K, C, OY, OX`` one PE steps through at a time
  (``FY, FX`` whole; a divisor of the per-PE extent), each operand in the register file that holds
  it (one shared, or one per operand), within its capacity;
- **the buffer-level loops**: the trips from the per-PE extent down to the register-file tile,
  in an order (outermost first), inside the DRAM loops;
- **each tensor's slice**: the register file keeps what the buffer-level loops from the tensor's
  residency level in sweep (``_slices``; 5: one tile), chosen per tensor as the buffer's are
  (``_rf_levels``): one register file can keep 4 × 6 weights beside one input and one output
  where one ``K4 C6`` tile for all three would not fit (AccelForge's per-tensor storage nodes).

A tensor's slice is loaded ``Π trips of the loops at or outside the innermost relevant turning
loop`` among the loops outside it, once per PE, where every DRAM loop counts as relevant (the
register files sit below the spatial fanout, itself below the DRAM loops: a new buffer tile
refills them, as AccelForge counts it) and a buffer-level loop as it indexes the tensor; the
buffer is read ``loads × footprint × PEs / multicast`` times. A read slice whose innermost
relevant turning loop is a buffer-level loop keeps the overlap of consecutive windows (a register
file shifting its input window, as AccelForge counts a tile lowered through that loop): each turn
loads only what the next slice adds (``t·min(s, F)`` new input rows or columns along
``OY``/``OX``; a whole slice along any other loop), the first of each sweep all of it. The
written tensor leaves
each visit to the buffer (reduced over the unrolled dimension it ignores) and comes back on a
revisit (``reads = writes − size``). Every MAC reads ``a`` and ``b`` from the register file and
updates its partial sum there: the register file's ``c`` is written once per MAC and per partial
sum filled from the buffer (a revisit's buffer read is multicast back into every PE of the
reduction, as AccelForge counts it), and read as often (a visit's first update reads nothing, its
drain reads once). A PE computes one MAC per cycle: the array's cycles are the MACs over the PEs in use.

Every candidate of one buffer tile is costed at once (numpy over register-file tiles × orders).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from archs import Architecture

from ..errors import MappingError
from .loopnest import DIMS, RELEVANT, ROLES, ConvShape, divisors, footprints, place_slices, tie_rank

# (pass, dataflow) -> loop dimensions unrolled over the array's rows and columns: the dataflow's
# stationary GEMM dimensions (DESIGN.md: ws keeps B with K on rows and N on columns, ...) as the
# loop dimension that carries most of them (C for the im2col reduction C·FY·FX, OX for the rows
# B·OY·OX, K for output channels)
SPATIAL = {("forward", "ws"): ("C", "K"), ("forward", "os"): ("OX", "K"), ("forward", "is"): ("C", "OX"),
           ("backward_data", "ws"): ("K", "C"), ("backward_data", "os"): ("OX", "C"),
           ("backward_data", "is"): ("K", "OX"),
           ("backward_weight", "ws"): ("OX", "K"), ("backward_weight", "os"): ("C", "K"),
           ("backward_weight", "is"): ("OX", "C")}
ORDERS = np.array(list(itertools.permutations(range(5))), np.int64)  # (120, 5)


@dataclass(frozen=True)
class PeMapping:
    """Spatial unrolling and the register-file tile of one buffer tile."""

    spatial: tuple[tuple[str, int], tuple[str, int]]  # (dimension, factor) on rows, on columns
    tile: tuple[int, int, int, int, int]  # elements per PE of B, K, C, OY, OX
    order: tuple[str, ...]  # buffer-level loops, outermost first

    def notation(self, per_pe: tuple[int, ...], levels: dict[str, int] | None = None) -> str:
        """``rows C32 cols K32 | RF B1 K2 C1 OY1 OX4 | OX7 {W} K4``: the unrolling, the register-file
        tile, then the buffer-level loops that turn, outermost first; ``{W}`` before a loop: that
        tensor's register-file slice spans the loops from there in (its residency level, ``levels``:
        tensor -> position; a tensor not marked keeps one tile)."""
        (rd, rf), (cd, cf) = self.spatial
        trips = {d: p // t for d, p, t in zip(DIMS, per_pe, self.tile, strict=True)}
        tile = " ".join(f"{d}{t}" for d, t in zip(DIMS, self.tile, strict=True))
        turning = [(q, d) for q, d in enumerate(self.order) if trips[d] > 1]
        marks: dict[int, list[str]] = {}
        for tensor, r in sorted((levels or {}).items()):
            at = next((q for q, _ in turning if q >= r), None)  # loops of one trip sweep nothing
            if at is not None:
                marks.setdefault(at, []).append(tensor)
        loops = " ".join(("{" + " ".join(marks[q]) + "} " if q in marks else "") + f"{d}{trips[d]}"
                         for q, d in turning)
        return f"rows {rd}{rf} cols {cd}{cf} | RF {tile} | {loops or '-'}"


def tiled(arch: Architecture) -> bool:
    """Whether this machine's register files are a tiling level (``compute.register_file_tiling``)."""
    return arch.compute is not None and arch.compute.register_file_tiling and bool(register_files(arch))


def register_files(arch: Architecture) -> dict[str, tuple[str, float]]:
    """Per operand, the register file holding it: ``(name, bytes per PE)``; absent: it bypasses."""
    out = {}
    for m in arch.memories:
        if m.kind == "register_file":
            for op in m.operands:
                out.setdefault(op, (m.name, m.capacity_bytes))
    return out


def unrollings(arch: Architecture, pass_: str, dataflow: str) -> list[tuple[str, str]]:
    """The (row, column) loop dimensions the mapper may unroll over the array in this pass, in
    search order: ``compute.unroll_rows`` × ``compute.unroll_cols`` (an empty list: the dataflow's
    dimension of that side, ``SPATIAL``), a dimension never on both sides."""
    rd, cd = SPATIAL[(pass_, dataflow)]
    rows = arch.compute.unroll_rows or (rd,)
    cols = arch.compute.unroll_cols or (cd,)
    pairs = [(r, c) for r in rows for c in cols if r != c]
    if not pairs:
        raise MappingError(f"{pass_}: compute.unroll_rows {list(rows)} and unroll_cols {list(cols)} leave no "
                           "pair of two different loop dimensions to unroll; add one to either list")
    return pairs


def spatial_of(shape: ConvShape, pass_: str, dataflow: str, tile: tuple[int, ...], rows: int,
               cols: int, dims: tuple[str, str] | None = None) -> tuple[tuple[str, int], tuple[str, int]]:
    """``((row dim, factor), (col dim, factor))``: the largest divisor of the tile's extent that
    fits each array side, unrolling ``dims`` (default: the dataflow's, ``SPATIAL``)."""
    out = []
    for d, side in zip(dims or SPATIAL[(pass_, dataflow)], (rows, cols), strict=True):
        dv = divisors(tile[DIMS.index(d)])
        out.append((d, int(dv[dv <= side].max())))
    return out[0], out[1]


def _pairs(per_pe: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tile, order) pairs worth costing: loops of one trip innermost in ``DIMS`` order (as
    ``hwsim.npu.mapper._pairs`` does for the DRAM loops)."""
    turning = (per_pe[None, :] // cand) > 1
    t_ord = turning[:, ORDERS]
    outer, inner = t_ord[:, :, :-1], t_ord[:, :, 1:]
    rising = (ORDERS[None, :, :-1] < ORDERS[None, :, 1:]) | outer | inner
    keep = (outer | ~inner) & rising
    return np.nonzero(keep.all(axis=2))


def _loads(trips: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Loads of a tile under loops ``(P, N)`` (outermost first): the product of the trips at or
    outside the innermost relevant loop that turns; 1 when none turns."""
    p = trips.shape[0]
    active = relevant & (trips > 1)
    last = np.max(np.where(active, np.arange(p)[:, None], -1), axis=0)  # (N,)
    cum = np.cumprod(trips, axis=0)
    picked = cum[np.maximum(last, 0), np.arange(trips.shape[1])]
    return np.where(last >= 0, picked, 1)


def _slices(shape: ConvShape, tensor: str, per_pe: np.ndarray, pe_tiles: np.ndarray, orders: np.ndarray,
            trips: np.ndarray, relevant: np.ndarray,
            slide: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Footprint, loads and elements loaded of ``tensor``'s register-file slice at every residency
    level ``r = 0..5`` of the buffer-level loops, each ``(6, N)`` per PE and group.

    At level ``r`` a register file keeps the slice the buffer-level loops at positions ``>= r``
    sweep (``r = 5``: one register-file tile): it stays while the loops outside it that do not index
    it turn, and it is loaded ``Π trips at or outside the innermost relevant turning loop`` among
    the loops outside it (the DRAM loops all count). A read slice whose innermost relevant turning
    loop is a buffer-level loop keeps the overlap of consecutive windows: each turn loads only what
    the next slice adds (``fp(2t) − fp(t)``: the ``t·min(s, F)`` new input rows or columns of an
    ``OY``/``OX`` loop; a whole slice along any other loop), the first of each sweep all of it.

    Args:
        per_pe: ``(5,)`` the per-PE extent; pe_tiles, orders: ``(N, 5)`` the candidates;
        trips: ``(10, N)`` the DRAM loops' trips then the buffer-level loops', outermost first;
        relevant: ``(10, N)`` whether each of those loops refills the tensor's register file;
        slide: whether the slice may keep the overlap of windows (not for the written tensor).
    """
    n = len(pe_tiles)
    cols = np.arange(n)
    pos = np.empty_like(orders)  # (N, 5): position of each dimension among the buffer-level loops
    pos[cols[:, None], orders] = np.arange(5)[None, :]
    levels = np.arange(6)[:, None, None]
    ext = np.where(pos[None] >= levels, per_pe[None, None, :], pe_tiles[None])  # (6, N, 5)
    fp = footprints(shape, ext)[tensor]  # (6, N)
    active = relevant & (trips > 1)
    last_all = np.maximum.accumulate(np.where(active, np.arange(10)[:, None], -1), axis=0)  # (10, N)
    cum = np.cumprod(trips, axis=0)
    last = last_all[4:]  # (6, N): the innermost relevant turning loop outside level r (positions < 5 + r)
    loads = np.where(last >= 0, cum[np.maximum(last, 0), cols[None, :]], 1)
    moved = fp * loads
    if not slide:
        return fp, loads, moved
    inner = last >= 5  # a buffer-level loop
    sweep = trips[np.maximum(last, 0), cols[None, :]]  # (6, N)
    dim = orders[cols[None, :], np.clip(last - 5, 0, 4)]  # (6, N)
    doubled = ext.copy()
    np.put_along_axis(doubled, dim[..., None], np.take_along_axis(ext, dim[..., None], axis=2) * 2, axis=2)
    added = np.minimum(footprints(shape, doubled)[tensor] - fp, fp)  # windows with gaps between them
    # (a bounding box of a stride over the filter size) share nothing: a whole slice
    slid = loads // np.maximum(sweep, 1) * (fp + (sweep - 1) * added)
    return fp, loads, np.where(inner, slid, moved)


def _rf_levels(slices: dict[str, tuple[np.ndarray, ...]], rfs: dict[str, tuple[str, float]],
               elem: dict[str, float], n: int) -> dict[str, np.ndarray]:
    """Register-file residency level of each operand ``(N,)`` (``_slices``), as the buffer's are
    chosen (``loopnest.place_slices``): operands sharing a register file start at one tile each
    and are placed in the order c, b, a, each at the innermost (smallest) level of least traffic
    among those that fit in the room the others leave; an operand without one stays at 5."""
    levels = {op: np.full(n, 5, np.int64) for op in ("a", "b", "c")}
    for name in sorted({nm for nm, _ in rfs.values()}):
        ops = [op for op in ("c", "b", "a") if op in rfs and rfs[op][0] == name]
        cap = rfs[ops[0]][1]
        size = {op: slices[op][0] * elem[op] for op in ops}  # (6, N) bytes per PE at each level
        levels.update(place_slices(size, {op: slices[op][2] for op in ops}, cap if cap > 0 else np.inf))
    return levels


def pe_costs(shape: ConvShape, pass_: str, arch: Architecture, tile: tuple[int, ...],
             dram_order: tuple[str, ...], elem: dict[str, float], dataflow: str,
             pe_tiles: np.ndarray | None = None, orders: np.ndarray | None = None,
             spatial: tuple[tuple[str, int], tuple[str, int]] | None = None) -> dict[str, np.ndarray]:
    """Counts of every register-file candidate below one buffer tile, each ``(N,)`` over all groups.

    Args:
        tile: the buffer tile (``DIMS`` order); ``dram_order``: the DRAM loops, outermost first.
        elem: bytes per element of each operand in its register file (``"a"``, ``"b"``; ``"c"`` at
            the partial sums' width).
        pe_tiles, orders: ``(N, 5)`` candidates (default: every fitting tile × every order).
        spatial: ``((row dim, factor), (col dim, factor))`` (default: :func:`spatial_of`'s, the
            dataflow's dimensions).

    Returns ``pe_tile``, ``order`` (the candidates), ``array_a``, ``array_b`` (buffer reads sent to
    the PEs), ``array_c`` (partial sums the PEs write into the buffer, reduced), ``array_read_c``
    (partial sums read back down), ``rf_fill_{op}`` (register-file writes from the buffer, all
    PEs), ``rf_drain_c`` (register-file reads of partial sums leaving), ``compute_cycles``,
    ``substeps`` (``(N, 5)``: the trips of the buffer-level loops, outermost first) and ``step_{op}``
    (``(N, 5)``: elements of each operand's footprint in the block that fixes the first iteration of
    the loops down to that one; ``hwsim.npu.nest_timing.TileStream``).
    """
    rows, cols = arch.compute.rows, arch.compute.cols
    (rd, rfac), (cd, cfac) = spatial or spatial_of(shape, pass_, dataflow, tile, rows, cols)
    per_pe = np.array(tile, np.int64)
    per_pe[DIMS.index(rd)] //= rfac
    per_pe[DIMS.index(cd)] //= cfac
    rfs = register_files(arch)
    roles = ROLES[pass_]
    if pe_tiles is None:
        divs = [divisors(int(d)) for d in per_pe]
        grids = np.meshgrid(*divs, indexing="ij")
        cand = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        fp = footprints(shape, cand)
        ok = np.ones(len(cand), bool)
        for name in {n for n, _ in rfs.values()}:
            cap = next(c for n, c in rfs.values() if n == name)
            used = sum(fp[roles[op]] * elem[op] for op, (n, _) in rfs.items() if n == name)
            if cap > 0:
                ok &= used <= cap
        cand = cand[ok]
        if len(cand) == 0:
            raise MappingError(f"{pass_}: even one element per PE ({shape.fy}×{shape.fx} filter window) "
                               f"does not fit the register files {sorted({n for n, _ in rfs.values()})}; "
                               "use larger ones or register_file_tiling: false")
        ti, pi = _pairs(per_pe, cand)
        pe_tiles, orders = cand[ti], ORDERS[pi]
    n = len(pe_tiles)
    g = shape.groups
    dims = np.array(shape.dims, np.int64)
    dram_pos = [DIMS.index(d) for d in dram_order]
    dram_trips = (dims // np.array(tile, np.int64))[dram_pos]  # (5,)
    glb_trips = per_pe[None, :] // pe_tiles  # (N, 5) by dimension
    trips = np.concatenate([np.broadcast_to(dram_trips[:, None], (5, n)),
                            np.take_along_axis(glb_trips, orders, axis=1).T], axis=0)  # (10, N)
    fp = footprints(shape, pe_tiles)
    pes = rfac * cfac
    spatial = {rd: rfac, cd: cfac}
    out: dict[str, np.ndarray] = {"pe_tile": pe_tiles, "order": orders}
    slices = {}
    for op, tensor in roles.items():
        # a register file is refilled whenever a DRAM loop turns (its tile sits below the spatial
        # fanout, below every DRAM loop: AccelForge's convention); inside, a slice stays while the
        # buffer-level loops outside it that do not index it turn
        rel = np.array(RELEVANT[tensor])
        relevant = np.concatenate([np.ones((5, n), bool), rel[orders].T], axis=0)
        slices[op] = _slices(shape, tensor, per_pe, pe_tiles, orders, trips, relevant, slide=op != "c")
    levels = _rf_levels(slices, rfs, elem, n)
    for op, tensor in roles.items():
        rel = np.array(RELEVANT[tensor])
        multicast = int(np.prod([f for d, f in spatial.items() if not rel[DIMS.index(d)]]))
        if op in rfs:  # the slices loaded into the register files at their levels, all PEs
            moved = np.take_along_axis(slices[op][2], levels[op][None], axis=0)[0] * pes * g
        else:  # no register file: every MAC's operand comes from the buffer
            moved = np.full(n, shape.macs, np.int64)
        if op == "c":
            out["rf_drain_c"] = moved
            out["array_c"] = moved // multicast  # reduced over the dimension it ignores
            out["array_read_c"] = out["array_c"] - shape.size(tensor)
            out["rf_fill_c"] = out["array_read_c"] * multicast  # a revisit's partial sum into every PE
            # of the reduction (AccelForge's convention: the buffer read is multicast back down)
        else:
            out[f"rf_fill_{op}"] = moved
            out[f"array_{op}"] = moved // multicast
        out[f"rf_level_{op}"] = levels[op]
    for name in sorted({nm for nm, _ in rfs.values()}):  # bytes per PE the slices take
        out[f"rf_bytes:{name}"] = sum(np.take_along_axis(slices[op][0], levels[op][None], axis=0)[0]
                                      * elem[op] for op, (nm, _) in rfs.items() if nm == name)
    out["compute_cycles"] = np.full(n, -(-shape.macs // pes), np.int64)
    # the tile's blocks: fixing the first iteration of the buffer-level loops one after the other
    # (outermost first), the footprint each operand's first block needs (``step_{op}``, ``(N, 5)``;
    # by symmetry what the last block of the written operand finishes) and the loops' trips
    ordered = np.take_along_axis(glb_trips, orders, axis=1)  # (N, 5) outermost first
    rows_n = np.arange(n)
    sub = np.array(np.broadcast_to(np.array(tile, np.int64), (n, 5)))
    steps = {op: np.zeros((n, 5), np.int64) for op in roles}
    for j in range(5):
        sub[rows_n, orders[:, j]] //= ordered[:, j]
        fp_j = footprints(shape, sub)
        for op, tensor in roles.items():
            steps[op][:, j] = fp_j[tensor]
    out["substeps"] = ordered
    for op in roles:
        out[f"step_{op}"] = steps[op]
    out["spatial"] = np.array([[DIMS.index(rd), rfac, DIMS.index(cd), cfac]] * n, np.int64)
    out["per_pe"] = np.broadcast_to(per_pe, (n, 5))
    return out


def pe_bound(shape: ConvShape, pass_: str, arch: Architecture, tiles: np.ndarray,
             dataflow: str) -> dict[str, np.ndarray]:
    """The register-file level of buffer tiles ``(T, 5)`` at its least: counts ``(T,)`` as
    :func:`pe_costs` gives them, for ranking buffer tiles before their own level is searched.

    Under one unrolling the PEs in use and the cycles are exact (the unrolling depends on the buffer
    tile alone) and every register-file fill and drain is a lower bound: each PE loads its whole
    per-PE slice of a tensor once per buffer tile (a new buffer tile refills the register files)
    and never again, as if its register file held it all; an operand without a register file reads
    the buffer once per MAC. Where the machine offers several unrollings (:func:`unrollings`), each
    count is the least over them."""
    bounds = [_bound(shape, pass_, arch, tiles, dims) for dims in unrollings(arch, pass_, dataflow)]
    return {k: np.minimum.reduce([b[k] for b in bounds]) for k in bounds[0]}


def _bound(shape: ConvShape, pass_: str, arch: Architecture, tiles: np.ndarray,
           dims: tuple[str, str]) -> dict[str, np.ndarray]:
    """:func:`pe_bound` under one unrolling ``dims`` (row, column loop dimensions)."""
    rows, cols = arch.compute.rows, arch.compute.cols
    rd, cd = (DIMS.index(d) for d in dims)
    n = len(tiles)
    per_pe = np.array(tiles, np.int64)
    factors = []
    for d, side in ((rd, rows), (cd, cols)):
        values, inv = np.unique(tiles[:, d], return_inverse=True)
        best = np.array([int(divisors(int(v))[divisors(int(v)) <= side].max()) for v in values], np.int64)
        factors.append(best[inv.reshape(-1)])
        per_pe[:, d] //= factors[-1]
    pes = factors[0] * factors[1]
    n_tiles = np.prod(np.array(shape.dims, np.int64)[None, :] // tiles, axis=1) * shape.groups
    fp = footprints(shape, per_pe)
    rfs = register_files(arch)
    out: dict[str, np.ndarray] = {}
    for op, tensor in ROLES[pass_].items():
        rel = RELEVANT[tensor]
        multicast = np.where(rel[rd], 1, factors[0]) * np.where(rel[cd], 1, factors[1])
        moved = fp[tensor] * n_tiles * pes if op in rfs else np.full(n, shape.macs, np.int64)
        if op == "c":
            out["rf_drain_c"] = moved
            out["array_c"] = moved // multicast
            out["array_read_c"] = out["array_c"] - shape.size(tensor)
            out["rf_fill_c"] = out["array_read_c"] * multicast
        else:
            out[f"rf_fill_{op}"] = moved
            out[f"array_{op}"] = moved // multicast
        out[f"rf_level_{op}"] = np.full(n, 5, np.int64)
    out["compute_cycles"] = -(-shape.macs // pes)
    for name, _cap in rfs.values():
        out[f"rf_bytes:{name}"] = np.zeros(n)
    return out


def pe_energy(arch: Architecture, counts: dict[str, np.ndarray], eb: dict[str, float],
              buffer_of: dict[str, str], price: dict[tuple[str, str], float]) -> np.ndarray:
    """pJ of the register-file level's buffer and register-file accesses (the part that differs
    between candidates of one buffer tile): buffer reads and partial-sum writes, register-file fills
    and drains."""
    rfs = register_files(arch)
    e = np.zeros(len(counts["compute_cycles"]))
    for op in "ab":
        e = e + counts[f"array_{op}"] * eb[op] * price.get((buffer_of[op], "read"), 0.0)
        if op in rfs:
            e = e + counts[f"rf_fill_{op}"] * eb[op] * price.get((rfs[op][0], "write"), 0.0)
    cb = buffer_of["c"]
    e = e + counts["array_c"] * eb["c"] * price.get((cb, "write"), 0.0)
    e = e + counts["array_read_c"] * eb["c"] * price.get((cb, "read"), 0.0)
    if "c" in rfs:
        e = e + counts["rf_drain_c"] * eb["c"] * price.get((rfs["c"][0], "read"), 0.0)
        e = e + counts["rf_fill_c"] * eb["c"] * price.get((rfs["c"][0], "write"), 0.0)
    return e


def best_pe(shape: ConvShape, pass_: str, arch: Architecture, tile: tuple[int, ...],
            dram_order: tuple[str, ...], eb: dict[str, float], dataflow: str,
            buffer_of: dict[str, str], price: dict[tuple[str, str], float]) -> tuple[PeMapping, dict]:
    """The unrolling, register-file tile and buffer-level order of least energy below one buffer
    tile (ties: fewer partial sums through the buffer, fewer buffer accesses, slices closer to one
    shared tile, then the first candidate: unrollings in :func:`unrollings`' order, tiles ascending,
    orders in ``itertools.permutations`` order), and its counts (scalars)."""
    rows, cols = arch.compute.rows, arch.compute.cols
    each = [pe_costs(shape, pass_, arch, tile, dram_order, eb, dataflow,
                     spatial=spatial_of(shape, pass_, dataflow, tile, rows, cols, dims))
            for dims in unrollings(arch, pass_, dataflow)]
    c = each[0] if len(each) == 1 else {k: np.concatenate([x[k] for x in each]) for k in each[0]}
    e = pe_energy(arch, c, eb, buffer_of, price)
    partial = c["array_c"] + c["array_read_c"]  # ties: fewer partial sums through the buffer, then
    accesses = c["array_a"] + c["array_b"] + partial  # fewer buffer accesses, then slices closer to
    below = sum(5 - c[f"rf_level_{op}"] for op in "abc")  # one shared tile, then the first
    j = int(np.lexsort((np.arange(len(e)), below, accesses, partial, tie_rank(e)))[0])
    sp = c["spatial"][j]
    mp = PeMapping(((DIMS[sp[0]], int(sp[1])), (DIMS[sp[2]], int(sp[3]))),
                   tuple(int(x) for x in c["pe_tile"][j]), tuple(DIMS[i] for i in c["order"][j]))
    return mp, {k: v[j] for k, v in c.items()}


def given_pe(shape: ConvShape, pass_: str, arch: Architecture, tile: tuple[int, ...],
             dram_order: tuple[str, ...], eb: dict[str, float], dataflow: str, mp: PeMapping) -> dict:
    """The counts of one given register-file mapping (scalars)."""
    (rd, rfac), (cd, cfac) = mp.spatial
    for d, f, side in ((rd, rfac, arch.compute.rows), (cd, cfac, arch.compute.cols)):
        if f < 1 or f > side or tile[DIMS.index(d)] % f:
            raise MappingError(f"unrolling {d}{f} must divide the buffer tile's {d} = {tile[DIMS.index(d)]} "
                               f"and fit the array side of {side} PEs")
    if rd == cd:
        raise MappingError(f"unrolling {rd} over both the rows and the columns; unroll two dimensions")
    c = pe_costs(shape, pass_, arch, tile, dram_order, eb, dataflow, np.array([mp.tile], np.int64),
                 np.array([[DIMS.index(d) for d in mp.order]], np.int64), spatial=mp.spatial)
    return {k: v[0] for k, v in c.items()}
