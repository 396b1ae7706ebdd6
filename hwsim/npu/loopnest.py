"""The loop nest above the PE array: raw tensors, buffer tiles, DRAM-level loop order, traffic.

A layer is the convolution loop nest ``G, B, K, C, OY, OX, FY, FX`` (a linear layer is a 1×1
convolution with ``OX`` = rows per sample). Three tensors live above the array *as they are*
(no im2col): ``I`` (inputs or their gradient, indexed ``B, C, IY, IX`` with ``IY = (OY-1)·s + FY``,
``(OY-1)·FY + FY`` when ``s > FY``: a strided 1×1 layer skips the rows between its windows),
``W`` (``K, C, FY, FX``) and ``O`` (outputs or their gradient, ``B, K, OY, OX``). A mapping has two
levels above the array:

- the *buffer tile*: how many of ``B, K, C, OY, OX`` one tile holds (``FY, FX`` always whole; the
  divisors of each dimension). A tile of ``I`` is a window with its halo:
  ``tB · tC · ((tOY-1)·min(s,FY) + FY) · ((tOX-1)·min(s,FX) + FX)`` elements; ``W`` ``tK · tC · FY · FX``;
  ``O`` ``tB · tK · tOY · tOX``;
- the *DRAM loops*: the trips ``D / tD`` of those dimensions, in an order (outermost first).

A tensor's tile stays in its buffer while the DRAM loops inside its innermost relevant loop turn
(partial residency: that slice stays, the rest streams), so it is loaded
``Π trips of the loops at or outside its innermost relevant loop`` times (a loop of one trip
counts for nothing). A read input slice whose innermost turning loop outside it is ``OY`` or
``OX`` *slides*: the buffer keeps the overlap of consecutive windows and each turn loads only the
new rows or columns (``residency``), as AccelForge counts a buffer lowered through that loop.
The written tensor of a pass (``O`` forward, ``I`` backward-data, ``W``
backward-weight) is written back at every load and read back at every load but its first visit of
each element: partial sums spilled when a reduction loop sits outside it, and in backward-data the
overlapping halos of ``dX`` tiles (col2im's overlapping sums happen in the output buffer within a
tile and across tiles as these counted read-modify-writes).

Inside a tile the array runs the tile's GEMM (``forward`` ``M=tB·tOY·tOX, K=tC·FY·FX, N=tK``; the
other passes as ``LayerSpec.gemm``) with SCALE-Sim's fold conventions (``hwsim.npu.mapping``):
the buffer-to-array reads, the weight-register fills and the output-buffer accumulation follow
from the folds. Every count here is a closed form over the candidate arrays (numpy, no loop over
tiles).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from archs import Architecture
from traces.format.layer import LayerSpec

DIMS = ("B", "K", "C", "OY", "OX")  # the loops a mapping tiles, in this canonical order
RELEVANT = {"I": (True, False, True, True, True), "W": (False, True, True, False, False),
            "O": (True, True, False, True, True)}
# per pass: GEMM operand -> tensor of the loop nest
ROLES = {"forward": {"a": "I", "b": "W", "c": "O"},
         "backward_data": {"a": "O", "b": "W", "c": "I"},
         "backward_weight": {"a": "I", "b": "O", "c": "W"}}


@dataclass(frozen=True)
class ConvShape:
    """One group of a layer as a convolution loop nest (element counts, no batch in ``x``)."""

    b: int
    k: int
    c: int
    oy: int
    ox: int
    fy: int = 1
    fx: int = 1
    sy: int = 1
    sx: int = 1
    groups: int = 1
    box: bool = False  # inputs as bounding boxes: a strided window's gaps are fetched and kept
    # (``compute.strided_input: bounding_box``; default: only the rows and columns read)

    @property
    def dims(self) -> tuple[int, int, int, int, int]:
        return (self.b, self.k, self.c, self.oy, self.ox)

    @property
    def step_y(self) -> int:
        """Input rows between the windows of consecutive output rows that a tile keeps: the stride,
        or ``min(s, FY)`` when the rows between windows (``s > FY``) are not fetched."""
        return self.sy if self.box else min(self.sy, self.fy)

    @property
    def step_x(self) -> int:
        return self.sx if self.box else min(self.sx, self.fx)

    @property
    def iy(self) -> int:
        """Input rows the layer reads (``window(OY, s, FY)``; padding rows included)."""
        return window(self.oy, self.step_y, self.fy)

    @property
    def ix(self) -> int:
        return window(self.ox, self.step_x, self.fx)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole layer (all groups)."""
        return self.groups * self.b * self.k * self.c * self.oy * self.ox * self.fy * self.fx

    def size(self, tensor: str) -> int:
        """Elements of a whole tensor over all groups (``I`` as the windows cover it)."""
        per = {"I": self.b * self.c * self.iy * self.ix, "W": self.k * self.c * self.fy * self.fx,
               "O": self.b * self.k * self.oy * self.ox}[tensor]
        return per * self.groups

    @classmethod
    def of(cls, spec: LayerSpec, batch: int) -> ConvShape:
        """The loop nest of a recorded layer for ``batch`` samples (inputs as the padded windows
        reach them: ``IY = (OY-1)·min(s, FY) + FY``). A matmul is ``batch·groups`` groups of one
        "sample" each: ``OX = M`` rows, ``C = K``, ``K = N`` (B, per group, plays the weight)."""
        g = spec.groups
        if spec.kind == "matmul":
            return cls(1, spec.out_per_group, spec.reduction, 1, spec.rows_per_sample, groups=batch * g)
        if spec.kind == "conv2d":
            k, cg, fy, fx = spec.w_shape
            return cls(batch, k // g, cg, spec.y_shape[1], spec.y_shape[2], fy, fx, spec.stride[0],
                       spec.stride[1], g)
        # a linear layer, a 3-D or transposed conv: its forward GEMM (rows × Kr × Kout/g per group)
        return cls(batch, spec.out_per_group, spec.reduction, 1, spec.rows_per_sample, groups=g)


