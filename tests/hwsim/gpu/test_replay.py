"""Replays on gpu-a100: which path ran per layer and pass, the crossover density, DSG's gather
cost, and the command line."""

from __future__ import annotations

import numpy as np
import pytest

import archs
from hwsim.cli.main import main
from hwsim.gpu.sparse import gathered_cost
from hwsim.simulate import simulate
from traces.synth import conv, linear, write_synthetic

from .helpers import A100, layer_input, replay
from .helpers import linear as linear_spec

LAYERS = [conv("conv1", 64, 28, 28, 128, 3, padding=1), conv("conv2", 128, 14, 14, 256, 3, padding=1),
          linear("fc", 2048, 1024, rows=8)]


@pytest.fixture(scope="module")
def dst_like(tmp_path_factory):
    """Unstructured weights at 5% density (a DST-like trace), dense-ish activations."""
    path = tmp_path_factory.mktemp("gpu") / "dst.trace"
    return write_synthetic(LAYERS, path, batch=8, density={"x": 0.6, "w": 0.05, "dy": 0.5}, seed=1)


def test_dst_like_replay_reports_the_path_and_crossover_per_layer(dst_like):
    df = simulate(dst_like, "gpu-a100").to_frame()
    gemm = df[df["pass"] != "update"]
    assert set(gemm["gpu_sparse_path"]) <= {"dense", "spmm", "2:4"}
    assert (gemm["gpu_sparse_path"] == "dense").any() and (gemm["gpu_sparse_path"] == "spmm").any()
    fwd = gemm[gemm["pass"] == "forward"]
    assert (fwd["gpu_sparse_operand"] == "b").all()  # the 5% weight is the sparser operand
    assert "breaks 2:4" in " ".join(gemm["gpu_dense_reason"])  # random 5% masks are not 2:4 at this K
    considered = gemm[gemm["gpu_sparse_operand"] != ""]
    assert len(considered) == len(gemm)  # every pass has a sparse operand here
    for _, r in considered.iterrows():
        c, d = r["gpu_crossover_density"], r["gpu_sparse_density"]
        assert 0.0 <= c <= 1.0 and 0.0 < d < 1.0
        if r["gpu_sparse_path"] == "spmm":  # sparse ran: its operand is below the crossover
            assert d <= c + 1e-6
            assert r["actual_macs"] == pytest.approx(d * r["algorithmic_macs"], rel=1e-6)
            assert r["cycles"] < r["dense_cycles"]
        else:  # dense ran: the operand is above the crossover, and the report says so
            assert d >= c - 1e-6
            assert "is faster than spmm" in r["gpu_dense_reason"]
            assert r["cycles"] == r["dense_cycles"]
    assert (gemm["algorithmic_macs"] == gemm["actual_macs"] + gemm["skipped_macs"]).all()


def test_policy_forces_the_dense_or_the_sparse_path(dst_like):
    dense = simulate(dst_like, archs.replace(A100, {"sparse.unstructured_policy": "dense"})).to_frame()
    sparse = simulate(dst_like, archs.replace(A100, {"sparse.unstructured_policy": "sparse"})).to_frame()
    gemm = dense["pass"] != "update"
    assert (dense.loc[gemm, "gpu_sparse_path"].isin({"dense", "2:4"})).all()
    assert (dense.loc[gemm & (dense["gpu_sparse_path"] == "dense"), "speedup"] == 1.0).all()
    assert (sparse.loc[sparse["pass"] != "update", "gpu_sparse_path"].isin({"spmm", "2:4"})).all()


def _top_k_rows(rows: int, cols: int, keep: float, seed: int = 0) -> np.ndarray:
    """DSG-like output selection: each row keeps its top ``keep`` fraction of random scores."""
    score = np.random.default_rng(seed).random((rows, cols))
    k = int(cols * keep)
    return score >= np.sort(score, axis=1)[:, [-k]]


def test_dsg_selection_shows_the_gather_cost():
    spec = linear_spec(4096, 1024, 1024)
    sel = _top_k_rows(4096, 1024, 0.2)
    rows = replay(spec, layer_input(spec, np.ones((1024, 1024), bool), y_sel=sel), method="dsg")
    fwd = rows["forward"]
    expected = gathered_cost(A100, 1024, sel, 2)
    assert fwd["gpu_gather_cycles"] == expected.gather_cycles > 0
    # every row keeps 20% of its outputs scattered over all tiles: nothing to skip, gathering only adds
    assert fwd["gpu_sparse_path"] == "dense" and "gathered" in fwd["gpu_dense_reason"]
    forced = replay(spec, layer_input(spec, np.ones((1024, 1024), bool), y_sel=sel),
                    archs.replace(A100, {"sparse.unstructured_policy": "sparse"}), method="dsg")["forward"]
    assert forced["gpu_sparse_path"] == "gathered"
    assert forced["cycles"] == forced["vector_cycles"] + expected.gemm.cycles + expected.gather_cycles
    assert forced["speedup"] < 1


def test_dsg_selection_of_whole_row_blocks_is_faster_gathered():
    spec = linear_spec(4096, 1024, 1024)
    sel = np.zeros((4096, 1024), bool)
    sel[::4] = True  # a quarter of the rows need all their outputs, the rest none
    fwd = replay(spec, layer_input(spec, np.ones((1024, 1024), bool), y_sel=sel), method="dsg")["forward"]
    # the GEMM shrinks to a quarter of its rows (gather and scatter added: 1.6x); the fused elementwise
    # kernel over the whole output stays, so the pass gains less than the GEMM
    assert fwd["gpu_sparse_path"] == "gathered" and fwd["dense_gemm_cycles"] / fwd["gemm_cycles"] > 1.5
    assert 1 < fwd["speedup"] < fwd["dense_gemm_cycles"] / fwd["gemm_cycles"]
    assert fwd["actual_macs"] == 1024 * 1024 * 1024


def test_cli_replay_on_a_gpu(dst_like, capsys):
    assert main(["replay", str(dst_like), "--arch", "gpu-a100"]) == 0
    out = capsys.readouterr().out
    assert "on gpu-a100 (gpu model, analytic timing)" in out
    for word in ("forward", "backward_data", "backward_weight", "update", "total", "whole run"):
        assert word in out


def test_counts_only_iterations_replay_in_expected_mode(tmp_path):
    from tests.traces.helpers import write_trace

    write_trace(tmp_path / "t")  # masks on even iterations, counts only on odd ones
    df = simulate(tmp_path / "t", "gpu-a100", iterations="all").to_frame()
    assert set(df["mode"]) == {"exact", "expected"}
    expected = df[df["mode"] == "expected"]
    assert (expected["cycles"] > 0).all() and (expected["dense_cycles"] > 0).all()
    # per row: a sparse path ran, or the dense one did and the report says the pattern was unknown
    assert (expected["gpu_dense_reason"].str.contains("counts only")
            | (expected["gpu_sparse_path"] != "dense")).all()


def test_grouped_gemms_share_waves():
    from hwsim.gpu.gemm import Operands, gemm_cost
    from hwsim.gpu.replay import _grouped

    one = gemm_cost(A100, 1024, 9, 1, Operands(2, 2, 2))  # one depthwise group: a handful of blocks
    grouped = _grouped(one, 6, A100)
    assert one.blocks * 6 <= A100.gpu.sms and grouped.waves == one.waves == 1
    assert grouped.cycles == one.cycles  # 6 groups of 16 blocks fit in the same single wave
    many = _grouped(one, 1000, A100)
    assert many.waves == -(-1000 * one.blocks // A100.gpu.sms) and many.cycles > grouped.cycles
