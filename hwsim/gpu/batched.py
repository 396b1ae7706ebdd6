"""Batched GEMMs on a GPU: ``groups`` independent ``m × k × n`` GEMMs in one launch.

Attention's score and context products (one GEMM per sample and head: ``groups = batch × heads``)
and grouped convolutions run as one batched kernel (cuBLAS ``gemmStridedBatched``): the thread
blocks of every group share the waves, so a group with fewer tiles than SMs does not cost a wave of
its own, and wave quantization is over all ``groups × tiles`` blocks, each wave reading the panels
of the groups it holds (``hwsim.gpu.tiling.grid`` with ``groups``). The library picks the tile for
the whole batch, and does not split K (a small group alone would be split, a batch that fills the
machine is not).
"""

from __future__ import annotations

from archs import Architecture

from .gemm import GemmCost, Operands, gemm_cost


def batched_gemm_cost(arch: Architecture, groups: int, m: int, k: int, n: int, ops: Operands, *,
                      efficiency: float = 0.0) -> GemmCost:
    """The fastest tiling of ``groups`` batched ``m × k × n`` GEMMs (one group: the GEMM heuristic,
    split-K included)."""
    if groups == 1:
        return gemm_cost(arch, m, k, n, ops, efficiency=efficiency)
    return gemm_cost(arch, m, k, n, ops, split_k=False, efficiency=efficiency, groups=groups)
