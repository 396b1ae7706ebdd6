"""Products of two activations (``matmul`` records) on a GPU: batched GEMMs, or a fused attention.

A ``matmul`` record's pass is ``batch × groups`` GEMMs in one batched launch (:mod:`.batched`). The
two records of one attention call (``attention.call``, roles ``scores`` and ``context``) recorded
from an SDPA backend run, under ``gpu.transformer.attention: fused``, as one FlashAttention-style
kernel (:mod:`.attention`): its forward is costed on the scores record's forward row, its backward
(recomputing the scores) on the scores record's backward-data row; the other rows of the pair carry
no cycles and say where their work went (``gpu_sparse_path`` ``fused in <record>``). Each row's
actual MACs are its own GEMM's computed tiles (a causal kernel skips the tiles above the diagonal);
the backward's recomputation of the scores is reported apart (``gpu_recompute_macs``), since no
record's algorithmic MACs hold it. The softmax of an SDPA call is inside the call (no vector op is
recorded for it): fused, it is part of the kernel; unfused, the scores record's forward and
backward-data rows add the causal mask and softmax kernels (:mod:`.memory_bound`). Written-out
attention (backend ``explicit``) runs as recorded: batched GEMMs, its softmax a vector op of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archs import Architecture
from traces.format.layer import LayerSpec

from .attention import AttentionShape, attention_cost
from .gemm import GemmCost
from .memory_bound import memory_bound_cost

ZERO = GemmCost(0, 0, (0, 0), 0, 0, 0, {})


@dataclass(frozen=True)
class FusedPass:
    """A pass of an attention record under the fused kernel."""

    cost: GemmCost  # the kernel (on the row that carries it) or ZERO
    macs: int  # tensor-core MACs of this record's own GEMM (computed tiles)
    recompute_macs: int  # the backward's recomputed scores (scores record, backward-data row)
    path: str  # gpu_sparse_path


def is_sdpa_pair(spec: LayerSpec) -> bool:
    """Whether ``spec`` is one record of an attention call made through an SDPA backend."""
    att = spec.attention
    return att is not None and att.get("backend") != "explicit"


def attention_shape(spec: LayerSpec, batch: int) -> AttentionShape:
    """The attention a record belongs to: from the scores record ``Q (*b, Lq, d) · Kᵀ (*b, d, Lk)``
    or the context record ``P (*b, Lq, Lk) · V (*b, Lk, dv)``."""
    problems = batch * spec.groups
    lq = spec.x_shape[-2]
    if spec.attention["role"] == "scores":
        d, lk = spec.x_shape[-1], spec.w_shape[-1]
    else:
        lk, d = spec.x_shape[-1], spec.w_shape[-1]
    return AttentionShape(problems, lq, lk, d, bool(spec.attention.get("causal")))


def fused_pass(arch: Architecture, spec: LayerSpec, pass_: str, batch: int) -> FusedPass | None:
    """The fused kernel's share of one pass of an SDPA attention record (None: not fused here)."""
    if not is_sdpa_pair(spec) or arch.gpu.transformer.attention != "fused":
        return None
    shape = attention_shape(spec, batch)
    scores = spec.attention["role"] == "scores"
    kernel = attention_cost(arch, shape, "forward" if pass_ == "forward" else "backward", fused=True)
    per_gemm = kernel.tensor_macs // (2 if pass_ == "forward" else 5)  # tile GEMMs of one kernel step
    call = spec.attention["call"]
    if scores and pass_ in ("forward", "backward_data"):
        t = arch.gpu.transformer
        tile = (t.flash_tile_q, t.flash_tile_kv) if pass_ == "forward" else \
            (t.flash_backward_tile_q, t.flash_backward_tile_kv)
        cost = GemmCost(kernel.cycles, kernel.math_cycles, tile, 1, 0, kernel.blocks, kernel.traffic)
        return FusedPass(cost, per_gemm, per_gemm if pass_ == "backward_data" else 0,
                         f"fused attention ({call})")
    carrier = "forward" if pass_ == "forward" else "backward_data"
    return FusedPass(ZERO, per_gemm, 0, f"fused in {call} scores {carrier}")


def unfused_softmax(arch: Architecture, spec: LayerSpec, pass_: str,
                    batch: int) -> tuple[int, dict[str, Any]]:
    """Cycles and HBM bytes of an unfused SDPA call's mask and softmax kernels on its scores record
    (forward: mask, softmax; backward-data: softmax backward, mask backward); 0 elsewhere."""
    if not is_sdpa_pair(spec) or spec.attention["role"] != "scores" or pass_ == "backward_weight":
        return 0, {"read": 0.0, "write": 0.0}
    shape = attention_shape(spec, batch)
    n = shape.problems * shape.seq_q * shape.seq_k
    vpass = "forward" if pass_ == "forward" else "backward_data"
    kinds = (["mask"] if shape.causal else []) + ["softmax"]
    cycles, read, write = 0, 0.0, 0.0
    for kind in kinds:
        c = memory_bound_cost(arch, kind, vpass, n, row=shape.seq_k)
        cycles, read, write = cycles + c.cycles, read + c.read_bytes, write + c.write_bytes
    return cycles, {"read": read, "write": write}