def stored(shape: ConvShape, arch: Architecture) -> ConvShape:
    """``shape`` with its input kept as the machine keeps it (``compute.strided_input``: the rows and
    columns the windows read, or their bounding box)."""
    box = arch.compute is not None and arch.compute.strided_input == "bounding_box"
    return shape if shape.box == box else replace(shape, box=box)


TIE_REL = 1e-9  # candidates whose objective differs by less than this fraction are tied


def tie_rank(values: np.ndarray, rel: float = TIE_REL) -> np.ndarray:
    """Rank ``(N,)`` of each value where values within ``rel`` of their neighbour in sorted order
    share a rank: sums of the same costs taken in another order differ in their last bits, and
    such a difference must not decide a choice (the tie-breaks after it do)."""
    v = np.asarray(values, np.float64)
    order = np.argsort(v, kind="stable")
    s = v[order]
    gaps = np.diff(s) > rel * np.maximum(np.abs(s[1:]), 1e-300)
    rank = np.empty(len(v), np.int64)
    rank[order] = np.concatenate(([0], np.cumsum(gaps)))
    return rank


def divisors(n: int) -> np.ndarray:
    """Ascending divisors of ``n >= 1``."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return np.array(sorted(set(small + [n // d for d in small])), np.int64)


def window(t: np.ndarray | int, step: int, f: int) -> np.ndarray | int:
    """Input rows (or columns) a tile of ``t`` output rows keeps, ``(t-1)·step + F``, with ``step``
    ``ConvShape.step_y`` (or ``step_x``): ``min(s, F)``, the union of the windows (a 1×1 stride-2
    layer reads every other row, not the gaps), or ``s`` on a machine that keeps bounding boxes."""
    return (t - 1) * step + f


def footprints(shape: ConvShape, tiles: np.ndarray | tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Elements of each tensor's tile; ``tiles`` is ``(..., 5)`` in ``DIMS`` order -> ``(...)`` each,
    or five arrays (one per dimension) that broadcast together -> their broadcast shape."""
    tb, tk, tc, toy, tox = (tiles[..., i] for i in range(5)) if isinstance(tiles, np.ndarray) else tiles
    return {"I": tb * tc * window(toy, shape.step_y, shape.fy) * window(tox, shape.step_x, shape.fx),
            "W": tk * tc * shape.fy * shape.fx,
            "O": tb * tk * toy * tox}


