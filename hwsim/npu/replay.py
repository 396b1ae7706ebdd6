"""Edge-NPU replay of one layer: mapping, tile costs, traffic, timing, energy, dense baseline.

For every pass: operands from the masks (``hwsim.workload``), a mapping per group (``mapping``),
vectorized tile costs (``tiles``), bytes per level (``traffic``), transfer cycles per tile from the
links, a timing back end (``hwsim.engines``), energy from the table, and the same again with every
sparse feature off: the dense baseline. Counts-only iterations replay in expected-value mode.

On a machine with ``sparse.structured`` (N:M on ``b``), a weight operand whose mask is N:M along K
is compressed first (``structured``): the array runs ``M × K' × N``; a mask that is not N:M runs
uncompressed. Counts-only iterations are not compressed (no mask to compress).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from archs import Architecture
from archs.units import format_size
from traces.format.layer import LayerSpec

from .. import embedding, vector
from ..engines import BACKEND_NAMES
from ..errors import MappingError
from ..layer_input import LayerInput
from ..pricing import ratio
from ..update import layer_update_row, state_tensors, update_ops_per_weight, update_row
from ..vector import VectorWork, compressed_weight_bytes, gemm_pass_work, transpose_work
from ..workload import effectual, operand_kind, operands
from . import tiles
from .expected import expected_tile_costs
from .mapping import Mapping, buffers, map_gemm
from .structured import is_nm, nm_compress
from .tiles import DENSE, Features, TileCosts, tile_chunks
from .timing import PassTimer, buffer_bytes_per_cycle, transfer_free

# Measured peak memory per tile of a chunk (tile costs, traffic, transfer cycles): 510-540 bytes on
# eyeriss-v2-pe layers of 0.45-1.8 M tiles (ws and os, 2 cores); 600 leaves a margin. Tiles are
# costed and timed in chunks of at most TILES_PER_CHUNK (or one column fold, if larger).
BYTES_PER_TILE = 600


def context(arch: Architecture, manifest: dict[str, Any], *, dataflow: str | None, backend: str,
            stream_chunk: int | None, memory_budget_bytes: float | None = None) -> _Context:
    """The replay context of an edge-NPU machine (raises MappingError when it has no PE array).
    ``memory_budget_bytes``: a pass whose estimated peak memory exceeds it is refused up front."""
    if arch.compute is None:
        map_gemm(1, 1, 1, arch)  # raises the family's MappingError
    if backend not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKEND_NAMES)}")
    ctx = _Context(arch, dataflow or arch.compute.dataflow, backend, stream_chunk, manifest)
    ctx.memory_budget_bytes = memory_budget_bytes
    return ctx


class _Context:
    def __init__(self, arch: Architecture, dataflow: str, backend: str, chunk: int | None,
                 manifest: dict[str, Any]) -> None:
        self.arch, self.dataflow, self.backend, self.chunk = arch, dataflow, backend, chunk
        self.features = Features.of(arch)
        # N:M per layer, as the trace declares it (a SCALE-Sim topology's Sparsity column, recorded by
        # `trace synth --scalesim-topology`): an N:M machine compresses each layer at its own n:m
        declared = manifest["method"].get("params", {}).get("nm") if self.features.nm else None
        self.layer_nm = {str(k): (int(v[0]), int(v[1])) for k, v in (declared or {}).items()}
        self.method = manifest["method"]["name"]
        self.state_tensors = state_tensors(manifest)
        self.update_ops = update_ops_per_weight(manifest)  # element ops per weight of a step
        self.counted = bool(manifest.get("vector_ops"))  # non-GEMM work counted by the trace
        self.meta = {"dataflow": dataflow}
        p = arch.compute.precision
        self.bits = {"activation": p.activation_bits, "weight": p.weight_bits, "gradient": p.gradient_bits}
        self.systolic = arch.compute.microarchitecture == "systolic"
        self.baselines: dict[tuple, dict] = {}  # dense baselines, reused across iterations …
        self.baseline_locks: dict[tuple, threading.Lock] = {}  # … computed once even when two workers
        self.lock = threading.Lock()  # need the same one at once (layers of one shape side by side)
        # Where no transfer takes time and the buffers feed the array at any rate, the schedule is
        # the sum of the tiles' compute cycles and every other count a sum over tiles, so a fold's
        # stream chunks are merged into one entry — exact as long as each count is a sum over the
        # chunks: not a per-PE-skipping fold's slowest PE (unless the array is a single PE) and not
        # a csr/csc pointer count (rounded up per tile).
        free = transfer_free(arch) and not buffer_bytes_per_cycle(arch)
        self.merge_dense = free
        single_pe = arch.compute.rows * arch.compute.cols == 1
        self.merge_sparse = free and (not self.features.pe_skip or single_pe) \
            and not any(f.format in ("csr", "csc") for f in arch.sparse.formats)


def _features(ctx: _Context, spec: LayerSpec) -> Features:
    """The machine's features for this layer: its declared N:M (``ctx.layer_nm``) if it has one."""
    nm = ctx.layer_nm.get(spec.name)
    if nm is None:
        return ctx.features
    rereads = nm[1] // nm[0] if ctx.arch.sparse.structured.ws_input_rereads else 1
    return replace(ctx.features, nm=nm, input_rereads=rereads)


