"""Layer kinds whose workload is not the conv/linear im2col view (``hwsim.workload``): one module
per kind with ``operands``, ``operand_counts`` and ``effectual`` of the same signatures."""

from __future__ import annotations

from types import ModuleType

from . import matmul

WORKLOADS: dict[str, ModuleType] = {"matmul": matmul}  # kind -> its workload module
