"""Vectorized tile costs (numpy decides how much): cycles, MAC classes, element traffic per tile.

Tiles follow the mapping's loop order (column fold, row fold, stream chunk). Everything is
computed from the operand masks with block sums, integer reshapes and, for output-stationary
per-PE skipping only, one float32 matmul of the 0/1 operands (exact: partial sums < 2**24).

With N:M compression of ``b`` (``Features.nm``), the caller hands in the compressed operands
``(M, K')`` and ``(K', N)`` (``hwsim.npu.structured``) and a mapping over ``K'``; ws then sends
each streamed element ``input_rereads`` times (SCALE-Sim: m/n, once per compressed row).

Micro-architectures (DESIGN.md):
- ``systolic`` (lockstep): with skipping on the streamed operand, an all-zero streamed vector
  (a row of A's K-slice in ws, a column of B's K-slice in is, a K step whose A column or B row
  slice is zero in os) costs no cycle, and an all-zero stationary block skips its whole fold;
  with compute gating, ineffectual MACs in the remaining slots are gated (a cycle, no energy).
- ``pe_skipping``: each PE skips its ineffectual pairs; a fold (chunk) lasts as long as its
  slowest PE. In os a PE owns one output, so unneeded outputs (DSG's y_sel, dw_needed) cost
  nothing; in ws/is it does not.
- skipping of ``c`` (a ``skipping`` action with target ``c``, ``Features.skip_out``): a lockstep
  output-stationary array skips every fold whose output block (rows × cols of C) holds no needed
  output — a causal score matrix's blocks above the diagonal, a top-k mask's empty blocks: no
  cycle, no operand read, no write. A fold with one needed output runs whole. (ws and is produce
  a block's outputs across row folds and stream chunks: nothing is skipped there.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from archs import Architecture

from .blocks import block_sum
from .mapping import Mapping
from .pework import os_pe_work

OPS = ("a", "b", "c")


@dataclass(frozen=True)
class Features:
    """The sparse acceleration features the tile model uses."""

    gate: bool = False  # gate MACs with a zero operand
    skip: frozenset[str] = frozenset()  # operands whose all-zero streamed vectors/blocks are skipped
    pe_skip: bool = False  # per-PE skipping of ineffectual pairs
    nm: tuple[int, int] | None = None  # (n, m): b is stored N:M-compressed along K (hwsim.npu.structured)
    input_rereads: int = 1  # ws: streamed elements sent per compressed row (SCALE-Sim: m // n)
    count: frozenset[str] = frozenset()  # operands stored in a compressed format somewhere: their
    # non-zeros per tile are counted from the masks even when the timing is dense (bytes change)
    skip_out: bool = False  # lockstep os: folds whose outputs are all unneeded are skipped

    @property
    def dense(self) -> bool:
        return not (self.gate or self.skip or self.pe_skip or self.nm or self.skip_out)

    def swapped(self) -> Features:
        """The same features with operands ``a`` and ``b`` exchanged (is runs as ws on Bᵀ·Aᵀ)."""
        other = {"a": "b", "b": "a"}
        return Features(self.gate, frozenset(other[o] for o in self.skip), self.pe_skip, self.nm,
                        self.input_rereads, frozenset(other.get(o, o) for o in self.count), self.skip_out)

    @classmethod
    def of(cls, arch: Architecture) -> Features:
        """The features of an edge-NPU machine: its actions, and N:M compression of ``b`` when
        ``sparse.structured`` names it (a format alone, without an action or a structure, is a
        storage choice: the tile counts stay dense and only the bytes change, from the non-zeros
        of the operands in ``count``)."""
        acts = arch.sparse.actions
        count = frozenset(f.operand for f in arch.sparse.formats if f.format != "dense" and f.operand in "ab")
        gate = any(a.kind == "gating" and a.level == "compute" for a in acts)
        skips = [a for a in acts if a.kind == "skipping"]
        s = arch.sparse.structured
        nm = (s.n, s.m) if s is not None and arch.compute is not None and s.operand == "b" else None
        rereads = s.m // s.n if nm and s.ws_input_rereads else 1
        if arch.compute is not None and arch.compute.microarchitecture == "pe_skipping":
            return cls(gate=gate, pe_skip=bool(skips), nm=nm, input_rereads=rereads, count=count)
        targets = [(a.target,) if a.target in ("a", "b") else a.condition_on
                   for a in skips if a.target != "c"]
        skip = frozenset(op for ops in targets for op in ops if op in ("a", "b"))
        skip_out = any(a.target == "c" for a in skips)
        return cls(gate=gate, skip=skip, nm=nm, input_rereads=rereads, count=count, skip_out=skip_out)


DENSE = Features()


@dataclass
class TileCosts:
    """Per-tile arrays, all shaped ``(n_tiles,)``."""

    compute_cycles: np.ndarray
    algorithmic: np.ndarray
    actual: np.ndarray
    gated: np.ndarray
    skipped: np.ndarray
    buf_read: dict[str, np.ndarray] = field(default_factory=dict)  # dense elements sent to the array
    buf_read_nz: dict[str, np.ndarray] = field(default_factory=dict)  # non-zeros among them
    dram_read: dict[str, np.ndarray] = field(default_factory=dict)  # dense elements fetched
    dram_read_nz: dict[str, np.ndarray] = field(default_factory=dict)
    dram_write: dict[str, np.ndarray] = field(default_factory=dict)  # c (and psum spills)
    merged_tiles: int | None = None  # tiles the entries stand for, where entries merge several

    @property
    def n(self) -> int:
        return len(self.compute_cycles)

    @property
    def count(self) -> int:
        """Tiles these costs cover (entries, unless several tiles were merged into one entry)."""
        return self.n if self.merged_tiles is None else self.merged_tiles

    @classmethod
    def concat(cls, parts: list[TileCosts]) -> TileCosts:
        def cat(get):
            return np.concatenate([get(p) for p in parts]) if parts else np.zeros(0, np.int64)

        out = cls(*(cat(lambda p, f=f: getattr(p, f)) for f in
                    ("compute_cycles", "algorithmic", "actual", "gated", "skipped")))
        for name in ("buf_read", "buf_read_nz", "dram_read", "dram_read_nz", "dram_write"):
            keys = set().union(*(getattr(p, name) for p in parts)) if parts else set()
            setattr(out, name, {k: cat(lambda p, k=k, n=name: getattr(p, n).get(k, np.zeros(p.n, np.int64)))
                                for k in sorted(keys)})
        return out


def _blocks(length: int, size: int) -> np.ndarray:
    """Used extent of each block of ``size`` over ``length``."""
    n = -(-length // size)
    return np.minimum(size, length - np.arange(n) * size).astype(np.int64)


@dataclass(frozen=True)
class Grid:
    """The tile grid (column fold, row fold, chunk) and each tile's extents, shape ``(CF, RF, CH)``."""

    used_r: np.ndarray  # array rows used by the tile's fold
    used_c: np.ndarray  # array columns used by the tile's fold
    length: np.ndarray  # streamed elements in the tile's chunk
    first: np.ndarray  # bool: the fold's first chunk (pays fill and drain)
    last: np.ndarray  # bool: the fold's last chunk

    @property
    def shape(self) -> tuple[int, ...]:
        return self.length.shape

    @property
    def algorithmic(self) -> np.ndarray:
        return self.length * self.used_r * self.used_c


