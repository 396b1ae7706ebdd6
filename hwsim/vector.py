"""Non-GEMM work on the vector unit: elementwise ops, col2im, the optimizer update, method extras.

Bandwidth-bound model: ``cycles = max(ceil(ops / lanes), ceil(bytes / off-chip bytes per cycle))``
for work that streams through off-chip memory (the weight update); elementwise work fused with a
GEMM's output is bounded by the lanes alone. Counts per pass and layer:

- forward: 2 ops per output (bias, activation/BN) + a method's own work recorded in the trace
  (DSG: its DRS MACs, additions and selection compares; DST: 2 ops per weight for the threshold
  compare; top-k attention: its selection product and compares, logged on the qkv layer);
- backward-data: 2 ops per dY element (ReLU′, BN backward) + col2im additions of overlapping
  windows (im2col elements minus input elements);
- update: per weight, the element operations the optimizer's step ran, as the recorder counted
  them (``optimizer.update_ops_per_weight``: SGD 1, with momentum 3, Adam 7, AdamW 8), or 4 for a
  trace without that count (SGD with momentum and weight decay), reading the weight, its gradient
  and the optimizer state and writing the weight and state back;
- transposes and re-encodes of a compressed weight (an off-chip format on operand ``b`` that is
  ordered by rows: CSR, CSC or RLE): backward-data reads W in the opposite orientation, so the
  compressed weight is read and written once transposed (1 op per non-zero); and when the weight
  mask changed this step (DST), the update re-encodes it: read dense, write compressed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archs import Architecture
from traces.format.layer import LayerSpec

UPDATE_OPS_PER_WEIGHT = 4


@dataclass(frozen=True)
class VectorWork:
    """Ops and off-chip bytes of one pass's non-GEMM work."""

    ops: float
    offchip_read_bytes: float = 0.0
    offchip_write_bytes: float = 0.0

    def cycles(self, arch: Architecture) -> int:
        lanes = arch.vector_unit.lanes
        if lanes == 0:  # not modelled (a SCALE-Sim import): no time, whatever the bytes
            return 0
        cyc = math.ceil(self.ops / lanes)
        bw = arch.off_chip.bandwidth_bytes_per_s
        if bw > 0:
            per_cycle = bw / arch.clock_hz
            cyc = max(cyc, math.ceil((self.offchip_read_bytes + self.offchip_write_bytes) / per_cycle))
        return cyc


def gemm_pass_work(spec: LayerSpec, pass_: str, batch: int, method: str, stats: dict) -> VectorWork:
    """Non-GEMM work that goes with one GEMM pass of one layer. A layer without a weight (a
    ``matmul`` of two activations) has none fused with it: the softmax, scaling and masking
    around attention products are vector ops of their own."""
    if not spec.has_weight:
        return VectorWork(0.0)
    if pass_ == "forward":
        ops = 2 * spec.numel("y", batch)
        ops += float(stats.get("drs_macs", 0)) + float(stats.get("drs_adds", 0))
        ops += float(stats.get("selection_compares", 0))  # DSG's and top-k attention's compares
        ops += float(stats.get("selection_macs", 0))  # top-k attention's selection product
        if method == "dst":
            ops += 2 * spec.numel("w", 1)
        return VectorWork(ops)
    if pass_ == "backward_data":
        g = spec.gemm("backward_data", batch)
        col2im = g.m * g.n * g.groups - spec.numel("x", batch)
        return VectorWork(2 * spec.numel("dy", batch) + max(col2im, 0))
    return VectorWork(0.0)


def update_work(spec: LayerSpec, weight_bytes: float, grad_bytes: float, state_tensors: int,
                state_bytes: float, reencode_bytes: float = 0.0,
                ops_per_weight: float = UPDATE_OPS_PER_WEIGHT) -> VectorWork:
    """The optimizer step of one layer's weights: read W, dW and state; write W and state.

    ``reencode_bytes``: the compressed weight written again because its mask changed;
    ``ops_per_weight``: element operations of the step per weight, as the recorder counted them
    (``optimizer.update_ops_per_weight``; SGD with momentum 3, Adam 7), else 4.
    """
    n = spec.numel("w", 1)
    return VectorWork(ops_per_weight * n + (n if reencode_bytes else 0),
                      offchip_read_bytes=n * (weight_bytes + grad_bytes + state_tensors * state_bytes),
                      offchip_write_bytes=n * (weight_bytes + state_tensors * state_bytes) + reencode_bytes)


ROW_ORDERED = ("csr", "csc", "rle")


def compressed_weight_bytes(arch: Architecture, spec: LayerSpec, w_nnz: int, weight_bytes: float) -> float:
    """Bytes of the weight in its off-chip row-ordered format, or 0 when it is not compressed so."""
    fmt = next((f for f in arch.sparse.formats if f.level == arch.off_chip.name and f.operand == "b"
                and f.format in ROW_ORDERED), None)
    if fmt is None:
        return 0.0
    pointers = spec.w_shape[0] * fmt.pointer_bits / 8 if fmt.format in ("csr", "csc") else 0.0
    return w_nnz * (weight_bytes + fmt.metadata_bits / 8) + pointers


def transpose_work(compressed_bytes: float, w_nnz: int) -> VectorWork:
    """Re-encoding a compressed weight in the other orientation: read it and write it once."""
    return VectorWork(float(w_nnz), offchip_read_bytes=compressed_bytes, offchip_write_bytes=compressed_bytes)
