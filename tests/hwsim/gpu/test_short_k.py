"""The short-K regime of multistage GEMM kernels (docs/gpu.md, "Short K") and batched GEMMs as one grid:
a block whose whole K slice fits its kernel's prologue writes its C after its MMAs, and only that
case changes."""

from __future__ import annotations

import pytest

import archs
from hwsim.gpu.batched import batched_gemm_cost
from hwsim.gpu.gemm import Kernel, Operands, gemm_cost
from hwsim.gpu.kernels import hbm_bytes_per_cycle

from .helpers import A100

OPS = Operands(2, 2, 2)
OFF = archs.replace(A100, {"gpu.short_k_stages": 0})  # every GEMM overlapped, as before the regime


def _c_write_cycles(cost) -> float:
    return cost.traffic[("hbm", "c", "data", "write")] / hbm_bytes_per_cycle(A100)


def test_a100_kernels_are_short_up_to_two_k_steps_of_64():
    g = A100.gpu
    assert (g.short_k_tile_k, g.short_k_stages) == (64, 3)
    assert (g.short_k_tile_k * (g.short_k_stages - 1)) == 128  # K that the prologue fetches whole
    h100 = archs.PRESETS["gpu-h100"].gpu
    assert h100.short_k_stages == 0  # warp-specialized: no such regime


def test_short_k_scores_write_after_their_math():
    # attention scores: 96 heads of 2048 x 128 x 2048, 0.8 GB of FP16 C for 103 GFLOP
    serial = batched_gemm_cost(A100, 96, 2048, 128, 2048, OPS)
    overlapped = batched_gemm_cost(OFF, 96, 2048, 128, 2048, OPS)
    write = _c_write_cycles(serial)
    # the C write is added, at most once per wave, to what the overlapped model hid under the math
    assert overlapped.cycles + 0.5 * write < serial.cycles <= overlapped.cycles + write + serial.waves


@pytest.mark.parametrize("k", [129, 192, 256, 4096])
def test_a_k_slice_longer_than_the_prologue_is_unchanged(k):
    # three or more K steps of 64: a steady-state main loop, the overlapped model as before
    assert batched_gemm_cost(A100, 96, 2048, k, 2048, OPS).cycles == \
        batched_gemm_cost(OFF, 96, 2048, k, 2048, OPS).cycles
    assert gemm_cost(A100, 4096, k, 4096, OPS).cycles == gemm_cost(OFF, 4096, k, 4096, OPS).cycles


def test_a_fixed_kernel_uses_its_own_stages():
    # a 128x128x32 kernel with 5 stages fetches K = 128 whole; with 4 stages it has a steady state
    m = n = 8192
    five, four = Kernel(128, 128, 32, 5), Kernel(128, 128, 32, 4)
    assert gemm_cost(A100, m, 128, n, OPS, kernel=five).cycles > \
        gemm_cost(OFF, m, 128, n, OPS, kernel=five).cycles
    assert gemm_cost(A100, m, 128, n, OPS, kernel=four).cycles == \
        gemm_cost(OFF, m, 128, n, OPS, kernel=four).cycles


def test_resident_blocks_that_fit_shared_memory_hide_each_others_stores():
    # two blocks per SM where shared memory holds both: a 64x64x64 kernel of 3 stages holds 48 KB, a
    # 128x128x64 one 96 KB (two do not fit in 164 KB). Unlimited shared memory lets both stay resident.
    two = archs.replace(A100, {"gpu.threadblocks_per_sm": 2})
    unlimited = archs.replace(two, {"gpu.smem_bytes_per_sm": 0})
    small, large = Kernel(64, 64, 64, 3), Kernel(128, 128, 64, 3)
    args = (8192, 128, 8192, OPS)
    assert gemm_cost(two, *args, kernel=small).cycles == gemm_cost(unlimited, *args, kernel=small).cycles
    assert gemm_cost(two, *args, kernel=large).cycles > gemm_cost(unlimited, *args, kernel=large).cycles


def test_a_batch_is_one_grid_whose_waves_read_their_groups_panels():
    # 96 groups of 2048 x 2048 x 128 (16 tiles of 128 x 128 each): every group's A and C once, its B
    # panel once per wave that holds the group
    cost = gemm_cost(A100, 2048, 2048, 128, OPS, kernel=Kernel(128, 128, 32, 4), split_k=False, groups=96)
    assert cost.blocks == 96 * 16 and cost.waves == -(-96 * 16 // A100.gpu.sms)
    hbm = {key[1:]: v for key, v in cost.traffic.items() if key[0] == "hbm"}
    assert hbm[("a", "data", "read")] == 96 * 2048 * 2048 * 2
    assert hbm[("c", "data", "write")] == 96 * 2048 * 128 * 2
    b_group = 2048 * 128 * 2
    assert 96 * b_group <= hbm[("b", "data", "read")] <= (96 + cost.waves) * b_group