def grid_of(mp: Mapping) -> Grid:
    """The tile grid of a (ws or os) mapping, in loop order."""
    rows_used, cols_used = _blocks(mp.row_dim, mp.rows), _blocks(mp.col_dim, mp.cols)
    stream = _blocks(mp.stream_dim, mp.stream_chunk)
    ones = np.ones((len(cols_used), len(rows_used), len(stream)), np.int64)
    first = np.zeros(ones.shape, bool)
    first[:, :, 0] = True
    last = np.zeros(ones.shape, bool)
    last[:, :, -1] = True
    return Grid(rows_used[None, :, None] * ones, cols_used[:, None, None] * ones,
                stream[None, None, :] * ones, first, last)


TILES_PER_CHUNK = 1 << 18  # tiles costed at once by tile_chunks (≈ 150 MB of per-tile arrays)


def tile_chunks(a: np.ndarray | None, b: np.ndarray | None, need: np.ndarray | None, mp: Mapping,
                features: Features, resident: dict[str, bool] | None = None,
                max_tiles: int | None = None, memo: dict | None = None) -> Iterator[TileCosts]:
    """:func:`tile_costs` of one GEMM group in consecutive chunks of at most ``max_tiles`` (default
    ``TILES_PER_CHUNK``) tiles, in loop order; concatenated, the chunks equal ``tile_costs`` of
    the whole group exactly.

    A chunk is whole column folds (the outermost loop: ``cols`` columns of the output, ``n`` in ws
    and os, ``m`` in is) or, where one column fold has more tiles than ``max_tiles``, a range of
    its row folds (``rows`` rows of ``k`` in ws and is, of ``m`` in os); a single row fold's
    stream chunks are never split. Each chunk is the same tile model on the operands' slices.
    ``memo`` (a dict kept across a layer's passes) shares what they compute from the same operand
    memory, e.g. an operand's non-zeros per row fold.
    """
    limit = TILES_PER_CHUNK if max_tiles is None else max_tiles
    per_row = max(mp.chunks, 1)
    per_fold = max(mp.row_folds, 1) * per_row
    cols, rows = max(mp.col_folds, 1), max(mp.row_folds, 1)
    col_step = max(1, limit // per_fold)
    row_step = rows if per_fold <= limit else max(1, limit // per_row)
    if col_step >= cols and row_step >= rows:
        yield tile_costs(a, b, need, mp, features, resident, memo=memo)
        return
    memo = {} if memo is None else memo  # what the chunks share: reductions of the operand they all read
    # the axes of (a, b, need) that the column and the row folds cut
    col_cut = {"ws": ("b", 1), "os": ("b", 1), "is": ("a", 0)}[mp.dataflow]
    row_cut = {"ws": (("a", 1), ("b", 0)), "is": (("a", 1), ("b", 0)), "os": (("a", 0),)}[mp.dataflow]
    ops = {"a": a, "b": b}
    for c0 in range(0, cols, col_step):
        c_lo, c_hi = c0 * mp.cols, min(mp.col_dim, (c0 + col_step) * mp.cols)
        sub_ops = dict(ops)
        op, axis = col_cut
        if sub_ops[op] is not None:
            sub_ops[op] = sub_ops[op][:, c_lo:c_hi] if axis == 1 else sub_ops[op][c_lo:c_hi]
        sub_need = None if need is None else (need[c_lo:c_hi] if mp.dataflow == "is" else need[:, c_lo:c_hi])
        col_dim = {"ws": "n", "os": "n", "is": "m"}[mp.dataflow]
        col_mp = replace(mp, **{col_dim: c_hi - c_lo})
        for r0 in range(0, rows, row_step):
            r_lo, r_hi = r0 * mp.rows, min(mp.row_dim, (r0 + row_step) * mp.rows)
            if row_step >= rows:
                yield tile_costs(sub_ops["a"], sub_ops["b"], sub_need, col_mp, features, resident, (c0, 0),
                                 memo=memo)
                continue
            cut = dict(sub_ops)
            for op, axis in row_cut:
                if cut[op] is not None:
                    cut[op] = cut[op][:, r_lo:r_hi] if axis == 1 else cut[op][r_lo:r_hi]
            row_need = sub_need if (sub_need is None or mp.dataflow != "os") else sub_need[r_lo:r_hi]
            row_dim = {"ws": "k", "is": "k", "os": "m"}[mp.dataflow]
            row_mp = replace(col_mp, **{row_dim: r_hi - r_lo})
            yield tile_costs(cut["a"], cut["b"], row_need, row_mp, features, resident, (c0, r0), rows)


def tile_costs(a: np.ndarray | None, b: np.ndarray | None, need: np.ndarray | None, mp: Mapping,
               features: Features, resident: dict[str, bool] | None = None,
               origin: tuple[int, int] = (0, 0), row_folds: int | None = None,
               memo: dict | None = None) -> TileCosts:
    """Costs of every tile of one GEMM group.

    Args:
        a, b: bool operand masks ``(M, K)`` and ``(K, N)``; ``None`` with dense features.
        need: bool ``(M, N)`` needed outputs, or None (all).
        resident: per operand, whether all of it stays in its buffer during the pass (it is
            fetched from DRAM once instead of once per outer fold).
        origin: the indices of ``mp``'s first column fold and first row fold, and ``row_folds``
            the row folds of the whole GEMM, when ``mp`` covers a part of a GEMM's folds
            (:func:`tile_chunks`).
        memo: reductions of an operand that several calls read whole (``tile_chunks``' column
            chunks all read the same ``a`` in ws and os), computed once.
    """
    res = {"a": False, "b": False, "c": False, **(resident or {})}
    if mp.dataflow == "is":  # IS on A·B is WS on Bᵀ·Aᵀ with the operands' roles swapped
        swapped = Mapping("ws", mp.rows, mp.cols, mp.n, mp.k, mp.m, mp.stream_chunk)
        t = _ws(None if b is None else b.T, None if a is None else a.T, None, swapped,
                replace(features.swapped(), input_rereads=1), {"a": res["b"], "b": res["a"], "c": res["c"]},
                origin, row_folds)
        for name in ("buf_read", "buf_read_nz", "dram_read", "dram_read_nz"):
            d = getattr(t, name)
            setattr(t, name, {{"a": "b", "b": "a"}.get(k, k): v for k, v in d.items()})
        return t
    if mp.dataflow == "ws":
        return _ws(a, b, need, mp, features, res, origin, row_folds, memo)
    return _os(a, b, need, mp, features, res, origin, memo)


def _ws(a, b, need, mp: Mapping, f: Features, res: dict[str, bool], origin: tuple[int, int] = (0, 0),
        row_folds: int | None = None, memo: dict | None = None) -> TileCosts:
    r, c, s = mp.rows, mp.cols, mp.stream_chunk
    g = grid_of(mp)
    NF, KF, CH = g.shape
    grid = np.ones(g.shape, np.int64)
    used_r, used_c, length, first, algorithmic = g.used_r, g.used_c, g.length, g.first, g.algorithmic
    if f.dense:
        t = length
        actual, a_nz, b_nz = algorithmic, length * used_r, used_r * used_c
        fold_alive = np.ones_like(grid, dtype=bool)
        if "a" in f.count and a is not None:  # a compressed format moves the non-zeros only
            acol = _shared(memo, f"acol{s}", a, lambda: block_sum(a, 0, s))  # (CH, K)
            a_nz = np.pad(acol, ((0, 0), (0, KF * r - mp.k))).reshape(CH, KF, r).sum(2).T[None]  # (1, KF, CH)
        if "b" in f.count and b is not None:
            brow = block_sum(b, 1, c)  # (K, NF)
            b_nz = np.pad(brow, ((0, KF * r - mp.k), (0, 0))).reshape(KF, r, NF).sum(1).T[:, :, None]
    else:
        acol = _shared(memo, f"acol{s}", a, lambda: block_sum(a, 0, s))  # (CH, K): non-zeros per chunk and k
        brow = block_sum(b, 1, c)  # (K, NF): non-zeros per k and column fold
        acol3 = np.pad(acol, ((0, 0), (0, KF * r - mp.k))).reshape(CH, KF, r)
        brow3 = np.pad(brow, ((0, KF * r - mp.k), (0, 0))).reshape(KF, r, NF)
        pairs = np.einsum("hfr,frn->nfh", acol3, brow3)  # (NF, KF, CH) a∧b pairs
        a_nz = np.broadcast_to(acol3.sum(2).T[None], grid.shape)  # (1, KF, CH)
        b_nz = np.broadcast_to(brow3.sum(1).T[:, :, None], grid.shape)  # (NF, KF, 1)
        fold_alive = ~(("b" in f.skip) & (b_nz == 0))
        if f.pe_skip:
            busy = np.einsum("hfr,frn->nfhr", acol3, (brow3 > 0).astype(np.int64))
            t = busy.max(axis=3)  # slowest PE: max over k of (chunk non-zeros of A column k)
            actual = pairs
        else:
            if "a" in f.skip:
                nzrow = _shared(memo, f"nzrow{r},{s}", a, lambda: block_sum(block_sum(a, 1, r) > 0, 0, s))
                t = np.broadcast_to(nzrow.T[None], grid.shape).copy()  # (CH, KF) non-zero rows
            else:
                t = length.copy()
            actual = pairs if f.gate else t * used_r * used_c
    t = np.where(fold_alive, t, 0)
    attempted = t * used_r * used_c if not f.pe_skip else actual
    actual = np.where(fold_alive, actual, 0)
    cycles = np.where(fold_alive, t + np.where(first, mp.fill_cycles, 0), 0)
    skipped = algorithmic - (attempted if not f.pe_skip else actual) * fold_alive
    gated = (attempted - actual) * fold_alive if not f.pe_skip else np.zeros_like(grid)
    a_sent = np.where(fold_alive, t * used_r if not f.pe_skip else length * used_r, 0) * f.input_rereads
    b_first = np.where(first & fold_alive, used_r * used_c, 0)
    out = _finish(cycles, algorithmic, actual, gated, skipped)
    out.buf_read = {"a": a_sent, "b": b_first}
    out.buf_read_nz = {"a": np.where(fold_alive, a_nz, 0), "b": np.where(first & fold_alive, b_nz, 0)}
    # DRAM: B tiles once; A chunks per tile unless A stays resident (then in the first column fold)
    first_col = (np.arange(origin[0], origin[0] + NF)[:, None, None] == 0) & (grid > 0)
    fetch_a = first_col if res["a"] else np.ones_like(grid, dtype=bool)
    out.dram_read = {"a": np.where(fetch_a, length * used_r, 0), "b": np.where(first, used_r * used_c, 0)}
    out.dram_read_nz = {"a": np.where(fetch_a, np.broadcast_to(a_nz, grid.shape), 0),
                        "b": np.where(first, np.broadcast_to(b_nz, grid.shape), 0)}
    kf_all = KF if row_folds is None else row_folds  # row folds of the whole GEMM
    k_index = np.arange(origin[1], origin[1] + KF)[None, :, None]
    last_k = k_index == kf_all - 1
    c_out = length * used_c
    spill = not res["c"] and kf_all > 1  # partial sums of all chunks do not stay on chip
    out.dram_write = {"c": np.where(last_k | spill, c_out, 0)}
    if spill:
        out.dram_read["c"] = np.where(k_index > 0, c_out, 0)
        out.dram_read_nz["c"] = out.dram_read["c"]
    out.buf_read["c"] = np.zeros_like(c_out)
    out.buf_read_nz["c"] = np.zeros_like(c_out)
    out.dram_write["c_array"] = c_out  # array → buffer writes (psums of every fold)
    return _flat(out)


def _os(a, b, need, mp: Mapping, f: Features, res: dict[str, bool],
        origin: tuple[int, int] = (0, 0), memo: dict | None = None) -> TileCosts:
    r, c, s = mp.rows, mp.cols, mp.stream_chunk
    g = grid_of(mp)
    NF, MF, CH = g.shape
    grid = np.ones(g.shape, np.int64)
    used_r, used_c, length, first, last = g.used_r, g.used_c, g.length, g.first, g.last
    algorithmic = g.algorithmic
    if f.dense:
        t, actual = length, algorithmic
        a_nz, b_nz = used_r * length, length * used_c
        a_sent, b_sent = a_nz, b_nz
        if "a" in f.count and a is not None:  # a compressed format moves the non-zeros only
            acnt = _shared(memo, f"acnt{r}", a, lambda: block_sum(a, 0, r))  # (MF, K)
            a_nz = block_sum(acnt, 1, s)[None]  # (1, MF, CH)
        if "b" in f.count and b is not None:
            b_nz = block_sum(block_sum(b, 1, c), 0, s).T[:, None, :]  # (NF, 1, CH)
    else:
        if f.pe_skip:  # a float32 matmul of the 0/1 operands, cast slab by slab
            t, actual, a3, b3 = os_pe_work(a, b, need, r, c, s, CH)
        else:
            acnt = _shared(memo, f"acnt{r}", a, lambda: block_sum(a, 0, r))  # (MF, K) per row fold and k
            bcnt = block_sum(b, 1, c)  # (K, NF)
            a3 = block_sum(acnt, 1, s)  # (MF, CH)
            b3 = block_sum(bcnt, 0, s)  # (CH, NF)
        a_nz = np.broadcast_to(a3[None], grid.shape)
        b_nz = np.broadcast_to(b3.T[:, None, :], grid.shape)
        if f.pe_skip:
            a_sent, b_sent = used_r * length, length * used_c
        else:
            pairs = _chunk_products(acnt.astype(np.float64), bcnt.astype(np.float64), s, 0, CH)
            pairs = np.rint(pairs).astype(np.int64).transpose(2, 1, 0)  # (NF, MF, CH)
            # a K step runs unless a skipped operand's slice is all zero: the live steps of a tile
            # are a 0/1 matrix product over the chunk, exact in float64
            a_live = (acnt > 0) if "a" in f.skip else np.ones(acnt.shape, bool)
            b_live = (bcnt > 0) if "b" in f.skip else np.ones(bcnt.shape, bool)
            t = _chunk_products(a_live.astype(np.float64), b_live.astype(np.float64), s, 0, CH)
            t = np.rint(t).astype(np.int64).transpose(2, 1, 0)  # (NF, MF, CH)
            actual = pairs if f.gate else t * used_r * used_c
            a_sent, b_sent = t * used_r, t * used_c
    alive = np.ones((1, 1, 1), bool)  # (NF, MF, 1): folds that run
    if f.skip_out and not f.pe_skip and need is not None:  # output blocks without a needed output
        alive = (block_sum(block_sum(need, 0, r), 1, c) > 0).T[:, :, None]
        t, actual = np.where(alive, t, 0), np.where(alive, actual, 0)
        a_sent, b_sent = np.where(alive, a_sent, 0), np.where(alive, b_sent, 0)
    attempted = actual if f.pe_skip else t * used_r * used_c
    cycles = np.where(alive, t + np.where(first, mp.fill_cycles, 0), 0)
    gated = np.zeros_like(grid) if f.pe_skip else attempted - actual
    skipped = algorithmic - attempted
    out = _finish(cycles, algorithmic, actual, gated, skipped)
    out.buf_read = {"a": a_sent, "b": b_sent, "c": np.zeros_like(grid)}
    out.buf_read_nz = {"a": np.broadcast_to(a_nz, grid.shape), "b": np.broadcast_to(b_nz, grid.shape),
                       "c": np.zeros_like(grid)}
    first_col = (np.arange(origin[0], origin[0] + NF)[:, None, None] == 0) & (grid > 0)
    first_row = (np.arange(origin[1], origin[1] + MF)[None, :, None] == 0) & (grid > 0)
    fetch_a = first_col if res["a"] else np.broadcast_to(alive, grid.shape)
    fetch_b = first_row if res["b"] else np.broadcast_to(alive, grid.shape)
    out.dram_read = {"a": np.where(fetch_a, used_r * length, 0), "b": np.where(fetch_b, length * used_c, 0)}
    out.dram_read_nz = {"a": np.where(fetch_a, np.broadcast_to(a_nz, grid.shape), 0),
                        "b": np.where(fetch_b, np.broadcast_to(b_nz, grid.shape), 0)}
    c_out = np.where(last & alive, used_r * used_c, 0)
    out.dram_write = {"c": c_out, "c_array": c_out}
    return _flat(out)


def _chunk_products(x: np.ndarray, y: np.ndarray, s: int, h0: int, h1: int) -> np.ndarray:
    """``x[:, K_h] @ y[K_h, :]`` for stream chunks ``h0 ≤ h < h1`` of ``s`` (the last may be
    shorter), as one batched matmul: ``(h1 − h0, X, Y)`` in ``x``'s dtype."""
    k0, k1 = h0 * s, min(x.shape[1], h1 * s)
    full = (k1 - k0) // s
    out = np.empty((h1 - h0, x.shape[0], y.shape[1]), x.dtype)
    if full:
        xs = x[:, k0 : k0 + full * s].reshape(x.shape[0], full, s).transpose(1, 0, 2)
        np.matmul(xs, y[k0 : k0 + full * s].reshape(full, s, y.shape[1]), out=out[:full])
    if full < h1 - h0:
        np.matmul(x[:, k0 + full * s : k1], y[k0 + full * s : k1], out=out[full])
    return out


def _shared(memo: dict | None, name: str, x: np.ndarray, compute: Callable[[], Any]) -> Any:
    """``compute()`` of the array ``x``, kept in ``memo`` for every view of the same memory (``is``
    hands each chunk a fresh transposed view of the operand it does not cut); the memo holds ``x``,
    so that memory stays the same while the memo lives."""
    if memo is None:
        return compute()
    key = (name, x.__array_interface__["data"][0], x.shape, x.strides, x.dtype.str)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = (x, compute())
    return hit[1]


def _finish(cycles, algorithmic, actual, gated, skipped) -> TileCosts:
    return TileCosts(*(np.asarray(v, dtype=np.int64) for v in (cycles, algorithmic, actual, gated, skipped)))


def _flat(t: TileCosts) -> TileCosts:
    """Flatten the (col fold, row fold, chunk) grid into tile order."""
    shape = t.compute_cycles.shape
    for name in ("compute_cycles", "algorithmic", "actual", "gated", "skipped"):
        setattr(t, name, np.ascontiguousarray(getattr(t, name), dtype=np.int64).reshape(-1))
    for name in ("buf_read", "buf_read_nz", "dram_read", "dram_read_nz", "dram_write"):
        flat = {k: np.ascontiguousarray(np.broadcast_to(v, shape), dtype=np.int64).reshape(-1)
                for k, v in getattr(t, name).items()}
        setattr(t, name, flat)
    return t
