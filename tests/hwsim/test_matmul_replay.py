"""Products of two activations (``matmul`` layers): operands, effectual MACs against a scalar
reference, and the replay of causal attention (the masked score products are skipped)."""

from __future__ import annotations

import numpy as np
import pytest

import traces
from hwsim.simulate import simulate
from hwsim.workload import effectual, operand_counts, operands
from tests.traces.helpers import attention_layers, write_attention_trace


def scalar_effectual(pass_: str, x, w, dy, need) -> int:
    """Loops over groups and i, j, k: forward Σ x[m,k]·w[k,n]·need[m,n]; backward-data (dA = dC·Bᵀ)
    Σ dy[m,n]·w[k,n]; backward-weight (dB = Aᵀ·dC) Σ x[m,k]·dy[m,n]·need[k,n]."""
    x, w, dy = (None if a is None else a.reshape(-1, *a.shape[-2:]) for a in (x, w, dy))
    need = None if need is None else need.reshape(-1, *need.shape[-2:])
    total = 0
    groups, m_, k_ = x.shape if x is not None else (dy.shape[0], dy.shape[1], w.shape[1])
    n_ = w.shape[2] if w is not None else dy.shape[2]
    for g in range(groups):
        for i in range(m_):
            for j in range(n_):
                for k in range(k_):
                    if pass_ == "forward":
                        total += bool(x[g, i, k] and w[g, k, j] and (need is None or need[g, i, j]))
                    elif pass_ == "backward_data":
                        total += bool(dy[g, i, j] and w[g, k, j])
                    else:
                        total += bool(x[g, i, k] and dy[g, i, j] and (need is None or need[g, k, j]))
    return total


@pytest.mark.parametrize("seed", range(3))
def test_effectual_macs_equal_the_scalar_reference(seed):
    rng = np.random.default_rng(seed)
    scores = attention_layers(seq=5, dim=3, heads=2)[0]
    b = 2
    masks = {"x": rng.random((b, 2, 5, 3)) < 0.5, "w": rng.random((b, 2, 3, 5)) < 0.6,
             "dy": rng.random((b, 2, 5, 5)) < 0.4,
             "y_sel": np.broadcast_to(np.tril(np.ones((5, 5), bool)), (b, 2, 5, 5)),
             "dw_needed": rng.random((b, 2, 3, 5)) < 0.7 if seed else None}
    for pass_ in ("forward", "backward_data", "backward_weight"):
        need = {"forward": masks["y_sel"], "backward_data": None,
                "backward_weight": masks["dw_needed"]}[pass_]
        expect = scalar_effectual(pass_, masks["x"], masks["w"], masks["dy"], need)
        assert effectual(scores, pass_, masks) == (expect, expect), pass_
        ops = operands(scores, pass_, masks)
        assert len(ops) == b * 2
        assert operand_counts(scores, pass_, masks) == [(int(o.a.sum()), int(o.b.sum())) for o in ops]
        # the operands' own effectual products (a ∧ b ∧ need) give the same count
        from_ops = sum(int(((o.a.astype(np.int64) @ o.b.astype(np.int64))
                            * (1 if o.need is None else o.need)).sum()) for o in ops)
        assert from_ops == expect, pass_
    # the dense selection-free sums agree with the masked path
    dense = {**masks, "y_sel": None}
    expect = scalar_effectual("forward", masks["x"], masks["w"], None, None)
    assert effectual(scores, "forward", dense)[0] == expect


def test_operands_of_each_pass_are_the_masks_of_the_right_group():
    rng = np.random.default_rng(7)
    spec = attention_layers(seq=4, dim=3, heads=2)[0]
    x, w, dy = rng.random((2, 2, 4, 3)) < 0.5, rng.random((2, 2, 3, 4)) < 0.5, rng.random((2, 2, 4, 4)) < 0.5
    masks = {"x": x, "w": w, "dy": dy, "y_sel": None, "dw_needed": None}
    fwd, bwd_d, bwd_w = (operands(spec, p, masks) for p in ("forward", "backward_data", "backward_weight"))
    g = 3  # sample 1, head 1
    assert np.array_equal(fwd[g].a, x[1, 1]) and np.array_equal(fwd[g].b, w[1, 1])
    assert np.array_equal(bwd_d[g].a, dy[1, 1]) and np.array_equal(bwd_d[g].b, w[1, 1].T)
    assert np.array_equal(bwd_w[g].a, x[1, 1].T) and np.array_equal(bwd_w[g].b, dy[1, 1])
    assert fwd[g].dims == (4, 3, 4) and bwd_d[g].dims == (4, 4, 3) and bwd_w[g].dims == (3, 4, 4)


def test_causal_attention_skips_the_masked_score_products(tmp_path):
    """Dense Q and K, causal scores over L = 8, d = 4, 2 heads, batch 3: per head the forward
    computes L(L+1)/2·d = 144 of the L²·d = 256 products and skips L(L-1)/2·d = 112; on a PE that
    skips on its own (eyeriss-v2-pe, output-stationary), the actual MACs are exactly those."""
    seq, dim, heads, batch = 8, 4, 2, 3
    write_attention_trace(tmp_path / "t", seq=seq, dim=dim, heads=heads, batch=batch, n_iter=1, density=1.0)
    tr = traces.load(tmp_path / "t")
    rep = simulate(tr, "eyeriss-v2-pe", passes=("forward",)).to_frame()
    row = rep[rep["layer"] == "attn.scores"].iloc[0]
    per_head = batch * heads
    assert row["algorithmic_macs"] == per_head * seq * seq * dim
    assert row["effectual_macs"] == per_head * seq * (seq + 1) // 2 * dim
    assert row["actual_macs"] == per_head * seq * (seq + 1) // 2 * dim
    assert row["skipped_macs"] == per_head * seq * (seq - 1) // 2 * dim


