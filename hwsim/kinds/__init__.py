"""Layer kinds whose workload is not the conv/linear im2col view (``hwsim.workload``): one module
per kind with ``operands``, ``operand_counts`` and ``effectual`` of the same signatures."""

from __future__ import annotations

from types import ModuleType

from . import convnd, matmul

# kind -> its workload module
WORKLOADS: dict[str, ModuleType] = {"matmul": matmul, "conv3d": convnd, "conv_transpose": convnd}