def tile_loads(trips_ordered: np.ndarray, relevant_ordered: np.ndarray) -> np.ndarray:
    """Loads of a tile at every residency level: the product of the trips at or outside the
    innermost relevant loop that turns (trips > 1) among the loops outside the level; 1 when none.

    Args:
        trips_ordered: ``(N, 5)`` trips of the DRAM loops, outermost first.
        relevant_ordered: ``(N, 5)`` bool, the loop's dimension indexes the tensor.

    Returns ``(6, N)``: row ``r`` counts the loads when the loops at positions ``< r`` are outside.
    """
    return _tile_loads_t(np.ascontiguousarray(trips_ordered.T), np.ascontiguousarray(relevant_ordered.T))


def _tile_loads_t(trips_t: np.ndarray, relevant_t: np.ndarray,
                  cum_t: np.ndarray | None = None) -> np.ndarray:
    """:func:`tile_loads` on position-major ``(5, N)`` arrays (whole rows per loop position);
    ``cum_t``: the trips' running product along the positions, when the caller has it."""
    n = trips_t.shape[1]
    active = relevant_t & (trips_t > 1)
    last = np.maximum.accumulate(np.where(active, np.arange(5)[:, None], -1), axis=0)  # innermost so far
    cum = np.cumprod(trips_t, axis=0) if cum_t is None else cum_t
    picked = cum[np.maximum(last, 0), np.arange(n)[None, :]]
    out = np.ones((6, n), np.int64)
    out[1:] = np.where(last >= 0, picked, 1)  # level r = position r - 1
    return out


