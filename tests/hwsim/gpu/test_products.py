"""GPU replay of products of two activations: batched launches, and an SDPA attention pair as one
fused kernel or unfused with its mask and softmax kernels (hwsim/gpu/products.py)."""

from __future__ import annotations

import pytest

import archs
from hwsim.gpu.attention import AttentionShape, attention_cost
from hwsim.gpu.batched import batched_gemm_cost
from hwsim.gpu.gemm import Operands
from hwsim.gpu.memory_bound import memory_bound_cost
from hwsim.simulate import simulate
from traces.synth_transformer import TransformerConfig, write_transformer

A100 = archs.PRESETS["gpu-a100"]
CFG = TransformerConfig(layers=1, d_model=64, heads=2, seq=128, batch=2)


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return write_transformer(CFG, tmp_path_factory.mktemp("gpt") / "t.trace")


def _rows(trace, arch):
    df = simulate(trace, arch).to_frame()
    return {(r.layer, r["pass"]): r for _, r in df.iterrows()}


def test_fused_pair_runs_as_one_kernel(trace):
    rows = _rows(trace, A100)
    shape = AttentionShape(2 * 2, 128, 128, 32, causal=True)
    fwd = attention_cost(A100, shape, "forward", fused=True)
    bwd = attention_cost(A100, shape, "backward", fused=True)
    assert rows[("h.0.attn.scores", "forward")]["gemm_cycles"] == fwd.cycles
    assert rows[("h.0.attn.scores", "backward_data")]["gemm_cycles"] == bwd.cycles
    assert rows[("h.0.attn.scores", "backward_data")]["gpu_recompute_macs"] == bwd.tensor_macs // 5
    for key in (("h.0.attn.scores", "backward_weight"), ("h.0.attn.context", "forward"),
                ("h.0.attn.context", "backward_data"), ("h.0.attn.context", "backward_weight")):
        assert rows[key]["cycles"] == 0 and rows[key]["gpu_sparse_path"].startswith("fused in h.0.attn")
    for r in rows.values():  # the MAC classes still add up; causal tiles above the diagonal are skipped
        assert r["algorithmic_macs"] == r["actual_macs"] + r["gated_macs"] + r["skipped_macs"]
        assert r["skipped_macs"] >= 0
    # 128 queries in one 128-row tile see both 64-key tiles: nothing skipped at this size; the causal
    # diagonal half is skipped in the scores' effectual count only
    assert rows[("h.0.attn.scores", "forward")]["effectual_macs"] == 4 * 32 * (128 * 129 // 2)


def test_unfused_pair_adds_mask_and_softmax_kernels(trace):
    unfused = archs.replace(A100, {"gpu.transformer.attention": "unfused"})
    rows = _rows(trace, unfused)
    ops = Operands(2, 2, 2)
    fwd = rows[("h.0.attn.scores", "forward")]
    assert fwd["gemm_cycles"] == batched_gemm_cost(unfused, 4, 128, 32, 128, ops).cycles
    n = 4 * 128 * 128
    assert fwd["vector_cycles"] == sum(memory_bound_cost(unfused, k, "forward", n, row=128).cycles
                                       for k in ("mask", "softmax"))
    ctx = rows[("h.0.attn.context", "forward")]
    assert ctx["gemm_cycles"] == batched_gemm_cost(unfused, 4, 128, 128, 32, ops).cycles
    assert ctx["vector_cycles"] == 0 and ctx["gpu_sparse_path"] == "dense"
