"""GPU replay of one layer: per pass, the dense tensor-core GEMM, the sparse paths that apply, the
one that runs, its non-GEMM kernels, energy, and the dense baseline beside it.

Which path runs (report column ``gpu_sparse_path``): ``2:4`` when the weight mask is N:M along the
pass's reduction axis (under ``sparse.unstructured_policy: auto`` only where it is faster than the
dense GEMM, its per-step compression included; ``dense`` and ``sparse`` always take it); otherwise,
under ``sparse.unstructured_policy`` (``auto``: the faster), ``spmm`` for a sparse input operand or
``gathered`` for DSG's output selection, else ``dense``; ``gpu_dense_reason`` says why a pass ran
dense. Kernels of one pass run one after another: cycles = GEMM + non-GEMM kernels + compression
+ gather/scatter. The dense baseline is the same GEMMs with every sparse feature off (dense
tensor-core path, no compression, no gather) and the same non-GEMM kernels.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from archs import Architecture
from traces.format.layer import GemmDims, LayerSpec
from traces.stats.im2col import as_conv, geometry, rows_of

from .. import embedding, vector
from ..energy import pass_energy
from ..errors import MappingError
from ..layer_input import LayerInput
from ..pricing import price, ratio, total_pj
from ..update import layer_update_row, state_tensors, update_ops_per_weight
from ..vector import gemm_pass_work
from ..workload import effectual, operand_counts, operands
from .batched import batched_gemm_cost
from .gemm import GemmCost, Operands, gemm_cost
from .kernels import hbm_bytes_per_cycle, launch_cycles, memory_kernel_cycles
from .products import fused_pass, unfused_softmax
from .sparse import compress_cycles as recompress
from .sparse import crossover_density, gathered_cost, spmm_cost, structured_applies, structured_gemm

PASS_TENSORS = {"forward": ("x", "w"), "backward_data": ("dy", "w"), "backward_weight": ("x", "dy")}


def context(arch: Architecture, manifest: dict[str, Any], *, dataflow: str | None, backend: str,
            stream_chunk: int | None, memory_budget_bytes: float | None = None) -> _Context:
    """The replay context of a GPU-like machine (``dataflow``, ``backend`` and ``stream_chunk`` are
    edge-NPU options and are ignored; so is ``memory_budget_bytes``: GPU tiles are coarse and its
    operand counts need no im2col, so a pass needs little memory)."""
    if arch.gpu is None:
        raise MappingError(f"{arch.name}: a gpu machine needs a gpu section (SMs and tensor cores)")
    return _Context(arch, manifest)


class _Context:
    def __init__(self, arch: Architecture, manifest: dict[str, Any]) -> None:
        self.arch = arch
        self.method = manifest["method"]["name"]
        self.state_tensors = state_tensors(manifest)
        self.update_ops = update_ops_per_weight(manifest)  # element ops per weight of a step
        self.counted = bool(manifest.get("vector_ops"))  # non-GEMM work counted by the trace
        # score-shaped vector ops (scale, mask, softmax, dropout) of the modules whose attention ran
        # through SDPA: the GPU costs them with the attention itself (inside the fused kernel, or as the
        # unfused path's own mask and softmax kernels), so their recorded vector rows are left out
        self.sdpa_score_ops = sdpa_score_ops(manifest)
        self.eb = arch.gpu.element_bits / 8
        self.dense_ops = Operands(self.eb, self.eb, self.eb)
        g = arch.gpu
        self.peak_fma_per_cycle = g.sms * g.tensor_cores_per_sm * g.tensor_core.fma_per_cycle
        self.meta = {"gpu_default_tile": f"{arch.gpu.threadblock_m}x{arch.gpu.threadblock_n}"}


def layer_rows(ctx: _Context, spec: LayerSpec, it: LayerInput, li: int, passes: Sequence[str]) -> list[dict]:
    """Report rows of one layer of one iteration, one per pass that has work."""
    exact = it.has_masks
    stats = it.layer_stats(li)
    masks = {t: it.mask(li, t) for t in ("x", "w", "y_sel", "dy", "dw_needed")} if exact else {}
    rows = []
    for pass_ in passes:
        if pass_ == "update":
            bits = ctx.arch.gpu.element_bits
            row = layer_update_row(ctx.arch, spec, it, li, weight_bits=bits, gradient_bits=bits,
                                   state=ctx.state_tensors, ops_per_weight=ctx.update_ops)
            if row is not None:
                rows.append({**row, "mode": "exact" if exact else "expected"})
            continue
        if any(it.count(li, t) is None for t in PASS_TENSORS[pass_]):
            continue
        if exact and any(masks[t] is None for t in PASS_TENSORS[pass_]):
            continue
        if (pass_ == "backward_data" and it.count(li, "dx") is None) or \
                (pass_ == "backward_weight" and it.count(li, "dw") is None):
            continue
        batch = it.mask_batch if exact else it.batch
        row = _pass_row(ctx, spec, pass_, it, li, masks, batch, stats)
        row.update(iteration=it.index, layer=spec.name, simulated_batch=batch, batch=it.batch,
                   mode="exact" if exact else "expected")
        rows.append(row)
    return rows


def _pass_row(ctx: _Context, spec: LayerSpec, pass_: str, it: LayerInput, li: int, masks: dict,
              batch: int, stats: dict) -> dict:
    """One GEMM pass: operand counts (from masks, or from counts in expected mode), the path that
    runs, the non-GEMM kernel, and the dense baseline beside them."""
    arch, eb = ctx.arch, ctx.eb
    g = spec.gemm(pass_, batch)
    m, k, n = g.m, g.k, g.n
    if masks:  # counts of the operands (no im2col: the GPU model needs only how many non-zeros)
        counts = operand_counts(spec, pass_, masks)
        nnz_a, nnz_b = sum(a for a, _ in counts), sum(b for _, b in counts)
        need = None
        if pass_ == "forward" and masks.get("y_sel") is not None and g.groups == 1 and spec.has_weight:
            if spec.kind in ("conv2d", "linear"):
                need = rows_of(as_conv(spec, "y", masks["y_sel"]), geometry(spec), 0) > 0  # (M, N)
            else:  # a 3-D or transposed conv: its workload's needed outputs
                need = operands(spec, pass_, masks)[0].need
    else:  # counts only: operand densities from the tensors' counts
        a_t, b_t = PASS_TENSORS[pass_]
        nnz_a = round(g.m * g.k * g.groups * it.count(li, a_t) / max(spec.numel(a_t, it.batch), 1))
        nnz_b = round(g.k * g.n * g.groups * it.count(li, b_t) / max(spec.numel(b_t, it.batch), 1))
        need = None
    dense_one = gemm_cost(arch, m, k, n, ctx.dense_ops)
    # a product of two activations is one batched launch over its samples and heads (hwsim/gpu/products.py)
    dense = _grouped(dense_one, g.groups, arch) if spec.has_weight else \
        batched_gemm_cost(arch, g.groups, m, k, n, ctx.dense_ops)
    algorithmic = g.macs
    fused = None if spec.has_weight else fused_pass(arch, spec, pass_, batch)
    out: dict[str, Any] = {"gpu_sparse_path": "dense", "gpu_dense_reason": "", "gpu_sparse_operand": "",
                           "gpu_sparse_density": float("nan"), "gpu_crossover_density": float("nan"),
                           "gpu_compress_cycles": 0, "gpu_pad_cycles": 0, "gpu_convert_cycles": 0,
                           "gpu_gather_cycles": 0, "gpu_recompute_macs": 0, "gpu_pad_macs": 0}
    traffic: dict = defaultdict(float)
    gemm, extra, tc_macs, cuda_macs = dense, 0, algorithmic, 0
    s = arch.sparse.structured
    ok, reason = structured_applies(spec, pass_, masks.get("w"), s)
    if fused is not None:  # one FlashAttention-style kernel for the pair: its baseline is itself
        gemm = dense = fused.cost
        tc_macs, ok = min(fused.macs, algorithmic), True
        out["gpu_sparse_path"], out["gpu_recompute_macs"] = fused.path, fused.recompute_macs
    if ok and fused is None:
        nm = structured_gemm(arch, m, k, n, eb, g.groups)
        nm_gemm = _grouped(nm.gemm, g.groups, arch)
        cyc = read = written = 0
        if it.weight_mask_changed():  # each pass that runs 2:4 compresses its own orientation
            cyc, read, written = recompress(arch, spec.numel("w", 1), eb, 1)
        if arch.sparse.unstructured_policy == "auto" and nm_gemm.cycles + nm.pad_cycles + cyc > dense.cycles:
            ok = False  # the library keeps the dense GEMM where 2:4 does not pay
            padded = f", padding the dense operand to {nm.padded_rows} rows" if nm.pad_cycles else ""
            reason = (f"the dense GEMM ({dense.cycles:,} cycles) is faster than {s.n}:{s.m} "
                      f"({nm_gemm.cycles + nm.pad_cycles + cyc:,} cycles, compression{padded} included)")
        else:
            gemm = nm_gemm
            padded_macs = nm.padded_rows * k * n * g.groups  # the tensor cores multiply padded rows too
            tc_macs = min(padded_macs, (-(-k // s.m)) * s.n * n * nm.padded_rows * g.groups)
            # the padded rows' products are the kernel's work but no algorithmic MACs: not 'actual'
            out["gpu_pad_macs"] = tc_macs - tc_macs * m // nm.padded_rows
            out["gpu_sparse_path"], out["gpu_sparse_operand"] = f"{s.n}:{s.m}", "b"
            out["gpu_compress_cycles"], out["gpu_pad_cycles"] = cyc, nm.pad_cycles
            extra = cyc + nm.pad_cycles
            traffic[(arch.off_chip.name, "b", "data", "read")] += read
            traffic[(arch.off_chip.name, "b", "data", "write")] += written
            traffic[(arch.off_chip.name, "a", "data", "read")] += nm.pad_read_bytes
            traffic[(arch.off_chip.name, "a", "data", "write")] += nm.pad_write_bytes
    if not ok:
        static_w = pass_ in ("forward", "backward_data") and not it.weight_mask_changed()
        gemm, extra, tc_macs, cuda_macs = _unstructured(ctx, g, nnz_a, nnz_b, need, dense_one, dense, reason,
                                                        out, traffic, static_w)
    vec_ops, vec_traffic = _vector_work(ctx, spec, pass_, batch, stats)
    vec_cycles = memory_kernel_cycles(arch, sum(vec_traffic.values()), vec_ops)
    if not spec.has_weight and fused is None:  # an unfused SDPA call's mask and softmax kernels
        soft_cycles, soft_bytes = unfused_softmax(arch, spec, pass_, batch)
        vec_cycles += soft_cycles
        for direction in ("read", "write"):
            vec_traffic[(arch.off_chip.name, "c", "data", direction)] = \
                vec_traffic.get((arch.off_chip.name, "c", "data", direction), 0.0) + soft_bytes[direction]
    base_traffic: dict = defaultdict(float)
    for key, moved in vec_traffic.items():
        traffic[key] += moved
        base_traffic[key] += moved
    gemm_cycles = (gemm.cycles if gemm is not None else 0) + extra
    if gemm is not None:
        for key, moved in gemm.traffic.items():
            traffic[key] += moved
    for key, moved in dense.traffic.items():
        base_traffic[key] += moved
    cycles = gemm_cycles + vec_cycles
    base_cycles = dense.cycles + vec_cycles
    row = {"pass": pass_, **out, **_counts(ctx, cycles, gemm_cycles, vec_cycles, gemm, traffic,
                                           tc_macs, cuda_macs, vec_ops, algorithmic, out["gpu_pad_macs"])}
    base = _counts(ctx, base_cycles, dense.cycles, vec_cycles, dense, base_traffic, algorithmic, 0, vec_ops,
                   algorithmic)
    row.update({f"dense_{key}": base[key] for key in ("cycles", "gemm_cycles", "energy_pj", "compute_cycles",
                                                       "stall_cycles")})
    row["gpu_tile"] = f"{gemm.tile[0]}x{gemm.tile[1]}" if gemm is not None else ""
    row["gpu_split_k"] = gemm.split if gemm is not None else 0
    row["gpu_waves"] = gemm.waves if gemm is not None else 0
    row["speedup"] = ratio(base_cycles, cycles)
    row["energy_saving"] = ratio(base["energy_pj"], row["energy_pj"])
    row["utilization"] = (tc_macs + cuda_macs) / max(cycles * ctx.peak_fma_per_cycle, 1)
    if masks:
        row["effectual_macs"], row["effectual_macs_gemm_view"] = effectual(spec, pass_, masks)
    else:
        d_a, d_b = nnz_a / max(m * k * g.groups, 1), nnz_b / max(k * n * g.groups, 1)
        row["effectual_macs"] = row["effectual_macs_gemm_view"] = round(algorithmic * d_a * d_b)
    return row


def _unstructured(ctx: _Context, g: GemmDims, nnz_a: int, nnz_b: int, need: np.ndarray | None,
                  dense_one: GemmCost, dense: GemmCost, reason: str, out: dict,
                  traffic: dict, static_weight: bool) -> tuple[GemmCost | None, int, int, int]:
    """Choose between the dense GEMM, the sparse kernel and DSG's gathered GEMM under the
    architecture's ``unstructured_policy``; fill ``out``'s path columns and ``traffic`` with the
    chosen kernels' bytes. ``static_weight``: operand ``b`` is a weight whose mask did not change
    this step, so its CSR form is reused; any other sparse operand is converted to CSR first.
    Returns (tensor-core GEMM or None, extra kernel cycles, tensor-core MACs, CUDA-core MACs)."""
    arch, eb = ctx.arch, ctx.eb
    m, k, n = g.m, g.k, g.n
    off = arch.off_chip.name
    reasons = [reason]
    policy = arch.sparse.unstructured_policy
    options: list[tuple[str, int]] = [("dense", dense.cycles)]
    spmm = gath = None
    sizes = {"a": m * k * g.groups, "b": k * n * g.groups}
    dens = {"a": nnz_a / max(sizes["a"], 1), "b": nnz_b / max(sizes["b"], 1)}
    op = min(dens, key=lambda o: dens[o])
    if arch.sparse.kernel_efficiency and dens[op] < 1:
        # grouped: the groups' GEMMs as one SpMM kernel over their real operands
        convert = not (op == "b" and static_weight)
        spmm = spmm_cost(arch, m, k, n, nnz_a if op == "a" else nnz_b, op, eb, groups=g.groups,
                         convert=convert)
        options.append(("spmm", spmm.cycles))
        out["gpu_sparse_operand"], out["gpu_sparse_density"] = op, dens[op]
        out["gpu_crossover_density"] = crossover_density(arch, m, k, n, op, eb, dense.cycles, groups=g.groups,
                                                         convert=convert)
        out["gpu_convert_cycles"] = spmm.convert_cycles
    if need is not None and g.groups == 1:
        gath = gathered_cost(arch, k, need, eb)
        options.append(("gathered", gath.gemm.cycles + gath.gather_cycles))
        out["gpu_gather_cycles"] = gath.gather_cycles
    if policy == "dense" or len(options) == 1:
        chosen = "dense"
        reasons.append("unstructured policy: dense" if policy == "dense" else "no sparse operand or kernel")
    elif policy == "sparse":
        chosen = min(options[1:], key=lambda o: o[1])[0]
    else:
        chosen = min(options, key=lambda o: o[1])[0]
        if chosen == "dense":
            reasons.append(f"the dense GEMM ({dense.cycles:,} cycles) is faster than " + " and ".join(
                f"{name} ({cyc:,} cycles)" for name, cyc in options[1:]))
    out["gpu_sparse_path"] = chosen
    if chosen == "spmm":
        for key, moved in (((off, op, "data", "read"), spmm.read_sparse_bytes),
                           ((off, op, "metadata", "read"), spmm.read_sparse_metadata_bytes),
                           ((off, "b" if op == "a" else "a", "data", "read"), spmm.read_dense_bytes),
                           ((off, "c", "data", "write"), spmm.write_bytes),
                           ((off, op, "data", "read"), spmm.convert_read_bytes),
                           ((off, op, "data", "write"), spmm.convert_write_bytes)):
            traffic[key] += moved
        return None, spmm.cycles, 0, min(g.macs, spmm.macs)
    if chosen == "gathered":
        for o, moved in (("a", gath.moved_a_bytes), ("c", gath.moved_c_bytes)):
            traffic[(off, o, "data", "read")] += moved / 2
            traffic[(off, o, "data", "write")] += moved / 2
        return gath.gemm, gath.gather_cycles, min(g.macs, gath.macs), 0
    out["gpu_dense_reason"] = "; ".join(r for r in reasons if r)
    return dense, 0, g.macs, 0


def _grouped(c: GemmCost, groups: int, arch: Architecture) -> GemmCost:
    """``groups`` identical GEMMs batched in one launch: their blocks share the waves (a group of
    few blocks does not cost a wave of its own), and the kernel moves every group's HBM bytes."""
    if groups == 1:
        return c
    g = arch.gpu
    launch = launch_cycles(arch)
    waves = -(-groups * c.blocks // (g.sms * g.threadblocks_per_sm))
    hbm = sum(v for (level, *_), v in c.traffic.items() if level == arch.off_chip.name)
    bpc = hbm_bytes_per_cycle(arch)
    body = max((c.cycles - launch) * waves / c.waves, groups * hbm / bpc if bpc else 0.0)
    return GemmCost(launch + math.ceil(body), math.ceil(c.math_cycles * waves / c.waves), c.tile, c.split,
                    waves, groups * c.blocks, {k: v * groups for k, v in c.traffic.items()})


def _vector_work(ctx: _Context, spec: LayerSpec, pass_: str, batch: int,
                 stats: dict) -> tuple[float, dict[tuple[str, str, str, str], float]]:
    """Non-GEMM ops of a pass and their HBM bytes by (level, operand, kind, direction): the output
    (forward: Y; backward-data: dY) is read and written once by a fused elementwise kernel (BN, ReLU,
    their backward); DST's threshold compare also reads the weight (operand ``b``). A matmul of two
    activations has none (its softmax and scaling are vector ops of their own)."""
    ops = gemm_pass_work(spec, pass_, batch, ctx.method, stats, ctx.counted).ops
    off = ctx.arch.off_chip.name
    moved: dict[tuple[str, str, str, str], float] = {}
    if pass_ in ("forward", "backward_data") and spec.has_weight:  # a matmul has no fused kernel
        out = spec.numel("y" if pass_ == "forward" else "dy", batch) * ctx.eb
        moved[(off, "c", "data", "read")] = out
        moved[(off, "c", "data", "write")] = out
    if pass_ == "forward" and ctx.method == "dst":
        moved[(off, "b", "data", "read")] = spec.numel("w", 1) * ctx.eb
    return float(ops), moved


def _counts(ctx: _Context, cycles: int, gemm_cycles: int, vec_cycles: int, gemm: GemmCost | None,
            traffic: dict, tc_macs: int, cuda_macs: int, vec_ops: float, algorithmic: int,
            pad_macs: int = 0) -> dict:
    arch = ctx.arch
    energy = pass_energy(arch, actual_macs=0, gated_macs=0, traffic=dict(traffic),
                         vector_ops=vec_ops + cuda_macs, cycles=cycles)
    energy["tensor_core"] = tc_macs * price(arch, "tensor_core", "fma")
    compute = gemm.math_cycles if gemm is not None else 0
    actual = tc_macs + cuda_macs - pad_macs  # the padded rows' products are no algorithmic MACs
    row: dict[str, Any] = {
        "cycles": int(cycles), "gemm_cycles": int(gemm_cycles), "compute_cycles": int(compute),
        "stall_cycles": int(max(gemm_cycles - compute, 0)), "vector_cycles": int(vec_cycles),
        "tiles": int(gemm.blocks if gemm is not None else 0), "algorithmic_macs": int(algorithmic),
        "actual_macs": int(actual), "gated_macs": 0, "skipped_macs": int(algorithmic - actual),
        "vector_ops": float(vec_ops), "energy_pj": total_pj(energy),
    }
    for comp, pj in energy.items():
        row[f"energy_{comp}_pj"] = pj
    for (comp, op, kind, direction), moved in traffic.items():
        suffix = "" if kind == "data" else "_metadata"
        row[f"{comp}_{op}{suffix}_{direction}_bytes"] = float(np.float64(moved))
    return row


def embedding_rows(ctx: _Context, spec: LayerSpec, it: LayerInput, li: int,
                   passes: Sequence[str]) -> list[dict]:
    """An embedding layer (``hwsim.embedding``): a gather and a scatter-add kernel, memory-bound on
    HBM; the table's update as any layer's."""
    bits = ctx.arch.gpu.element_bits

    def update() -> dict | None:
        row = layer_update_row(ctx.arch, spec, it, li, weight_bits=bits, gradient_bits=bits,
                               state=ctx.state_tensors, ops_per_weight=ctx.update_ops)
        return None if row is None else {**row, "mode": "exact" if it.has_masks else "expected"}
    return embedding.embedding_rows(ctx.arch, spec, it, li, passes, element_bytes=ctx.eb, update=update)


def vector_op_rows(ctx: _Context, table: list[dict], batch: int, index: int,
                   passes: Sequence[str]) -> list[dict]:
    """The trace's counted non-GEMM work (``hwsim.vector.vector_op_rows``): memory-bound kernels
    on the SMs' FP32 lanes through HBM, at the GPU's element precision."""
    if ctx.sdpa_score_ops:
        table = [row for row in table
                 if (row["module"], tuple(row["shape"][-2:])) not in ctx.sdpa_score_ops]
    return vector.vector_op_rows(ctx.arch, table, batch, index, passes, ctx.eb)


def sdpa_score_ops(manifest: dict[str, Any]) -> set[tuple[str, tuple[int, ...]]]:
    """``(module, (Lq, Lk))`` of every scores record of an SDPA call: a vector op of that module over
    an ``(..., Lq, Lk)`` score matrix is part of the attention the GPU costs (:mod:`.products`)."""
    out = set()
    for layer in manifest.get("layers", []):
        att = layer.get("attention")
        if layer.get("kind") == "matmul" and att and att.get("backend") != "explicit" \
                and att.get("role") == "scores":
            out.add((layer["module"], tuple(layer["y_shape"][-2:])))
    return out