@pytest.mark.parametrize("arch", ["edge-npu", "gpu-a100", "reram-isaac"])
@pytest.mark.parametrize("batch, heads", [(2, 2), (1, 1)])
def test_every_family_replays_matmul_layers(tmp_path, arch, batch, heads):
    """All passes of both attention products replay (one GEMM group per pass included); effectual
    MACs equal the scalar reference, and no update row appears (a matmul has no weight)."""
    written = write_attention_trace(tmp_path / "t", seq=6, dim=4, heads=heads, batch=batch, n_iter=1)
    rep = simulate(traces.load(tmp_path / "t"), arch).to_frame()
    assert set(rep["pass"]) == {"forward", "backward_data", "backward_weight"}
    t = written[0]
    for li, name in enumerate(("attn.scores", "attn.context")):
        m = t[li]
        for pass_ in ("forward", "backward_data", "backward_weight"):
            row = rep[(rep["layer"] == name) & (rep["pass"] == pass_)].iloc[0]
            need = m.get("y_sel") if pass_ == "forward" else None
            expect = scalar_effectual(pass_, m["x"], m["w"], m["dy"], need)
            assert row["effectual_macs"] == expect, (name, pass_)
            g = traces.load(tmp_path / "t").layers[li].gemm(pass_, batch)
            assert row["algorithmic_macs"] == g.macs


def scalar_block_skip(need: np.ndarray, k: int, rows: int, cols: int) -> tuple[int, int]:
    """Loops over the output blocks of one group: (MACs of the folds that run, of those skipped);
    a fold runs when one of its rows × cols outputs is needed."""
    run = skip = 0
    m, n = need.shape
    for i0 in range(0, m, rows):
        for j0 in range(0, n, cols):
            block = need[i0:i0 + rows, j0:j0 + cols]
            macs = block.shape[0] * block.shape[1] * k
            if any(bool(v) for v in block.ravel()):
                run += macs
            else:
                skip += macs
    return run, skip


def test_an_output_stationary_array_skips_masked_score_blocks(tmp_path):
    """A lockstep output-stationary 4×4 array with skipping of unneeded outputs (target c): a
    causal 16×16 score matrix has 6 of its 16 blocks above the diagonal; those folds take no
    cycle and their MACs are skipped (a scalar loop over the blocks gives the counts); the
    others run whole. Without the action nothing is skipped."""
    from dataclasses import replace

    import archs
    from archs.components import SparseAction

    seq, dim, heads, batch = 16, 4, 2, 2
    write_attention_trace(tmp_path / "t", seq=seq, dim=dim, heads=heads, batch=batch, n_iter=1, density=1.0)
    tr = traces.load(tmp_path / "t")
    base = archs.load("edge-npu")
    arch = replace(base, compute=replace(base.compute, rows=4, cols=4, dataflow="os"),
                   sparse=replace(base.sparse, formats=(), actions=(
                       SparseAction(kind="skipping", level="compute", target="c", condition_on=("c",)),)))
    plain = replace(arch, sparse=replace(arch.sparse, actions=()))
    causal = np.tril(np.ones((seq, seq), bool))
    run, skip = scalar_block_skip(causal, dim, 4, 4)
    assert (run, skip) == (10 * 16 * dim, 6 * 16 * dim)
    groups = batch * heads
    row = simulate(tr, arch, passes=("forward",), layers=["attn.scores"]).to_frame().iloc[0]
    assert row["skipped_macs"] == groups * skip and row["actual_macs"] == groups * run
    assert row["effectual_macs"] == groups * seq * (seq + 1) // 2 * dim
    dense = simulate(tr, plain, passes=("forward",), layers=["attn.scores"]).to_frame().iloc[0]
    assert dense["skipped_macs"] == 0 and dense["actual_macs"] == groups * seq * seq * dim
    # every fold of this array is one 4-step chunk (K = 4) plus its fill: 6 of 16 folds fewer
    assert dense["compute_cycles"] * 10 == row["compute_cycles"] * 16
    assert row["speedup"] > 1


def test_the_reram_report_names_the_digital_unit_for_a_matmul_stage(tmp_path, capsys):
    from hwsim.cli.main import main

    write_attention_trace(tmp_path / "t", n_iter=1)
    assert main(["replay", str(tmp_path / "t"), "--arch", "reram-isaac"]) == 0
    assert "the slowest stage (attn.scores, digital unit)" in capsys.readouterr().out


def test_the_trace_side_mac_table_counts_matmul_layers(tmp_path, capsys):
    """traces.stats (hwsim trace info's effectual-MAC table) counts a matmul's passes as the scalar
    reference does."""
    from hwsim.cli.main import main
    from traces.stats.summary import mac_table

    written = write_attention_trace(tmp_path / "t", seq=5, dim=3, heads=2, batch=2, n_iter=1)
    table = mac_table(traces.load(tmp_path / "t"))
    for li, name in enumerate(("attn.scores", "attn.context")):
        m = written[0][li]
        for pass_ in ("forward", "backward_data", "backward_weight"):
            row = table[(table["layer"] == name) & (table["pass"] == pass_)].iloc[0]
            need = m.get("y_sel") if pass_ == "forward" else None
            assert row["effectual_macs"] == scalar_effectual(pass_, m["x"], m["w"], m["dy"], need)
    assert main(["trace", "info", str(tmp_path / "t")]) == 0
    assert "attn.context" in capsys.readouterr().out
