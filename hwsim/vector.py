"""Non-GEMM work on the vector unit: elementwise ops, col2im, the optimizer update, method extras.

Bandwidth-bound model: ``cycles = max(ceil(ops / lanes), ceil(bytes / off-chip bytes per cycle))``
for work that streams through off-chip memory (the weight update); elementwise work fused with a
GEMM's output is bounded by the lanes alone. Counts per pass and layer:

- forward: 2 ops per output (bias, activation/BN) + a method's own work recorded in the trace
  (DSG: its DRS MACs and additions; DST: 2 ops per weight for the threshold compare);
- backward-data: 2 ops per dY element (ReLU′, BN backward) + col2im additions of overlapping
  windows (im2col elements minus input elements);
- update: per weight, 4 ops (SGD with momentum: decay, momentum, step, write) reading the weight,
  its gradient and the optimizer state and writing the weight and state back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archs import Architecture
from traces.layer import LayerSpec

UPDATE_OPS_PER_WEIGHT = 4


@dataclass(frozen=True)
class VectorWork:
    """Ops and off-chip bytes of one pass's non-GEMM work."""

    ops: float
    offchip_read_bytes: float = 0.0
    offchip_write_bytes: float = 0.0

    def cycles(self, arch: Architecture) -> int:
        lanes = arch.vector_unit.lanes
        cyc = math.ceil(self.ops / lanes)
        bw = arch.off_chip.bandwidth_bytes_per_s
        if bw > 0:
            per_cycle = bw / arch.clock_hz
            cyc = max(cyc, math.ceil((self.offchip_read_bytes + self.offchip_write_bytes) / per_cycle))
        return cyc


def gemm_pass_work(spec: LayerSpec, pass_: str, batch: int, method: str, stats: dict) -> VectorWork:
    """Non-GEMM work that goes with one GEMM pass of one layer."""
    if pass_ == "forward":
        ops = 2 * spec.numel("y", batch)
        ops += float(stats.get("drs_macs", 0)) + float(stats.get("drs_adds", 0))
        if method == "dst":
            ops += 2 * spec.numel("w", 1)
        return VectorWork(ops)
    if pass_ == "backward_data":
        g = spec.gemm("backward_data", batch)
        col2im = g.m * g.n * g.groups - spec.numel("x", batch)
        return VectorWork(2 * spec.numel("dy", batch) + max(col2im, 0))
    return VectorWork(0.0)


def update_work(spec: LayerSpec, weight_bytes: float, grad_bytes: float, state_tensors: int,
                state_bytes: float) -> VectorWork:
    """The optimizer step of one layer's weights: read W, dW and state; write W and state."""
    n = spec.numel("w", 1)
    return VectorWork(UPDATE_OPS_PER_WEIGHT * n,
                      offchip_read_bytes=n * (weight_bytes + grad_bytes + state_tensors * state_bytes),
                      offchip_write_bytes=n * (weight_bytes + state_tensors * state_bytes))
