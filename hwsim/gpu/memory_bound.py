"""Memory-bound kernels of a transformer on a GPU: softmax, LayerNorm, GELU, dropout, residual adds.

Each runs as its own kernel that streams its tensors through HBM: time = ``launch + max(ops /
CUDA-core lanes, bytes / bandwidth)``. Elementwise kernels (GELU, dropout, adds) reach the card's
achievable HBM bandwidth (``gpu.hbm_achievable_fraction``, what a copy kernel measures); row
reductions (softmax, LayerNorm) reach ``gpu.transformer.reduction_bandwidth_fraction`` of it
(fitted on PyTorch's LayerNorm timings, docs/gpu.md). Bytes per element are what the kernel reads
and writes, in units of the tensor's element size (a LayerNorm's backward reads x and dy twice:
PyTorch runs its dx kernel and its dγ/dβ kernel, each reading both); per-row statistics (a
LayerNorm's mean and rstd) are a few bytes per row and are counted as such; a LayerNorm's weight
and bias (one row) stay in L2.

| kind | forward: read + write | backward: read + write | reduction |
|---|---|---|---|
| softmax | x; y | y, dy; dx | yes |
| layer_norm | x; y (+ mean, rstd per row) | x, dy twice (+ mean, rstd); dx | yes |
| gelu, silu | x; y | x, dy; dx | no |
| dropout | x; y, mask (1 byte) | dy, mask; dx | no |
| add | a, b; y | dy; dx (the gradient of an add is copied to both inputs: one read, two writes) | no |
| mul | a, b; y | a, b, dy; da, db | no |
| mask | x (scores), bias (L2); y | dy; dx | no |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archs import Architecture

from ..errors import MappingError
from .kernels import hbm_bytes_per_cycle, launch_cycles

# (elements read, elements written, extra bytes per element, FP32 ops per element, reduction):
# per pass, per element of the op's input.
MEMORY_BOUND = {
    ("softmax", "forward"): (1, 1, 0.0, 5, True),  # max, sub, exp, sum, scale
    ("softmax", "backward_data"): (2, 1, 0.0, 4, True),  # dot(y, dy), sub, mul
    ("layer_norm", "forward"): (1, 1, 0.0, 7, True),  # sum, sum of squares, sub, mul, fma
    ("layer_norm", "backward_data"): (4, 1, 0.0, 10, True),  # dx kernel and dγ/dβ kernel each read x, dy
    ("gelu", "forward"): (1, 1, 0.0, 10, False),  # tanh form: 1 transcendental + ~9 FMAs
    ("gelu", "backward_data"): (2, 1, 0.0, 14, False),
    ("silu", "forward"): (1, 1, 0.0, 5, False),  # 1 transcendental + a few FMAs
    ("silu", "backward_data"): (2, 1, 0.0, 8, False),
    ("dropout", "forward"): (1, 1, 1.0, 3, False),  # plus a 1-byte mask per element
    ("dropout", "backward_data"): (1, 1, 1.0, 1, False),
    ("add", "forward"): (2, 1, 0.0, 1, False),
    ("add", "backward_data"): (1, 2, 0.0, 0, False),
    ("mul", "forward"): (2, 1, 0.0, 1, False),  # a gated MLP's gate ∘ up
    ("mul", "backward_data"): (3, 2, 0.0, 2, False),  # a, b, dy in; da, db out
    ("mask", "forward"): (1, 1, 0.0, 1, False),
    ("mask", "backward_data"): (1, 1, 0.0, 0, False),
}
ROW_STAT_BYTES = 8  # a LayerNorm's mean and rstd per row (FP32)


@dataclass(frozen=True)
class MemoryBoundCost:
    """One memory-bound kernel: its cycles, HBM bytes read and written, and element ops."""

    cycles: int
    read_bytes: float
    write_bytes: float
    ops: float


def memory_bound_cost(arch: Architecture, kind: str, pass_: str, elements: int, *, row: int = 0,
                      element_bytes: float | None = None) -> MemoryBoundCost:
    """The kernel of ``kind`` (softmax, layer_norm, gelu, dropout, add, mask) in ``pass_``
    (forward or backward_data) over ``elements`` elements, rows of ``row`` elements (reductions; 0:
    one row)."""
    try:
        reads, writes, extra, ops_per, reduction = MEMORY_BOUND[(kind, pass_)]
    except KeyError:
        known = sorted({k for k, _ in MEMORY_BOUND})
        raise MappingError(f"no memory-bound GPU kernel for {kind!r} in pass {pass_!r}; kinds: {known}, "
                           "passes: forward, backward_data") from None
    if elements <= 0:
        return MemoryBoundCost(0, 0.0, 0.0, 0.0)
    eb = element_bytes if element_bytes is not None else arch.gpu.element_bits / 8
    rows = elements // row if row else 1
    stats = rows * ROW_STAT_BYTES if kind == "layer_norm" else 0.0
    read = elements * reads * eb + (elements * extra if pass_ == "backward_data" else 0.0) + stats
    write = elements * writes * eb + (elements * extra if pass_ == "forward" else 0.0)
    if kind == "layer_norm" and pass_ == "forward":
        read -= stats  # statistics are written in the forward, read in the backward
        write += stats
    ops = float(elements * ops_per)
    cycles = stream_cycles(arch, read + write, ops, reduction=reduction)
    return MemoryBoundCost(cycles, read, write, ops)


def stream_cycles(arch: Architecture, moved_bytes: float, ops: float = 0.0, *,
                  reduction: bool = False) -> int:
    """A kernel that moves ``moved_bytes`` through HBM and does ``ops`` element ops on the CUDA cores."""
    if moved_bytes <= 0 and ops <= 0:
        return 0
    bpc = hbm_bytes_per_cycle(arch)
    if reduction:
        bpc *= arch.gpu.transformer.reduction_bandwidth_fraction
    mem = math.ceil(moved_bytes / bpc) if bpc else 0
    lanes = arch.vector_unit.lanes  # 0: not modelled, the operations take no time (hwsim/vector.py)
    return launch_cycles(arch) + max(math.ceil(ops / lanes) if lanes else 0, mem)