def layer_rows(ctx: _Context, spec: LayerSpec, it: LayerInput, li: int, passes: Sequence[str]) -> list[dict]:
    """Report rows of one layer of one iteration, one per pass that has work."""
    if not it.has_masks:
        return _expected_rows(ctx, spec, it, li, passes)
    masks = {t: it.mask(li, t) for t in ("x", "w", "y_sel", "dy", "dw_needed")}
    stats = it.layer_stats(li)
    cache: dict = {}  # the layer's im2col and dY rows, shared by the passes
    memo: dict = {}  # what the tile model computes from the same operand memory in several passes
    rows = []
    for pass_ in passes:
        if pass_ == "update":
            row = layer_update_row(ctx.arch, spec, it, li, weight_bits=ctx.bits["weight"],
                                   gradient_bits=ctx.bits["gradient"], state=ctx.state_tensors,
                                   ops_per_weight=ctx.update_ops)
            if row is not None:
                rows.append(row)
            continue
        need = {"forward": ("x", "w"), "backward_data": ("dy", "w"),
                "backward_weight": ("x", "dy")}[pass_]
        if any(masks[t] is None for t in need):
            continue
        if pass_ == "backward_data" and it.count(li, "dx") is None:
            continue  # nothing upstream needs this layer's input gradient (e.g. the first layer)
        if pass_ == "backward_weight" and it.count(li, "dw") is None:
            continue
        row = _gemm_row(ctx, spec, pass_, masks, it.mask_batch, stats, cache, memo)
        row.update(iteration=it.index, layer=spec.name, simulated_batch=it.mask_batch, batch=it.batch,
                   mode="exact")
        rows.append(row)
    return rows


PASS_TENSORS = {"forward": ("x", "w", "y_sel"), "backward_data": ("dy", "w", None),
                "backward_weight": ("x", "dy", "dw_needed")}


