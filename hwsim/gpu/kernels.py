"""Memory-bound kernels on a GPU: launches, elementwise work, compression, gather and scatter.

A GPU runs BN, ReLU, residual adds, the optimizer step and the methods' own work (DSG's selection,
DST's threshold compare) as separate kernels that read their tensors from HBM and write them back,
unlike the edge NPU, where elementwise work is fused with the GEMM's output. Such a kernel takes
``launch + max(ops / vector lanes, bytes / HBM bytes per cycle)`` cycles, and it does not overlap
the GEMMs of its pass (kernels on one stream run one after another).
"""

from __future__ import annotations

import math

from archs import Architecture


def hbm_bytes_per_cycle(arch: Architecture) -> float:
    """Off-chip bytes per ``clock_hz`` cycle a kernel streams: the memory's datasheet bandwidth times
    ``gpu.hbm_achievable_fraction`` (what copy kernels measure on the card)."""
    return arch.off_chip.bandwidth_bytes_per_s * arch.gpu.hbm_achievable_fraction / arch.clock_hz


def sm_cycle_scale(arch: Architecture) -> float:
    """``clock_hz`` cycles per SM cycle: an SM at ``gpu.sustained_clock_fraction · clock_hz`` (the clock
    it holds at the board power limit with BF16 data; times ``gpu.fp16_clock_ratio`` with FP16 data)
    takes ``1 / sustained_clock_fraction`` counted cycles per cycle of its own."""
    g = arch.gpu
    return 1.0 / (g.sustained_clock_fraction * (g.fp16_clock_ratio if g.operand_dtype == "fp16" else 1.0))


def launch_cycles(arch: Architecture) -> int:
    """Cycles between dependent kernels (launch and drain), from ``gpu.kernel_launch_ns``."""
    return math.ceil(arch.gpu.kernel_launch_ns * 1e-9 * arch.clock_hz)


def memory_kernel_cycles(arch: Architecture, moved_bytes: float, ops: float = 0.0) -> int:
    """One kernel that moves ``moved_bytes`` through HBM and does ``ops`` element operations."""
    if moved_bytes <= 0 and ops <= 0:
        return 0
    bpc = hbm_bytes_per_cycle(arch)
    mem = math.ceil(moved_bytes / bpc) if bpc else 0
    lanes = arch.vector_unit.lanes  # 0: not modelled, the operations take no time (hwsim/vector.py)
    return launch_cycles(arch) + max(math.ceil(ops / lanes) if lanes else 0, mem)
