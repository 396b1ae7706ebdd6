"""Memory of a ReRAM layer's replay beyond its input (``hwsim.memory``), an upper estimate.

Every pass: the im2col of X and the rows of dY as bool (``M·K``, ``M·N`` per group, kept across
the layer's passes) with room for temporaries; per crossbar pass (``crossbar.mvm_costs``), per
input row, the lines driven in every sequential read of every block:
``M × K-blocks × reads`` int64 counts with their bool and float companions (24 bytes each). The
update (``writes``) holds per cell of the layer's copy (``weights × slices × column sets``) the
integer codes and levels before and after the step, the LTP and LTD pulses, their sum, the
conductance factor and the padded per-crossbar layouts of the SET and RESET pulses (96 bytes per
cell); the wear (pulses and writes per cell, 8 bytes) stays in the context across steps.
Checked against tracemalloc peaks of every ResNet-18 layer at batch 8 and 32 on both presets
(tests/hwsim/test_memory_budget.py checks the process's peak RSS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from traces.format.layer import LayerSpec

from .mapping import column_sets, slices_per_weight


def working_bytes(ctx: Any, spec: LayerSpec, batch: int, passes: Sequence[str], weights: bool) -> int:
    """Bytes one layer's replay allocates at its peak (its masks not included); ``weights``: the
    trace stores weights, so the update counts cell writes."""
    r = ctx.r
    xb = r.crossbar
    fwd = spec.gemm("forward", batch)
    operands = 3 * fwd.groups * fwd.m * (fwd.k + fwd.n)  # X im2col and dY rows, bool, and temporaries
    total = 0
    for p in passes:
        if p == "update":
            if weights:
                total = max(total, 96 * spec.numel("w", 1) * slices_per_weight(r) * column_sets(r))
            continue
        if p == "backward_weight" or (p == "backward_data" and not r.transposed_read) \
                or not spec.has_weight:  # digital unit
            total = max(total, operands)
            continue
        g = spec.gemm(p, batch)
        in_block = xb.cols if p == "backward_data" else xb.rows
        par = xb.parallel_rows if 0 < xb.parallel_rows < in_block else in_block
        reads = math.ceil(in_block / par) * math.ceil(g.k / in_block)  # per input row
        total = max(total, operands + 24 * g.groups * g.m * reads + 8 * g.groups * g.k * g.n)
    return total + 4 * 2**20  # fixed costs (tables, small arrays): 1.3 MiB measured on LeNet-5 layers