def _expected_rows(ctx: _Context, spec: LayerSpec, it: Any, li: int, passes: Sequence[str]) -> list[dict]:
    """Rows of a counts-only iteration: expected tile costs from the tensors' densities."""
    def density(t: str | None) -> float:
        if t is None:
            return 1.0
        count = it.count(li, t)
        return 1.0 if count is None else count / max(spec.numel(t, it.batch), 1)

    rows = []
    for pass_ in passes:
        if pass_ == "update":
            if spec.has_weight and it.count(li, "dw") is not None:
                rows.append({**_update(ctx, spec, it.index), "mode": "expected"})
            continue
        a_t, b_t, need_t = PASS_TENSORS[pass_]
        if it.count(li, a_t) is None or it.count(li, b_t) is None:
            continue
        if (pass_ == "backward_data" and it.count(li, "dx") is None) or \
                (pass_ == "backward_weight" and it.count(li, "dw") is None):
            continue
        g = spec.gemm(pass_, it.batch)
        eb = {op: ctx.bits[kind] / 8 for op, kind in operand_kind(spec, pass_).items()}
        mp = map_gemm(g.m, g.k, g.n, ctx.arch, ctx.dataflow, eb, ctx.chunk)
        res = _residency(mp, eb, buffers(ctx.arch))
        d_a, d_b, d_need = density(a_t), density(b_t), density(need_t)
        budget = ctx.memory_budget_bytes
        if budget is not None and mp.n_tiles * BYTES_PER_TILE > budget:  # expected costs are not chunked
            raise MappingError(
                f"layer {spec.name}, {pass_} (counts only): {mp.n_tiles:,} expected tiles need about "
                f"{format_size(mp.n_tiles * BYTES_PER_TILE)}, over the memory budget of "
                f"{format_size(budget)}; record masks for this iteration, use a larger array or stream "
                "chunk, or raise --memory-budget")
        timer = _timer(ctx, eb, [(mp, res)], dense_baseline=False)
        sparse = expected_tile_costs(mp, ctx.features, d_a, d_b, d_need, res)
        for _ in range(g.groups):
            timer.add(sparse)
        vec = gemm_pass_work(spec, pass_, it.batch, ctx.method, it.layer_stats(li), ctx.counted)
        out = timer.row(vec)
        base = _baseline(ctx, pass_, out, True, eb, vec, [(mp, res)] * g.groups)
        row = _compare(ctx, pass_, out, base)
        row["effectual_macs"] = row["effectual_macs_gemm_view"] = round(g.macs * d_a * d_b * d_need)
        row.update(iteration=it.index, layer=spec.name, simulated_batch=it.batch, batch=it.batch,
                   mode="expected")
        rows.append(row)
    return rows


def _gemm_row(ctx: _Context, spec: LayerSpec, pass_: str, masks: dict, batch: int, stats: dict,
              cache: dict, memo: dict | None = None) -> dict:
    arch = ctx.arch
    eb = {op: ctx.bits[kind] / 8 for op, kind in operand_kind(spec, pass_).items()}
    # output-stationary per-PE skipping multiplies row slabs of the operands (cast to float32 a slab
    # at a time): the im2col is gathered column-major, its faster order
    features = _features(ctx, spec)
    os_pe = features.pe_skip and not features.nm and (ctx.dataflow or arch.compute.dataflow) == "os"
    max_tiles = _chunk_tiles(ctx, spec, pass_, batch, eb)
    groups = operands(spec, pass_, masks, cache, "F" if os_pe else "C")
    bufs = buffers(arch)
    ran_nm = None  # the N:M the array ran b compressed at, if it did
    sparse, dense = [], []  # per group: (a, b, need, mapping, residency) as run; (mapping, residency) dense
    for g in groups:
        m, k, n = g.dims
        try:
            mp = map_gemm(m, k, n, arch, ctx.dataflow, eb, ctx.chunk)
        except MappingError as exc:
            raise MappingError(f"layer {spec.name}, {pass_} ({m}×{k}×{n}): {exc}") from None
        res = _residency(mp, eb, bufs)
        a, b, mp_run, res_run = g.a, g.b, mp, res
        nm = features.nm
        if nm and operand_kind(spec, pass_)["b"] == "weight" and is_nm(g.b, *nm):
            a, b = nm_compress(g.a, g.b, *nm)  # the array runs M × K' × N (K' ≈ K·n/m)
            ran_nm = nm
            mp_run = map_gemm(m, b.shape[0], n, arch, ctx.dataflow, eb, ctx.chunk)
            res_run = _residency(mp_run, eb, bufs)
        sparse.append((a, b, g.need, mp_run, res_run))
        dense.append((mp, res))
    vec = gemm_pass_work(spec, pass_, batch, ctx.method, stats, ctx.counted)
    base_vec = vec
    if pass_ == "backward_data" and spec.has_weight:  # W the other way: a compressed weight is transposed
        w_nnz = int(masks["w"].sum())
        moved = compressed_weight_bytes(arch, spec, w_nnz, eb["b"])
        if moved:
            t = transpose_work(moved, w_nnz)
            vec = VectorWork(vec.ops + t.ops, vec.offchip_read_bytes + t.offchip_read_bytes,
                             vec.offchip_write_bytes + t.offchip_write_bytes)
    timer = _timer(ctx, eb, [(mp, res) for *_, mp, res in sparse], dense_baseline=False)
    for a, b, need, mp, res in sparse:
        for t in _tile_chunks(a, b, need, mp, features, res, max_tiles, ctx.merge_sparse, memo):
            timer.add(t)
    out = timer.row(vec)
    base = _baseline(ctx, pass_, out, vec is base_vec, eb, base_vec, dense,
                     max_tiles)
    row = _compare(ctx, pass_, out, base)
    row["effectual_macs"], row["effectual_macs_gemm_view"] = effectual(spec, pass_, masks)
    if ran_nm is not None:
        row["structured_nm"] = f"{ran_nm[0]}:{ran_nm[1]}"
    return row


