"""Memory of a GPU layer's replay beyond its input (``hwsim.memory``), an upper estimate.

The GPU model needs the operands' non-zero counts, not their im2col: per pass it holds the rows
of the masks it counts and the selected outputs (bool, ``M·K`` and ``M·N`` per group, twice for
the temporaries of the counts), and for 2:4 the weight mask padded to whole MMA tiles with its
group checks (8 bytes per weight). Checked against tracemalloc peaks of every ResNet-18 layer at
batch 8 and 32 (tests/hwsim/test_memory_budget.py checks the process's peak RSS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from traces.format.layer import LayerSpec


def working_bytes(ctx: Any, spec: LayerSpec, batch: int, passes: Sequence[str], weights: bool) -> int:
    """Bytes one layer's replay allocates at its peak (its masks not included)."""
    total = 0
    for p in passes:
        if p == "update":
            continue
        g = spec.gemm(p, batch)
        total = max(total, g.groups * (g.m * g.k + g.m * g.n + 4 * g.k * g.n))
    return total + 2**20
