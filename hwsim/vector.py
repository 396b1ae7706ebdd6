"""Non-GEMM work on the vector unit: elementwise ops, col2im, the optimizer update, method extras.

Bandwidth-bound model: ``cycles = max(ceil(ops / lanes), ceil(bytes / off-chip bytes per cycle))``
for work that streams through off-chip memory (the weight update); elementwise work fused with a
GEMM's output is bounded by the lanes alone. Counts per pass and layer:

- forward: 2 ops per output (bias, activation/BN; with the trace's ``vector_ops`` table, which
  counts activations and normalisations as rows of their own, 1 per output for a bias) + a
  method's own work recorded in the trace
  (DSG: its DRS MACs, additions and selection compares; DST: 2 ops per weight for the threshold
  compare; top-k attention: its selection product and compares, logged on the qkv layer);
- backward-data: 2 ops per dY element (ReLU′, BN backward; none with a ``vector_ops`` table) +
  col2im additions of overlapping windows (im2col elements minus input elements);
- the ``vector_ops`` table (format 4): each row's per-kind op count (``OP_COSTS``), transcendentals
  at ``vector_unit.transcendental_ops`` each, streamed through off-chip memory;
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
from collections.abc import Sequence
from dataclasses import dataclass

from archs import Architecture
from traces.format.layer import LayerSpec

from .energy import pass_energy
from .pricing import ratio, total_pj

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


def gemm_pass_work(spec: LayerSpec, pass_: str, batch: int, method: str, stats: dict,
                   counted: bool = False) -> VectorWork:
    """Non-GEMM work that goes with one GEMM pass of one layer. ``counted``: the trace counts the
    step's non-GEMM work itself (a ``vector_ops`` table, replayed as rows of its own), so the
    per-output estimate of the activation and normalisation around the layer is left out: the
    forward keeps one op per output for a bias, backward-data its col2im additions. A layer without
    a weight (a ``matmul`` of two activations) has none fused with it: the softmax, scaling and
    masking around attention products are vector ops of their own."""
    if not spec.has_weight:
        return VectorWork(0.0)
    if pass_ == "forward":
        ops = (spec.numel("y", batch) if spec.bias else 0) if counted else 2 * spec.numel("y", batch)
        ops += float(stats.get("drs_macs", 0)) + float(stats.get("drs_adds", 0))
        ops += float(stats.get("selection_compares", 0))  # DSG's and top-k attention's compares
        ops += float(stats.get("selection_macs", 0))  # top-k attention's selection product
        if method == "dst":
            ops += 2 * spec.numel("w", 1)
        if spec.geometry.col2im_pass == "forward":  # a transposed conv sums its products into Y
            g = spec.gemm("forward", batch)
            ops += max(g.m * g.n * g.groups - spec.numel("y", batch), 0)
        return VectorWork(ops)
    if pass_ == "backward_data":
        g = spec.gemm("backward_data", batch)
        col2im = g.m * g.n * g.groups - spec.numel("x", batch)
        return VectorWork((0 if counted else 2 * spec.numel("dy", batch)) + max(col2im, 0))
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


# -- the trace's counted non-GEMM work (manifest ``vector_ops``, format 4) ------------------------

@dataclass(frozen=True)
class OpCost:
    """Per element of one ``vector_ops`` kind: element operations and transcendentals (exp, log,
    erf, tanh, rsqrt: ``arch.vector_unit.transcendental_ops`` each) of its forward and of its
    backward (the input gradient), and how many tensors of its size each reads and writes when
    it runs unfused, streaming through off-chip memory. Counts follow each op's formula
    (docs/layer-kinds.md, "Vector work"); a reduction over rows (softmax, norms) counts its
    per-row work per element."""

    fwd_ops: float
    fwd_trans: float = 0.0
    bwd_ops: float = 0.0
    bwd_trans: float = 0.0
    fwd_reads: int = 1
    bwd_reads: int = 2  # dy and the saved input or output
    bwd_writes: int = 1

    def work(self, pass_: str, elements: int, element_bytes: float, transcendental_ops: float) -> VectorWork:
        """The work of one pass over ``elements`` elements."""
        if pass_ == "forward":
            ops, reads, writes = self.fwd_ops + self.fwd_trans * transcendental_ops, self.fwd_reads, 1
        else:
            ops = self.bwd_ops + self.bwd_trans * transcendental_ops
            reads, writes = self.bwd_reads, self.bwd_writes
        return VectorWork(ops * elements, offchip_read_bytes=reads * elements * element_bytes,
                          offchip_write_bytes=writes * elements * element_bytes)


OP_COSTS: dict[str, OpCost] = {
    # x + y; backward: the gradient passes through (no kernel)
    "add": OpCost(1, fwd_reads=2, bwd_ops=0, bwd_reads=0, bwd_writes=0),
    "mul": OpCost(1, fwd_reads=2, bwd_ops=2, bwd_reads=3, bwd_writes=2),  # dx = dy·y, dy_ = dy·x
    "div": OpCost(1, fwd_reads=2, bwd_ops=3, bwd_reads=3, bwd_writes=2),
    "select": OpCost(1, fwd_reads=2, bwd_ops=1),  # where / masked_fill / compare
    "elementwise": OpCost(1, bwd_ops=1),  # an operator without its own entry: one op each way
    "relu": OpCost(1, bwd_ops=1),  # max(x, 0); dy where x > 0
    "tanh": OpCost(0, 1, bwd_ops=3),  # (1 - y²)·dy
    "sigmoid": OpCost(3, 1, bwd_ops=3),  # 1/(1+e^-x): neg, add, div; y(1-y)·dy
    "silu": OpCost(4, 1, bwd_ops=7, bwd_trans=1),  # x·σ(x); σ again, σ(1 + x(1-σ))·dy
    "gelu": OpCost(4, 1, bwd_ops=8, bwd_trans=2),  # x·½(1+erf(x/√2)); ½(1+erf) + x·φ(x) with φ's exp
    "exp": OpCost(0, 1, bwd_ops=1),  # dy·y
    "log": OpCost(0, 1, bwd_ops=1),  # dy/x
    "sqrt": OpCost(0, 1, bwd_ops=2),  # dy/(2y)
    "rsqrt": OpCost(0, 1, bwd_ops=3),  # -½·y³·dy
    "pow": OpCost(2, bwd_ops=3),  # x^p for small integer p by multiplications; p·x^(p-1)·dy
    "dropout": OpCost(2, bwd_ops=1, bwd_reads=2),  # random number, compare (mask); dy·mask·scale
    "reduce": OpCost(1, bwd_ops=1, bwd_reads=1),  # sum/mean/max over the input's elements; broadcast
    "pool": OpCost(1, bwd_ops=1),  # one compare or add per input element
    # max, subtract, exp, sum, divide; y·(dy − Σ dy·y): multiply, sum, subtract, multiply
    "softmax": OpCost(4, 1, bwd_ops=4),
    "log_softmax": OpCost(4, 1, bwd_ops=3, bwd_trans=1),  # max, sub, exp, sum, (log per row), sub
    # mean, subtract, square, sum, scale by rstd, γ, β (rsqrt per row); 11 ops for dx, dγ, dβ
    "layer_norm": OpCost(7, bwd_ops=11, bwd_reads=3, bwd_writes=1),
    "batch_norm": OpCost(7, bwd_ops=11, bwd_reads=3, bwd_writes=1),
    "rms_norm": OpCost(4, bwd_ops=8, bwd_reads=3, bwd_writes=1),  # square, sum, scale, γ
}


def vector_op_work(arch: Architecture, row: dict, pass_: str, batch: int, element_bytes: float) -> VectorWork:
    """The work of one ``vector_ops`` row in one pass of a step of ``batch`` samples."""
    return OP_COSTS[row["kind"]].work(pass_, vector_elements(row, batch), element_bytes,
                                      arch.vector_unit.transcendental_ops)


def vector_elements(row: dict, batch: int) -> int:
    """Elements a ``vector_ops`` row processes per pass (``traces.format.vector_ops.elements``)."""
    n = math.prod(row["shape"])
    return n * batch if row.get("batched", True) else n


def vector_op_rows(arch: Architecture, table: list[dict], batch: int, index: int, passes: Sequence[str],
                   element_bytes: float) -> list[dict]:
    """Report rows of a step's counted non-GEMM work on the vector unit: one per ``vector_ops``
    row and pass, streamed through off-chip memory (unfused kernels: the bound for a machine that
    keeps them on chip). No sparse feature applies, so each equals its dense baseline."""
    off = arch.off_chip.name
    out = []
    for row in table:
        for pass_ in row["passes"]:
            if pass_ not in passes:
                continue
            work = vector_op_work(arch, row, pass_, batch, element_bytes)
            if not (work.ops or work.offchip_read_bytes or work.offchip_write_bytes):
                continue  # nothing runs (an add's backward passes its gradient on)
            cycles = work.cycles(arch)
            traffic = {(off, "a", "data", "read"): work.offchip_read_bytes,
                       (off, "c", "data", "write"): work.offchip_write_bytes}
            energy = pass_energy(arch, actual_macs=0, gated_macs=0, traffic=traffic, vector_ops=work.ops,
                                 cycles=cycles)
            e = total_pj(energy)
            rep = {"iteration": index, "layer": row["name"], "pass": pass_, "mode": "exact",
                   "vector_op_kind": row["kind"], "batch": batch, "simulated_batch": batch,
                   "cycles": cycles, "gemm_cycles": 0, "vector_cycles": cycles, "compute_cycles": 0,
                   "stall_cycles": 0, "algorithmic_macs": 0, "effectual_macs": 0, "actual_macs": 0,
                   "gated_macs": 0, "skipped_macs": 0, "vector_ops": work.ops, "energy_pj": e,
                   "dense_cycles": cycles, "dense_energy_pj": e, "speedup": 1.0,
                   "energy_saving": ratio(e, e, 1.0), f"{off}_a_read_bytes": work.offchip_read_bytes,
                   f"{off}_c_write_bytes": work.offchip_write_bytes}
            rep.update({f"energy_{k}_pj": v for k, v in energy.items()})
            out.append(rep)
    return out