def _tile_chunks(a: np.ndarray | None, b: np.ndarray | None, need: np.ndarray | None, mp: Mapping,
                 features: Features, res: dict[str, bool], max_tiles: int | None,
                 merge: bool, memo: dict | None = None) -> Iterator[TileCosts]:
    """The group's tile costs in chunks; with ``merge``, one entry per fold standing for the fold's
    stream chunks (the same tile model with one chunk of the whole streamed dimension)."""
    if not merge or mp.chunks <= 1:
        yield from tile_chunks(a, b, need, mp, features, res, max_tiles, memo)
        return
    whole = replace(mp, stream_chunk=max(mp.stream_dim, 1))
    for t in tile_chunks(a, b, need, whole, features, res, max_tiles, memo):
        t.merged_tiles = t.n * mp.chunks
        yield t


def _chunk_tiles(ctx: _Context, spec: LayerSpec, pass_: str, batch: int, eb: dict[str, float]) -> int:
    """Tiles to cost and time at once in this pass: ``TILES_PER_CHUNK``, or fewer so that a chunk
    (× BYTES_PER_TILE) and the operand masks stay within the memory budget. A pass whose single
    row fold (its stream chunks are never split) does not fit is refused up front, before anything
    large is allocated, with the estimate and the fixes."""
    limit = tiles.TILES_PER_CHUNK
    budget = ctx.memory_budget_bytes
    if budget is None:
        return limit
    g = spec.gemm(pass_, batch)
    masks = 2 * g.m * g.k * g.groups  # the operand A and the needed outputs (bool)
    try:
        mp = map_gemm(g.m, g.k, g.n, ctx.arch, ctx.dataflow, eb, ctx.chunk)
    except MappingError:
        return limit  # the replay itself reports why it does not map
    least = max(mp.chunks, 1)  # one row fold's stream chunks
    need = least * BYTES_PER_TILE + masks
    if need > budget:
        raise MappingError(
            f"layer {spec.name}, {pass_}: one row fold of {least:,} tiles and the operand masks need "
            f"about {format_size(need)}, over the memory budget of {format_size(budget)}; replay fewer "
            "samples (record with --mask-samples), use a larger array or stream chunk, or raise "
            "--memory-budget")
    return max(least, min(limit, int((budget - masks) // BYTES_PER_TILE)))


def _baseline(ctx: _Context, pass_: str, out: dict, same_work: bool, eb: dict[str, float],
              vec: VectorWork, dense: list[tuple[Mapping, dict[str, bool]]],
              max_tiles: int | None = None) -> dict:
    """The dense baseline of a pass: the replay itself on a machine without sparse features
    (same tiles, bytes and work); otherwise computed once per distinct set of its inputs (the
    groups' mappings and residency, bytes per element, non-GEMM work) — it does not depend on the
    masks — and reused across iterations and by layers of the same shape (ResNet-18 has 21
    layers of 10 shapes). ``dense``: each group's mapping and residency."""
    if same_work and ctx.features.dense and not ctx.arch.sparse.formats:
        return out
    key = (pass_, tuple((mp, tuple(sorted(res.items()))) for mp, res in dense), tuple(sorted(eb.items())),
           vec, max_tiles)
    with ctx.lock:
        lock = ctx.baseline_locks.setdefault(key, threading.Lock())
    with lock:  # a worker that needs a baseline another is computing waits for it, freeing its core
        if key not in ctx.baselines:
            timer = _timer(ctx, eb, dense, dense_baseline=True)
            for mp, res in dense:
                for t in _tile_chunks(None, None, None, mp, DENSE, res, max_tiles, ctx.merge_dense):
                    timer.add(t)
            ctx.baselines[key] = timer.row(vec)
    return ctx.baselines[key]


def _timer(ctx: _Context, eb: dict[str, float], runs: list[tuple[Mapping, dict[str, bool]]], *,
           dense_baseline: bool) -> PassTimer:
    """A pass timer for these groups' mappings: partial sums spill (and are read back) in ws and
    is when they do not stay on chip across the row folds."""
    spills = any(mp.dataflow in ("ws", "is") and not res["c"] and mp.row_folds > 1 for mp, res in runs)
    return PassTimer(ctx.arch, ctx.backend, eb, dense_baseline=dense_baseline,
                     read_operands={"a", "b"} | ({"c"} if spills else set()), systolic=ctx.systolic)


def _compare(ctx: _Context, pass_: str, out: dict, base: dict) -> dict:
    """A report row: the replay, its dense baseline, and the ratios."""
    row = {"pass": pass_, **out, **{f"dense_{k}": v for k, v in base.items() if k in _BASE_KEYS}}
    row["speedup"] = ratio(base["cycles"], out["cycles"])
    row["energy_saving"] = ratio(base["energy_pj"], out["energy_pj"])
    pes = ctx.arch.compute.rows * ctx.arch.compute.cols
    row["utilization"] = out["actual_macs"] / max(out["cycles"] * pes, 1)
    return row


_BASE_KEYS = ("cycles", "gemm_cycles", "energy_pj", "compute_cycles", "stall_cycles")


def _residency(mp: Any, eb: dict[str, float], bufs: dict[str, tuple[str, float]]) -> dict[str, bool]:
    def fits(op: str, elems: float) -> bool:
        cap = bufs[op][1]
        return cap <= 0 or elems * eb[op] <= cap

    stream_out = {"ws": mp.m, "is": mp.n, "os": mp.cols}[mp.dataflow]
    return {"a": fits("a", mp.m * mp.k), "b": fits("b", mp.k * mp.n), "c": fits("c", stream_out * mp.cols)}


def _update(ctx: _Context, spec: LayerSpec, index: int, w_nnz: int = 0, changed: bool = False) -> dict:
    return update_row(ctx.arch, spec, index, weight_bits=ctx.bits["weight"],
                      gradient_bits=ctx.bits["gradient"], state=ctx.state_tensors, w_nnz=w_nnz,
                      ops_per_weight=ctx.update_ops,
                      mask_changed=changed)


def embedding_rows(ctx: _Context, spec: LayerSpec, it: LayerInput, li: int,
                   passes: Sequence[str]) -> list[dict]:
    """An embedding layer (``hwsim.embedding``): gather and scatter-add on the NPU's vector unit
    through its DRAM; the table's update as any layer's."""
    def update() -> dict | None:
        return layer_update_row(ctx.arch, spec, it, li, weight_bits=ctx.bits["weight"],
                                gradient_bits=ctx.bits["gradient"], state=ctx.state_tensors,
                                ops_per_weight=ctx.update_ops)
    return embedding.embedding_rows(ctx.arch, spec, it, li, passes, element_bytes=ctx.bits["weight"] / 8,
                                    update=update)


def vector_op_rows(ctx: _Context, table: list[dict], batch: int, index: int,
                   passes: Sequence[str]) -> list[dict]:
    """The trace's counted non-GEMM work (``hwsim.vector.vector_op_rows``) on the NPU's vector
    unit, at its activation precision."""
    return vector.vector_op_rows(ctx.arch, table, batch, index, passes, ctx.bits["activation"] / 8)
