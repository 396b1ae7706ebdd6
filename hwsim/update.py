"""The update pass (optimizer step) on the vector unit, shared by the families that do it there.

Reads the weight, its gradient and the optimizer state from off-chip memory and writes the weight
and state back (``hwsim.vector.update_work``); when the weight mask changed this step (DST) a
compressed off-chip weight is re-encoded. The dense baseline is the same step without re-encoding.
"""

from __future__ import annotations

from archs import Architecture
from traces.format.layer import LayerSpec

from .energy import pass_energy
from .layer_input import LayerInput
from .pricing import ratio, total_pj
from .vector import UPDATE_OPS_PER_WEIGHT, compressed_weight_bytes, update_work

STATE_TENSORS = {"SGD": 1, "Adam": 2, "AdamW": 2, "RMSprop": 1, "Adagrad": 1}
STATE_BYTES = 4.0  # optimizer state is float32
MAX_STATE_TENSORS = 64  # a recorded count above this is not an optimizer's state


def state_tensors(manifest: dict) -> int:
    """Optimizer state tensors per weight (momentum: 1; Adam: 2) from a trace manifest: the
    recorded ``optimizer.state_tensors`` (format 3), else by the optimizer's name (a trace without
    an optimizer: SGD with momentum); ValueError for a name hwsim does not know."""
    opt = manifest.get("optimizer") or {}
    n = opt.get("state_tensors")
    if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_STATE_TENSORS:
        return n
    name = opt.get("name", "SGD")
    if name not in STATE_TENSORS:
        raise ValueError(f"the trace's optimizer {name!r} is not one hwsim knows "
                         f"({', '.join(STATE_TENSORS)}) and the trace does not record its state "
                         "(optimizer.state_tensors): re-record it with traces.record(..., "
                         "optimizer_state_tensors=N)")
    return STATE_TENSORS[name]


def update_ops_per_weight(manifest: dict) -> float:
    """Element operations per weight of one optimizer step: the recorder's count
    (``optimizer.update_ops_per_weight``), else ``UPDATE_OPS_PER_WEIGHT`` (older traces)."""
    ops = (manifest.get("optimizer") or {}).get("update_ops_per_weight")
    recorded = isinstance(ops, (int, float)) and not isinstance(ops, bool)
    return float(ops) if recorded else UPDATE_OPS_PER_WEIGHT


def update_row(arch: Architecture, spec: LayerSpec, index: int, *, weight_bits: int, gradient_bits: int,
               state: int, w_nnz: int = 0, mask_changed: bool = False,
               ops_per_weight: float = UPDATE_OPS_PER_WEIGHT) -> dict:
    """The report row of one layer's update pass (energy in pJ, cycles of the core clock)."""
    wb_, gb = weight_bits / 8, gradient_bits / 8
    reencode = compressed_weight_bytes(arch, spec, w_nnz, wb_) if mask_changed else 0.0
    vec = update_work(spec, wb_, gb, state, STATE_BYTES, reencode, ops_per_weight)
    base = update_work(spec, wb_, gb, state, STATE_BYTES, ops_per_weight=ops_per_weight)
    cycles, base_cycles = vec.cycles(arch), base.cycles(arch)
    off = arch.off_chip.name
    traffic_ = {(off, "b", "data", "read"): vec.offchip_read_bytes,
                (off, "b", "data", "write"): vec.offchip_write_bytes}
    energy = pass_energy(arch, actual_macs=0, gated_macs=0, traffic=traffic_, vector_ops=vec.ops,
                         cycles=cycles)
    e = total_pj(energy)
    base_traffic = {(off, "b", "data", "read"): base.offchip_read_bytes,
                    (off, "b", "data", "write"): base.offchip_write_bytes}
    e_base = total_pj(pass_energy(arch, actual_macs=0, gated_macs=0, traffic=base_traffic,
                                  vector_ops=base.ops, cycles=base_cycles))
    row = {"iteration": index, "layer": spec.name, "pass": "update", "mode": "exact", "cycles": cycles,
           "gemm_cycles": 0,
           "vector_cycles": cycles, "compute_cycles": 0, "stall_cycles": 0, "vector_ops": vec.ops,
           "energy_pj": e, "dense_cycles": base_cycles, "dense_energy_pj": e_base,
           "speedup": ratio(base_cycles, cycles), "energy_saving": ratio(e_base, e),
           f"{off}_b_read_bytes": vec.offchip_read_bytes, f"{off}_b_write_bytes": vec.offchip_write_bytes}
    row.update({f"energy_{k}_pj": v for k, v in energy.items()})
    return row


def layer_update_row(arch: Architecture, spec: LayerSpec, it: LayerInput, li: int, *, weight_bits: int,
                     gradient_bits: int, state: int,
                     ops_per_weight: float = UPDATE_OPS_PER_WEIGHT) -> dict | None:
    """The update row of one layer of one iteration (None when its weights got no gradient: frozen),
    re-encoding a compressed weight when the method changed its mask this step. A layer without a
    weight (``matmul``) has no update: None."""
    if not spec.has_weight or it.count(li, "dw") is None:
        return None
    return update_row(arch, spec, it.index, weight_bits=weight_bits, gradient_bits=gradient_bits, state=state,
                      w_nnz=it.count(li, "w") or 0, mask_changed=it.weight_mask_changed(),
                      ops_per_weight=ops_per_weight)
