"""GPU transformer kernels: fused and unfused attention, batched GEMMs, memory-bound kernels, and the
published A100 points of ``tests/data/gpu_transformer_published.csv`` (``transformer_published.py``)."""

from __future__ import annotations

import numpy as np
import pytest

import archs
from hwsim.errors import MappingError
from hwsim.gpu.attention import AttentionShape, attention_cost
from hwsim.gpu.batched import batched_gemm_cost
from hwsim.gpu.gemm import Operands, gemm_cost
from hwsim.gpu.memory_bound import memory_bound_cost

from . import transformer_published as tp

A100 = archs.PRESETS["gpu-a100"]
OPS = Operands(2, 2, 2)
POINTS = tp.load()


def _brute_kv_steps(s: AttentionShape, tq: int, tk: int) -> list[int]:
    """Key tiles holding at least one key some query of the tile sees (scalar reference)."""
    out = []
    for i in range(-(-s.seq_q // tq)):
        tiles = set()
        for r in range(i * tq, min((i + 1) * tq, s.seq_q)):
            for j in range(s.seq_k):
                if not s.causal or j <= r + s.key_offset:
                    tiles.add(j // tk)
        out.append(len(tiles))
    return out


@pytest.mark.parametrize("lq,lk,offset", [(100, 100, 0), (64, 200, 136), (130, 70, 0), (33, 33, 0)])
def test_causal_tiles_and_scores_match_a_scalar_reference(lq, lk, offset):
    s = AttentionShape(3, lq, lk, 16, causal=True, key_offset=offset)
    assert s.kv_steps(32, 16).tolist() == _brute_kv_steps(s, 32, 16)
    assert s.computed_scores == 3 * sum(1 for i in range(lq) for j in range(lk) if j <= i + offset)
    # backward: (key tile, query tile) pairs visited equal the forward's (query tile, key tile) pairs
    fwd = sum(_brute_kv_steps(s, 16, 32))
    assert int(s.q_steps(16, 32).sum()) == fwd


def test_causal_square_skips_the_masked_half():
    s = AttentionShape(64, 2048, 2048, 128, causal=True)
    assert s.computed_scores == 64 * 2048 * 2049 // 2  # L(L-1)/2 masked products skipped per problem
    full = attention_cost(A100, AttentionShape(64, 2048, 2048, 128), "forward", fused=True)
    half = attention_cost(A100, s, "forward", fused=True)
    n = 2048 // 64
    # key tiles visited: query tile i (128 rows) sees 2(i + 1) tiles of 64
    assert half.tensor_macs == 64 * sum(2 * (i + 1) for i in range(2048 // 128)) * 2 * 128 * 64 * 128
    assert full.tensor_macs == 64 * (2048 // 128) * n * 2 * 128 * 64 * 128 == 64 * 2 * 2048 * 2048 * 128
    # diagonal tiles run in full, and blocks of unequal work leave a tail
    assert 0.5 * full.cycles < half.cycles < 0.65 * full.cycles


def test_backward_does_two_and_a_half_times_the_forward_tensor_work():
    s = AttentionShape(16, 1024, 1024, 128)
    fwd = attention_cost(A100, s, "forward", fused=True)
    bwd = attention_cost(A100, s, "backward", fused=True)
    assert bwd.tensor_macs == 5 * fwd.tensor_macs // 2  # 5 tile GEMMs against 2
    assert set(bwd.kernels) == {"flash_backward_preprocess", "flash_backward", "flash_backward_dq_convert"}


def test_unfused_materialises_the_scores_and_fused_does_not():
    s = AttentionShape(32, 1024, 1024, 64, causal=True)
    fused = attention_cost(A100, s, "forward", fused=True)
    unfused = attention_cost(A100, s, "forward", fused=False)
    off = A100.off_chip.name
    scores_bytes = 32 * 1024 * 1024 * 2
    q_bytes = 32 * 1024 * 64 * 2
    assert fused.traffic[(off, "a", "data", "read")] == 3 * q_bytes  # Q, K, V once
    # unfused: S written by the GEMM, read and written by the mask and the softmax, P read by P·V
    written = sum(v for (lvl, _, _, d), v in unfused.traffic.items() if lvl == off and d == "write")
    assert written >= 3 * scores_bytes
    assert unfused.tensor_macs == 32 * 2 * 1024 * 1024 * 64  # every score computed, mask or not
    assert unfused.cycles > fused.cycles
    assert set(unfused.kernels) == {"scores", "context", "mask_forward", "softmax_forward"}


def test_the_spec_field_chooses_the_path():
    s = AttentionShape(4, 256, 256, 64)
    unfused_arch = archs.replace(A100, {"gpu.transformer.attention": "unfused"})
    assert attention_cost(unfused_arch, s, "forward").kernels == attention_cost(A100, s, "forward",
                                                                                 fused=False).kernels
    assert "flash_forward" in attention_cost(A100, s, "forward").kernels
    with pytest.raises(MappingError):
        attention_cost(A100, s, "update")


def test_batched_gemm_shares_waves_over_groups():
    # 16 groups of 2048 x 128 x 2048 with 128x128 tiles: 256 blocks each, 4096 in all on 108 SMs
    one = gemm_cost(A100, 2048, 128, 2048, OPS)
    batch = batched_gemm_cost(A100, 16, 2048, 128, 2048, OPS)
    assert batch.blocks == 16 * (2048 // batch.tile[0]) * (2048 // batch.tile[1])
    assert batch.waves == -(-batch.blocks // A100.gpu.sms)
    assert batch.cycles < 16 * one.cycles  # one launch, no per-group tail wave
    # a group smaller than the machine does not split K when the batch fills it
    small = batched_gemm_cost(A100, 96, 2048, 2048, 128, OPS)
    assert small.split == 1 and small.waves == -(-small.blocks // A100.gpu.sms)


def test_memory_bound_bytes_per_kind():
    e, eb = 1000 * 768, 2
    ln = memory_bound_cost(A100, "layer_norm", "forward", e, row=768)
    assert ln.read_bytes == e * eb and ln.write_bytes == e * eb + 1000 * 8
    drop = memory_bound_cost(A100, "dropout", "forward", e)
    assert drop.write_bytes == e * eb + e  # output and a 1-byte mask
    add = memory_bound_cost(A100, "add", "forward", e)
    assert (add.read_bytes, add.write_bytes) == (2 * e * eb, e * eb)
    # a reduction streams at reduction_bandwidth_fraction of an elementwise kernel's bandwidth
    gelu, soft = (memory_bound_cost(A100, k, "forward", 10**8) for k in ("gelu", "softmax"))
    assert soft.cycles > gelu.cycles
    with pytest.raises(MappingError, match="no memory-bound GPU kernel"):
        memory_bound_cost(A100, "conv", "forward", 10)
    # vector lanes not modelled (0): the ops take no time, the bytes still do
    no_lanes = archs.replace(A100, {"vector_unit.lanes": 0})
    assert memory_bound_cost(no_lanes, "gelu", "forward", 10**8).cycles == gelu.cycles


@pytest.mark.parametrize("p", POINTS, ids=[p.id for p in POINTS])
def test_published_point_within_20_percent(p):
    assert abs(p.error) <= 0.20, f"{p.id}: model {p.model_ms:.4f} ms, published {p.measured_ms:.4f} ms"


def test_held_out_points_mean_error():
    held = [abs(p.error) for p in POINTS if p.split == "holdout"]
    assert len(held) >= 24
    assert np.mean(held) <= 0.10


def test_gpt3_layer_ops_are_counted_and_fused_attention_wins():
    fused = tp.gpt3_layer_ops(A100, fused=True)
    unfused = tp.gpt3_layer_ops(A100, fused=False)
    assert sum(fused.values()) < sum(unfused.values())
    # the four projections hold 12·d² MACs per token: at 2048 tokens they run near the tensor-core peak
    macs = 2048 * 12 * 12288**2
    gemm_ms = sum(fused[k] for k in ("qkv", "proj", "mlp_up", "mlp_down"))
    peak_ms = macs / (108 * 1024 * 1.41e9) * 1e3
    assert peak_ms < gemm_ms < 1.3 * peak_ms