def tile_gemm(shape: ConvShape, tiles: np.ndarray, pass_: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(M, K, N)`` of the GEMM the array runs for one tile (``LayerSpec.gemm``'s orientation)."""
    tb, tk, tc, toy, tox = tiles.T
    rows, red, cols = tb * toy * tox, tc * shape.fy * shape.fx, tk
    if pass_ == "forward":
        return rows, red, cols
    if pass_ == "backward_data":
        return rows, cols, red
    return red, rows, cols


def array_counts(m: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int,
                 dataflow: str) -> dict[str, np.ndarray]:
    """Per tile GEMM ``M×K×N`` on an ``rows×cols`` array (SCALE-Sim's folds, ``hwsim.npu.mapping``):
    elements the buffers send to the array (``a``, ``b``), partial sums the array writes into the
    output buffer (``c``), and compute cycles (folds × (fill + streamed length))."""
    def folds(x: np.ndarray, size: int) -> np.ndarray:
        return -(-x // size)

    if dataflow == "ws":
        rf, cf, stream, fill = folds(k, rows), folds(n, cols), m, 2 * rows + cols - 2
        out = {"a": m * k * cf, "b": k * n, "c": m * n * rf}
    elif dataflow == "is":
        rf, cf, stream, fill = folds(k, rows), folds(m, cols), n, 2 * rows + cols - 2
        out = {"a": k * m, "b": k * n * cf, "c": m * n * rf}
    else:  # os
        rf, cf, stream, fill = folds(m, rows), folds(n, cols), k, rows + cols - 2
        out = {"a": m * k * cf, "b": k * n * rf, "c": m * n}
    out["cycles"] = rf * cf * (fill + stream)
    return out


def residency(shape: ConvShape, tiles: np.ndarray, orders: np.ndarray,
              tile_index: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, ...]]:
    """Footprint and loads of each tensor's buffer slice at every residency level ``r = 0..5``.

    At level ``r`` a tensor's buffer keeps the slice the DRAM loops at positions ``>= r`` sweep
    (``r = 5``: one tile; ``r = 0``: the whole tensor of one group): a slice of the operand stays
    while the loops outside it turn, and it is loaded as often as the relevant loops outside it
    say (:func:`tile_loads`).

    Args:
        tiles, orders: ``(N, 5)`` each: candidate ``i`` is tile ``tiles[i]`` under loop order
            ``orders[i]`` (a permutation of ``range(5)``, outermost first).
        tile_index: ``(N,)``, when ``tiles`` lists distinct tiles ``(T, 5)`` and candidate ``i`` is
            tile ``tiles[tile_index[i]]`` (the mapper's tile-major candidates: what depends on the
            tile alone is computed once per tile).

    The input's slice *slides* where the innermost turning DRAM loop outside level ``r`` is ``OY``
    or ``OX`` (it indexes the input, and no other loop turns between it and the slice): the buffer
    keeps the overlap of consecutive windows and each turn of that loop loads only what the next
    window adds (``t·min(s, F)`` rows or columns of the slice); the first window of each sweep of
    that loop is whole. Capacity is unchanged: the buffer still holds one whole window.

    A slice at level ``r`` is a function of the tile and of the *set* of dimensions swept inside it
    (the loops at positions ``>= r``), and its loads of the tile and the set of loops at or outside
    the innermost relevant turning one: so each tile's footprints and trip products are tabulated
    over the 32 subsets of the five dimensions, and each candidate's level picks its entries by
    the subsets its order gives (fixed tables per order and set of turning loops, ``_ORDER_TABLES``).

    Returns per tensor ``I, W, O``: ``(footprint, loads, fills, slide)``, each ``(6, N)``: elements,
    times, elements loaded per group with the input's slide (``footprint × loads`` otherwise, and
    for ``W`` and ``O``), and the position of the loop the slice slides along (-1: none, or no
    overlap to keep).
    """
    dims = np.array(shape.dims, np.int64)
    ti = np.arange(len(tiles)) if tile_index is None else np.asarray(tile_index, np.int64)
    trips = dims[None, :] // tiles  # (T, 5)
    # per tile and subset s of the dimensions (bit d: dimension d swept whole inside the slice)
    ext = []  # (T, 32) per dimension: its extent in each subset's slice
    for d in range(5):
        either = np.empty((len(tiles), 2), np.int64)  # the tile's extent, or the whole dimension
        either[:, 0], either[:, 1] = tiles[:, d], dims[d]
        ext.append(either[:, _SUBSET_BITS[:, d]])
    fps = footprints(shape, ext)  # (T, 32) each
    trip_product = np.ones((len(tiles), 32), np.int64)  # the product of the subset's trips
    for d in range(5):  # the subsets with bit d: those without it, times dimension d's trips
        trip_product[:, 1 << d:2 << d] = trip_product[:, :1 << d] * trips[:, d:d + 1]
    eb, _ek, ec, ey, ex = ext
    wy, wx = window(ey, shape.step_y, shape.fy), window(ex, shape.step_x, shape.fx)
    # what the next window adds along OY (column 0) or OX (column 1): more than a window where a
    # bounding box's windows leave gaps
    added_by = np.stack([eb * ec * (ey * shape.step_y * wx), eb * ec * (wy * ex * shape.step_x)], axis=-1)
    turning = ((trips > 1) * _DIM_BITS).sum(axis=1)  # (T,): bit d set where dimension d's loop turns
    oid = _ORDER_ID[orders @ _ORDER_CODE]  # (N,) index of each order in _PERMUTATIONS
    key = turning[ti] * len(_PERMUTATIONS) + oid  # (N,) row of the per-order tables
    at_tile = ti[None, :] * 32  # (1, N): the tile's row of the (T, 32) tables, flattened
    inside = at_tile + _INSIDE[:, oid]  # (6, N): the subset swept inside level r
    per_order = np.take(_ORDER_TABLES, key, axis=1)  # (5 · 6, N): the order tables' rows, see there
    out = {}
    for j, t in enumerate(RELEVANT):
        fp = np.take(fps[t], inside)
        ld = np.take(trip_product, at_tile + per_order[6 * j:6 * j + 6])
        out[t] = (fp, ld, fp * ld, np.full(fp.shape, -1, np.int64))
    # the input's slice slides along the innermost turning loop outside it when that is OY or OX:
    # each turn loads what the next window adds (the slice with that extent doubled, less itself)
    inner = per_order[18:24]  # (6, N): innermost turning position < r (-1: none)
    dim = per_order[24:30]  # its dimension (-1: none)
    fp_i, ld_i, fills_i, _ = out["I"]
    added = np.take(added_by, inside * 2 + (dim == 4))
    slides = (dim >= 3) & (added < fp_i)  # only overlapping windows slide
    sweep = np.take(trips, ti[None, :] * 5 + np.maximum(dim, 0))  # (6, N): trips of that loop
    slid = ld_i // np.maximum(sweep, 1) * (fp_i + (sweep - 1) * added)
    out["I"] = (fp_i, ld_i, np.where(slides, slid, fills_i), np.where(slides, inner, np.int64(-1)))
    return out


def _order_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fixed tables of :func:`residency` over the 120 loop orders: ``(permutations (120, 5), order
    id by base-5 code (3125,), subset inside level r (6, 120), tables (5 · 6, 32·120) int8)``; the
    tables' column ``turning·120 + order`` (``turning``: the 5-bit set of loops with trips > 1)
    holds five blocks of six rows, one row per level ``r``: for ``I``, ``W``, ``O`` the subset of
    loops at or outside the tensor's innermost relevant turning loop outside ``r`` (empty when
    none: loaded once); the position of the innermost turning loop outside ``r`` (-1: none); its
    dimension (-1: none)."""
    perms = np.array(list(itertools.permutations(range(5))), np.int64)  # (P, 5)
    n_p = len(perms)
    order_id = np.full(5 ** 5, -1, np.int64)
    order_id[perms @ _ORDER_CODE] = np.arange(n_p)
    bits = _DIM_BITS[perms]  # (P, 5): each position's dimension bit
    after = np.concatenate([np.cumsum(bits[:, ::-1], axis=1)[:, ::-1], np.zeros((n_p, 1), np.int64)], axis=1)
    inside = np.ascontiguousarray(after.T)  # (6, P): dimensions at positions >= r
    turn = np.arange(32)[:, None, None]  # (32, 1, 1) every set of turning loops
    tables = []

    def innermost(active: np.ndarray) -> np.ndarray:
        """(32, P, 6): the innermost active position < r (-1: none)."""
        last = np.maximum.accumulate(np.where(active, np.arange(5), -1), axis=2)  # (32, P, 5)
        return np.concatenate([np.full((32, n_p, 1), -1), last], axis=2)

    def columns(x: np.ndarray) -> np.ndarray:  # (6, 32·P); values -1..31: small to hold
        return np.ascontiguousarray(x.reshape(32 * n_p, 6).T, dtype=np.int8)

    for rel in RELEVANT.values():  # I, W, O
        rel_bits = int((_DIM_BITS * np.array(rel)).sum())
        last = innermost((turn & rel_bits & bits[None]) > 0)
        loaded = 31 - after[np.arange(n_p)[None, :, None], last + 1]  # positions <= last
        tables.append(columns(loaded))
    inner = innermost((turn & bits[None]) > 0)
    tables.append(columns(inner))
    inner_dim = perms[np.arange(n_p)[None, :, None], np.maximum(inner, 0)]
    tables.append(columns(np.where(inner >= 0, inner_dim, -1)))
    return perms, order_id, inside, np.concatenate(tables)


_DIM_BITS = 1 << np.arange(5, dtype=np.int64)  # dimension d's bit in a subset of DIMS
_SUBSET_BITS = ((np.arange(32)[:, None] & _DIM_BITS[None, :]) > 0).astype(np.int64)  # (32, 5): 1 where
# subset s holds the dimension
_ORDER_CODE = 5 ** np.arange(4, -1, -1, dtype=np.int64)  # an order's base-5 code
_PERMUTATIONS, _ORDER_ID, _INSIDE, _ORDER_TABLES = _order_tables()


def place_slices(size: dict[str, np.ndarray], moved: dict[str, np.ndarray],
                 capacity_bytes: float) -> dict[str, np.ndarray]:
    """Residency level ``(N,)`` of each operand sharing one memory of ``capacity_bytes``: the
    operands start at one tile each (level 5) and are placed in the dict's order, each at the
    innermost (smallest) level of least traffic among those that fit beside the others' slices.

    Args:
        size: per operand, bytes of its slice at each level ``(6, N)``; level 5 fits by construction.
        moved: per operand, elements it moves at each level ``(6, N)`` (integers).
    """
    n = next(iter(size.values())).shape[1]
    cols = np.arange(n)
    levels = {op: np.full(n, 5, np.int64) for op in size}
    for op in size:
        others = sum(size[o][levels[o], cols] for o in size if o != op)
        fits = size[op] + others <= capacity_bytes  # (6, N)
        least_fill = np.where(fits, moved[op], np.iinfo(np.int64).max).min(axis=0)
        least = fits & (moved[op] <= least_fill * (1 + 1e-12))
        levels[op] = (least * _LEVEL_NUMBERS).max(axis=0) - 1  # innermost level of least traffic
    return levels


_LEVEL_NUMBERS = np.arange(1, 7, dtype=np.int64)[:, None]  # (6, 1): residency level r + 1


def nest_costs(shape: ConvShape, pass_: str, tiles: np.ndarray, orders: np.ndarray, rows: int, cols: int,
               dataflow: str, levels: dict[str, np.ndarray] | None = None,
               slices: dict[str, tuple[np.ndarray, ...]] | None = None,
               slide: bool | np.ndarray = True,
               tile_index: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Element counts of every candidate, shaped ``(N,)``.

    Args:
        tiles: ``(N, 5)`` tile sizes in ``DIMS`` order (each divides its dimension); with
            ``tile_index`` ``(N,)``, the distinct tiles ``(T, 5)`` and candidate ``i``'s is
            ``tiles[tile_index[i]]`` (:func:`residency`).
        orders: ``(N, 5)`` permutations of ``range(5)``: each candidate's DRAM loops, outermost first.
        levels: per GEMM operand, its residency level ``(N,)`` in ``0..5`` (:func:`residency`;
            default 5: one tile).
        slices: :func:`residency`'s result when the caller has it already.
        slide: whether a read input slice may slide (:func:`residency`; ``(N,)`` or one for all):
            ``False`` re-fetches every window whole, as ZigZag's LOMA counts halos.

    Returns, per GEMM operand ``op`` of the pass: ``dram_read_{op}`` (elements fetched into the
    buffer), for the written operand ``c`` also ``dram_write_c`` (every write-back, final or
    spilled) and ``dram_read_c`` (partial sums read back = writes − distinct elements),
    ``loads_{op}`` (slice loads, all groups), ``slide_a``/``slide_b`` (the DRAM loop position the
    operand's slice slides along, -1 if none); the
    array side ``array_{op}`` (buffer-to-array elements of ``a`` and ``b``, partial-sum writes
    of ``c``), ``array_read_c`` (accumulation reads = writes − distinct elements), ``slice_{op}``
    (elements the buffer keeps), ``tiles`` (tiles run) and ``compute_cycles``.
    """
    dims = np.array(shape.dims, np.int64)
    trips = dims[None, :] // tiles  # (T, 5)
    g = shape.groups
    out: dict[str, np.ndarray] = {}
    role = ROLES[pass_]
    tp = (len(orders),)
    slices = residency(shape, tiles, orders, tile_index) if slices is None else slices
    each = np.arange(len(orders))
    for op, tensor in role.items():
        fp, ld, fills, at = slices[tensor]
        r = np.full(tp, 5, np.int64) if levels is None or op not in levels else levels[op]
        def pick(x: np.ndarray, r: np.ndarray = r) -> np.ndarray:  # (6, N) -> (N,) at each level
            return x[r, each]
        fp_r, ld_r = pick(fp), pick(ld)
        out[f"slice_{op}"] = fp_r
        out[f"loads_{op}"] = ld_r * g
        if op == "c":  # the written tensor: every load whole (partial sums, col2im halos)
            moved = fp_r * ld_r * g
            out["dram_write_c"] = moved
            out["dram_read_c"] = moved - shape.size(tensor)
        else:
            on = np.asarray(slide, bool) & (pick(at) >= 0)
            out[f"dram_read_{op}"] = np.where(on, pick(fills), fp_r * ld_r) * g
            out[f"slide_{op}"] = np.where(on, pick(at), -1)
    n_tiles = np.prod(trips, axis=1) * g  # (T,)
    m, k, n = tile_gemm(shape, tiles, pass_)
    arr = array_counts(m, k, n, rows, cols, dataflow)

    def each_candidate(x: np.ndarray) -> np.ndarray:  # per tile -> per candidate
        return x if tile_index is None else x[tile_index]
    for key in ("a", "b", "c"):
        out[f"array_{key}"] = each_candidate(arr[key] * n_tiles)
    out["array_read_c"] = out["array_c"] - shape.size(role["c"])
    out["compute_cycles"] = each_candidate(arr["cycles"] * n_tiles)
    out["tiles"] = each_candidate(n_tiles)
    return out
