"""Attention on a GPU: the fused FlashAttention-style kernel, or the unfused path with materialised scores.

An attention call is ``problems = batch × heads`` independent products ``S = Q·Kᵀ`` (``seq_q × d ×
seq_k``), ``P = softmax(S)``, ``O = P·V`` (``seq_q × seq_k × d``). ``gpu.transformer.attention``
chooses how the machine runs it:

- **fused** (FlashAttention-2's schedule; Dao, arXiv 2307.08691 §3): the forward is one kernel
  whose thread blocks each own ``flash_tile_q`` query rows of one problem, keep their Q tile and an
  FP32 output accumulator on chip, and stream K and V in tiles of ``flash_tile_kv`` rows through
  shared memory: per step two tile GEMMs (``S = Q·Kᵀ`` and ``O += P·V``) and the online softmax
  (running max and sum, rescaling) on the CUDA cores. The score matrix never reaches HBM: the
  kernel reads Q, K, V once from HBM (a problem's K and V stay in L2 while its query tiles run,
  blocks being issued query tile fastest) and writes O and the rows' log-sum-exp. Causal attention
  skips the key tiles wholly above the diagonal (top-left aligned: query ``i`` sees keys ``j ≤ i``).
  The backward recomputes the scores instead of reading them: a small kernel forms ``D =
  rowsum(dO ∘ O)``, then thread blocks own ``flash_backward_tile_kv`` key rows and stream query
  tiles, five tile GEMMs per step (``S``, ``dP = dO·Vᵀ``, ``dV += Pᵀ·dO``, ``dK += dSᵀ·Q``,
  ``dQ += dS·K``): 2.5× the forward's tensor-core work, dQ accumulated in FP32 through L2 and
  converted to the element type by a last kernel.
- **unfused** (what eager PyTorch runs for written-out attention): batched GEMMs
  (:mod:`.batched`) with ``S`` written to HBM, a causal mask kernel, the softmax kernel reading
  ``S`` and writing ``P``, and ``P·V`` reading ``P``; the backward is four batched GEMMs and the
  softmax backward, every score-sized tensor through HBM.

A block's main loop runs at ``flash_*_efficiency`` of the tensor cores' peak (fitted, docs/gpu.md;
the efficiency covers the softmax work the CUDA cores do beside the MMAs), at least the
Little's-law bound of two K/V steps in flight; blocks of equal work run in waves (wave
quantization), blocks of unequal work (causal) are issued as SMs free up: ``total / slots`` plus
the longest block as the tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from archs import Architecture

from ..errors import MappingError
from .batched import batched_gemm_cost
from .gemm import Operands
from .kernels import hbm_bytes_per_cycle, launch_cycles, sm_cycle_scale
from .memory_bound import memory_bound_cost, stream_cycles

LSE_BYTES = 4  # the log-sum-exp (forward) and D = rowsum(dO ∘ O) (backward) per query row, FP32
ACCUM_BYTES = 4  # FP32 dQ accumulator of the fused backward
FLASH_STAGES = 2  # K/V tiles in flight in the fused kernels (double-buffered shared memory)


@dataclass(frozen=True)
class AttentionShape:
    """``problems`` independent attentions of ``seq_q`` queries over ``seq_k`` keys, head size
    ``head_dim``."""

    problems: int  # batch × heads
    seq_q: int
    seq_k: int
    head_dim: int
    causal: bool = False
    key_offset: int = 0  # causal: query i sees keys j <= i + key_offset (FlashAttention >= 2.1 aligns
    # the diagonal bottom-right: key_offset = seq_k - seq_q; PyTorch's is_causal: 0)

    def __post_init__(self) -> None:
        if min(self.problems, self.seq_q, self.seq_k, self.head_dim) <= 0:
            raise MappingError(f"attention {self}: every size must be positive")

    def kv_steps(self, tile_q: int, tile_kv: int) -> np.ndarray:
        """Key tiles each query tile visits, shape ``(ceil(seq_q / tile_q),)``."""
        n_q, n_kv = -(-self.seq_q // tile_q), -(-self.seq_k // tile_kv)
        if not self.causal:
            return np.full(n_q, n_kv, dtype=np.int64)
        last_row = np.minimum((np.arange(n_q, dtype=np.int64) + 1) * tile_q, self.seq_q) - 1  # (n_q,)
        return np.clip((last_row + self.key_offset) // tile_kv + 1, 0, n_kv)

    def q_steps(self, tile_q: int, tile_kv: int) -> np.ndarray:
        """Query tiles each key tile visits (backward), shape ``(ceil(seq_k / tile_kv),)``."""
        n_q, n_kv = -(-self.seq_q // tile_q), -(-self.seq_k // tile_kv)
        if not self.causal:
            return np.full(n_kv, n_q, dtype=np.int64)
        first_row = np.maximum(np.arange(n_kv, dtype=np.int64) * tile_kv - self.key_offset, 0)  # (n_kv,)
        return np.where(first_row < self.seq_q, n_q - first_row // tile_q, 0)

    @property
    def computed_scores(self) -> int:
        """Score entries the result needs: all, or (causal) those with key ``j ≤`` query ``i``."""
        if not self.causal:
            return self.problems * self.seq_q * self.seq_k
        rows = np.clip(np.arange(1, self.seq_q + 1, dtype=np.int64) + self.key_offset, 0, self.seq_k)
        return self.problems * int(rows.sum())


@dataclass
class AttentionCost:
    """Time and traffic of one attention pass (all its kernels, one after another)."""

    cycles: int
    math_cycles: int  # tensor-core busy cycles at the sustained rate
    tensor_macs: int  # MACs the tensor cores perform (tiles in full)
    kernels: dict[str, int]  # cycles per kernel
    blocks: int
    traffic: dict[tuple[str, str, str, str], float] = field(default_factory=dict)  # (level, op, kind, dir)


def attention_cost(arch: Architecture, shape: AttentionShape, pass_: str,
                   fused: bool | None = None) -> AttentionCost:
    """One pass (``forward``, or ``backward`` for both gradients) of the attention, fused or unfused
    (None: the machine's ``gpu.transformer.attention``)."""
    if arch.gpu is None:
        raise MappingError(f"{arch.name} is a {arch.family} machine; the GPU attention model needs a gpu "
                           "section")
    if fused is None:
        fused = arch.gpu.transformer.attention == "fused"
    if pass_ not in ("forward", "backward"):
        raise MappingError(f"attention pass must be forward or backward, got {pass_!r}")
    if fused:
        return _flash_forward(arch, shape) if pass_ == "forward" else _flash_backward(arch, shape)
    return _unfused(arch, shape, pass_)


def _schedule(arch: Architecture, block_cycles: np.ndarray, problems: int) -> tuple[float, int]:
    """Cycles of ``problems × len(block_cycles)`` blocks on the SMs, and the block count."""
    g = arch.gpu
    slots = g.sms * g.threadblocks_per_sm
    blocks = problems * len(block_cycles)
    if np.all(block_cycles == block_cycles[0]):
        return -(-blocks // slots) * float(block_cycles[0]), blocks
    total = problems * float(block_cycles.sum())
    return max(total / slots + float(block_cycles.max()), float(block_cycles.max())), blocks


def _flash_forward(arch: Architecture, s: AttentionShape) -> AttentionCost:
    g, t = arch.gpu, arch.gpu.transformer
    eb = g.element_bits / 8
    tq, tk, d = t.flash_tile_q, t.flash_tile_kv, s.head_dim
    steps = s.kv_steps(tq, tk)  # (n_q,)
    fma_per_sm = g.tensor_cores_per_sm * g.tensor_core.fma_per_cycle
    step_math = 2 * tq * tk * d / fma_per_sm  # S = Q·Kᵀ and O += P·V, tiles in full
    main = np.maximum(steps * step_math * sm_cycle_scale(arch) / t.flash_forward_efficiency,
                      steps * g.memory_latency_cycles / FLASH_STAGES)
    block = np.ceil(main + g.memory_latency_cycles)  # (n_q,) prologue: the Q tile's load
    body, blocks = _schedule(arch, block, s.problems)
    qkv = s.problems * (s.seq_q + 2 * s.seq_k) * d * eb
    out = s.problems * s.seq_q * (d * eb + LSE_BYTES)
    l2 = s.problems * float((tq * d + steps * 2 * tk * d).sum()) * eb + out
    cycles = launch_cycles(arch) + math.ceil(max(body, _bound(arch, qkv + out, l2)))
    macs = s.problems * int(steps.sum()) * 2 * tq * tk * d
    off, l2n = arch.off_chip.name, _level(arch, "l2")
    traffic = {(off, "a", "data", "read"): float(qkv), (off, "c", "data", "write"): float(out)}
    if l2n:
        traffic[(l2n, "a", "data", "read")] = l2 - out
        traffic[(l2n, "c", "data", "write")] = float(out)
    math_c = math.ceil(s.problems * float(steps.sum()) * step_math * sm_cycle_scale(arch)
                       / t.flash_forward_efficiency / g.sms)
    return AttentionCost(cycles, math_c, macs, {"flash_forward": cycles}, blocks, traffic)


def _flash_backward(arch: Architecture, s: AttentionShape) -> AttentionCost:
    g, t = arch.gpu, arch.gpu.transformer
    eb = g.element_bits / 8
    tq, tk, d = t.flash_backward_tile_q, t.flash_backward_tile_kv, s.head_dim
    rows_q = s.problems * s.seq_q
    # D = rowsum(dO ∘ O): reads dO and O, writes D (FP32 per row); the dQ accumulator is zeroed
    pre_read, pre_write = 2 * rows_q * d * eb, rows_q * (LSE_BYTES + d * ACCUM_BYTES)
    pre = stream_cycles(arch, pre_read + pre_write, 2.0 * rows_q * d)
    steps = s.q_steps(tq, tk)  # (n_kv,)
    fma_per_sm = g.tensor_cores_per_sm * g.tensor_core.fma_per_cycle
    step_math = 5 * tq * tk * d / fma_per_sm  # S, dP, dV, dK, dQ tile GEMMs
    main = np.maximum(steps * step_math * sm_cycle_scale(arch) / t.flash_backward_efficiency,
                      steps * g.memory_latency_cycles / FLASH_STAGES)
    block = np.ceil(main + 2 * g.memory_latency_cycles)  # (n_kv,) K, V tiles in; dK, dV out
    body, blocks = _schedule(arch, block, s.problems)
    # Q, dO, K, V, lse, D in; dK, dV and the dQ accumulator out
    reads = s.problems * ((2 * s.seq_q + 2 * s.seq_k) * d * eb + s.seq_q * 2 * LSE_BYTES)
    writes = s.problems * (2 * s.seq_k * d * eb + s.seq_q * d * ACCUM_BYTES)
    # per step a Q and a dO tile (with their lse and D) in, a dQ tile read-modify-written in FP32
    l2 = s.problems * float(steps.sum()) * tq * (2 * d * eb + 2 * LSE_BYTES + 2 * d * ACCUM_BYTES)
    main_cycles = launch_cycles(arch) + math.ceil(max(body, _bound(arch, reads + writes, l2)))
    # dQ from the FP32 accumulator to the element type
    conv_read, conv_write = rows_q * d * ACCUM_BYTES, rows_q * d * eb
    conv = stream_cycles(arch, conv_read + conv_write, float(rows_q * d))
    cycles = pre + main_cycles + conv
    macs = s.problems * int(steps.sum()) * 5 * tq * tk * d
    off, l2n = arch.off_chip.name, _level(arch, "l2")
    traffic = {(off, "a", "data", "read"): float(pre_read + reads + conv_read),
               (off, "c", "data", "write"): float(pre_write + writes + conv_write)}
    if l2n:
        traffic[(l2n, "a", "data", "read")] = l2
    math_c = math.ceil(s.problems * float(steps.sum()) * step_math * sm_cycle_scale(arch)
                       / t.flash_backward_efficiency / g.sms)
    kernels = {"flash_backward_preprocess": pre, "flash_backward": main_cycles,
               "flash_backward_dq_convert": conv}
    return AttentionCost(cycles, math_c, macs, kernels, blocks, traffic)


def _unfused(arch: Architecture, s: AttentionShape, pass_: str) -> AttentionCost:
    eb = arch.gpu.element_bits / 8
    ops = Operands(eb, eb, eb)
    p, lq, lk, d = s.problems, s.seq_q, s.seq_k, s.head_dim
    scores = p * lq * lk
    if pass_ == "forward":
        gemms = {"scores": (lq, d, lk), "context": (lq, lk, d)}  # S = Q·Kᵀ, O = P·V
        vector = [("mask", "forward")] if s.causal else []
        vector.append(("softmax", "forward"))
    else:  # dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q
        gemms = {"context_grad_p": (lq, d, lk), "context_grad_v": (lk, lq, d),
                 "scores_grad_q": (lq, lk, d), "scores_grad_k": (lk, lq, d)}
        vector = [("softmax", "backward_data")] + ([("mask", "backward_data")] if s.causal else [])
    kernels: dict[str, int] = {}
    traffic: dict[tuple[str, str, str, str], float] = {}
    math_c = macs = blocks = 0
    for name, (m, k, n) in gemms.items():
        c = batched_gemm_cost(arch, p, m, k, n, ops)
        kernels[name] = c.cycles
        math_c, macs, blocks = math_c + c.math_cycles, macs + p * m * k * n, blocks + c.blocks
        for key, v in c.traffic.items():
            traffic[key] = traffic.get(key, 0.0) + v
    off = arch.off_chip.name
    for kind, vpass in vector:
        v = memory_bound_cost(arch, kind, vpass, scores, row=lk)
        kernels[f"{kind}_{vpass}"] = v.cycles
        traffic[(off, "c", "data", "read")] = traffic.get((off, "c", "data", "read"), 0.0) + v.read_bytes
        traffic[(off, "c", "data", "write")] = traffic.get((off, "c", "data", "write"), 0.0) + v.write_bytes
    return AttentionCost(sum(kernels.values()), math_c, macs, kernels, blocks, traffic)


def _bound(arch: Architecture, hbm_bytes: float, l2_bytes: float) -> float:
    """Cycles to move ``hbm_bytes`` at the achievable HBM bandwidth and ``l2_bytes`` through L2."""
    bpc = hbm_bytes_per_cycle(arch)
    out = hbm_bytes / bpc if bpc else 0.0
    if arch.gpu.l2_bytes_per_cycle:
        out = max(out, l2_bytes / arch.gpu.l2_bytes_per_cycle)
    return out


def _level(arch: Architecture, kind: str) -> str | None:
    return next((mem.name for mem in arch.memories if mem.kind == kind), None)
