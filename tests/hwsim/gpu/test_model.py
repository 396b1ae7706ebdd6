"""Hand cases of the GPU model: waves, panels, split-K, 2:4 rules, compressed bytes, recompression."""

from __future__ import annotations

import numpy as np
import pytest

import archs
from hwsim.gpu import gemm as gemm_mod
from hwsim.gpu.gemm import Operands, gemm_cost
from hwsim.gpu.kernels import launch_cycles
from hwsim.gpu.sparse import compress_cycles, compressed_bytes, structured_operands
from hwsim.gpu.tiling import grid

from .helpers import A100, layer_input, linear, replay, row_24, transposable_24

DENSE = Operands(2, 2, 2)
S = A100.sparse.structured


def test_one_tile_more_than_the_sms_costs_a_second_wave():
    # 128×256 tiles in one column: each wave is math-bound (its A panels stream at ~60% of HBM)
    sms, k = A100.gpu.sms, 8192
    full = grid(128 * sms, k, 256, 128, 256, 32, 1, sms)
    extra = grid(128 * (sms + 1), k, 256, 128, 256, 32, 1, sms)
    assert (full.waves, extra.waves) == (1, 2)
    assert extra.blocks_per_wave.tolist() == [sms, 1]
    t_full = gemm_mod._cost(A100, full, 128 * sms, k, 256, DENSE, 1.0).cycles - launch_cycles(A100)
    t_extra = gemm_mod._cost(A100, extra, 128 * (sms + 1), k, 256, DENSE, 1.0).cycles - launch_cycles(A100)
    assert t_extra == pytest.approx(2 * t_full, rel=0.01)  # the lone tile pays a whole wave


def test_stream_k_spreads_the_lone_tile_over_every_sm_and_pays_its_fix_up():
    # the same extra tile with stream-K: its K steps are shared by all slots (main loop ≈ 1/sms of a
    # wave), and the owner adds sms - 1 FP32 partial tiles, written and read through L2
    sms, k = A100.gpu.sms, 8192
    sk = archs.replace(A100, {"gpu.stream_k": True})
    full = grid(128 * sms, k, 256, 128, 256, 32, 1, sms)
    extra = grid(128 * (sms + 1), k, 256, 128, 256, 32, 1, sms)
    launch = launch_cycles(sk)
    t_full = gemm_mod._cost(sk, full, 128 * sms, k, 256, DENSE, 1.0, stream_k=True).cycles - launch
    t_extra = gemm_mod._cost(sk, extra, 128 * (sms + 1), k, 256, DENSE, 1.0, stream_k=True).cycles - launch
    fix_up = 2 * (sms - 1) * 128 * 256 * 4 / sk.gpu.l2_bytes_per_cycle  # partial tiles through L2
    assert fix_up < t_extra - t_full < fix_up + t_full / sms + 2 * sk.gpu.memory_latency_cycles + 3000
    assert t_extra < 1.5 * t_full  # not a second whole wave (the data-parallel schedule's 2×, above)
    # a full last wave is scheduled as before; the N:M kernels never use it
    assert gemm_mod._cost(sk, full, 128 * sms, k, 256, DENSE, 1.0, stream_k=True).cycles == \
        gemm_mod._cost(sk, full, 128 * sms, k, 256, DENSE, 1.0).cycles


@pytest.mark.parametrize(("gm", "gn", "split", "slots"), [(7, 5, 1, 4), (3, 11, 4, 10), (13, 2, 3, 6),
                                                          (1, 64, 2, 108)])
def test_distinct_panels_per_wave_match_brute_force(gm, gn, split, slots):
    g = grid(gm * 64, split * 32 * 3, gn * 64, 64, 64, 32, split, slots)
    idx = np.arange(g.blocks)
    m_i, n_i, s_i = idx % gm, (idx // gm) % gn, idx // (gm * gn)
    wave = idx // slots
    for w in range(g.waves):
        sel = wave == w
        assert g.a_panels_per_wave[w] == len(set(zip(m_i[sel], s_i[sel], strict=True)))
        assert g.b_panels_per_wave[w] == len(set(zip(n_i[sel], s_i[sel], strict=True)))
    # N tiles fastest (PyTorch's CUTLASS 2:4 kernel): the same blocks issued in the other order
    g = grid(gm * 64, split * 32 * 3, gn * 64, 64, 64, 32, split, slots, raster="n")
    n_i, m_i = idx % gn, (idx // gn) % gm
    assert (g.gm, g.gn, g.blocks) == (gm, gn, gm * gn * split)
    for w in range(g.waves):
        sel = wave == w
        assert g.a_panels_per_wave[w] == len(set(zip(m_i[sel], s_i[sel], strict=True)))
        assert g.b_panels_per_wave[w] == len(set(zip(n_i[sel], s_i[sel], strict=True)))


def test_split_k_engages_for_a_small_grid_only():
    small = gemm_cost(A100, 128, 65536, 128, DENSE)  # one or a few output tiles, long K
    assert small.split > 1
    assert small.traffic[("hbm", "c", "data", "read")] == small.split * 128 * 128 * 4  # FP32 partials
    big = gemm_cost(A100, 8192, 4096, 8192, DENSE)
    assert big.split == 1


def test_compressed_bytes_are_values_plus_metadata_exactly():
    k, n = 1024, 512
    values, metadata = compressed_bytes(k, n, 2, S)
    assert values == (k // 4) * 2 * n * 2  # two FP16 values kept per group of four
    assert metadata == (k // 4) * 2 * n * 2 / 8  # two bits per kept value
    # one wave over B (M = 128): the GEMM reads exactly the compressed operand from HBM
    c = gemm_cost(A100, 128, k, n, structured_operands(k, n, 2, S), math_speedup=2.0, split_k=False)
    assert c.waves == 1
    assert c.traffic[("hbm", "b", "data", "read")] == pytest.approx(values, rel=1e-12)
    assert c.traffic[("hbm", "b", "metadata", "read")] == pytest.approx(metadata, rel=1e-12)


def test_a_mask_breaking_24_in_one_group_runs_dense():
    spec = linear(256, 512, 256)
    w = row_24(256, 512)
    w[3, 6] = True  # group (row 3, columns 4..7) now keeps three
    rows = replay(spec, layer_input(spec, w))
    assert rows["forward"]["gpu_sparse_path"] == "dense"
    assert "breaks 2:4 along Kr in 1 group" in rows["forward"]["gpu_dense_reason"]
    assert rows["forward"]["cycles"] == rows["forward"]["dense_cycles"]


def test_backward_data_with_a_non_transposable_24_mask_runs_dense_and_says_why():
    spec = linear(4096, 1024, 1024)
    rows = replay(spec, layer_input(spec, row_24(1024, 1024)))
    assert rows["forward"]["gpu_sparse_path"] == "2:4"
    assert rows["forward"]["speedup"] > 1
    bd = rows["backward_data"]
    assert bd["gpu_sparse_path"] == "dense" and "transposable" in bd["gpu_dense_reason"]
    assert bd["cycles"] == bd["dense_cycles"]
    assert "dense output" in rows["backward_weight"]["gpu_dense_reason"]


def test_a_transposable_mask_runs_both_weight_passes_on_24():
    spec = linear(4096, 1024, 1024)
    rows = replay(spec, layer_input(spec, transposable_24(1024, 1024)))
    assert rows["forward"]["gpu_sparse_path"] == rows["backward_data"]["gpu_sparse_path"] == "2:4"
    assert rows["backward_weight"]["gpu_sparse_path"] == "dense"
    for r in rows.values():
        assert r["algorithmic_macs"] == r["actual_macs"] + r["gated_macs"] + r["skipped_macs"]
    assert rows["forward"]["actual_macs"] == rows["forward"]["algorithmic_macs"] // 2


def test_rows_padded_for_24_are_extra_work_outside_the_mac_classes():
    """A batch of 2 rows padded to min_dense_rows (8) for the 2:4 kernel: the tensor cores multiply
    the 6 zero rows too. Those products are not algorithmic ones, so they cannot be 'actual' MACs
    (algorithmic = actual + gated + skipped gave -2·1024·1024 skipped MACs); they are
    ``gpu_pad_macs`` and still cost tensor-core energy."""
    spec = linear(2, 1024, 1024)
    arch = archs.replace(A100, {"sparse.unstructured_policy": "sparse"})
    fwd = replay(spec, layer_input(spec, transposable_24(1024, 1024)), arch, passes=("forward",))["forward"]
    assert fwd["gpu_sparse_path"] == "2:4"
    assert fwd["algorithmic_macs"] == 2 * 1024 * 1024
    assert fwd["actual_macs"] == 2 * 512 * 1024 and fwd["skipped_macs"] == 2 * 512 * 1024
    assert fwd["gpu_pad_macs"] == 6 * 512 * 1024
    dense = replay(spec, layer_input(spec, np.ones((1024, 1024), dtype=bool)), passes=("forward",))["forward"]
    assert dense["gpu_sparse_path"] == "dense" and dense["actual_macs"] == 2 * 1024 * 1024
    # the tensor cores' FMAs: 8 padded rows × 512 kept products × 1024 columns, twice the dense GEMM's
    assert fwd["energy_tensor_core_pj"] == pytest.approx(2 * dense["energy_tensor_core_pj"])


def test_a_changing_24_mask_is_compressed_every_step():
    spec = linear(4096, 1024, 1024)
    w = transposable_24(1024, 1024)
    still = replay(spec, layer_input(spec, w))
    moving = replay(spec, layer_input(spec, w, stats={"flips_on": 8, "flips_off": 8}))
    expected = compress_cycles(A100, 1024 * 1024, 2, copies=1)[0]  # each 2:4 pass its own orientation
    for pass_ in ("forward", "backward_data"):  # W for forward, Wᵀ for backward-data: both run 2:4
        assert moving[pass_]["gpu_sparse_path"] == "2:4"
        assert still[pass_]["gpu_compress_cycles"] == 0
        assert moving[pass_]["gpu_compress_cycles"] == expected > 0
        assert moving[pass_]["cycles"] == still[pass_]["cycles"] + expected
        assert moving[pass_]["dense_cycles"] == still[pass_]["dense_cycles"]  # no compression in the baseline
    assert moving["backward_weight"]["gpu_compress_cycles"] == 0  # dense: nothing to compress


def test_backward_data_pays_its_own_compression_when_forward_runs_dense():
    """Replayed alone, backward-data's 2:4 still pays for compressing Wᵀ (the reviewer's case)."""
    spec = linear(4096, 1024, 1024)
    it = layer_input(spec, transposable_24(1024, 1024), stats={"flips_on": 3})
    alone = replay(spec, it, passes=("backward_data",))["backward_data"]
    assert alone["gpu_sparse_path"] == "2:4"
    assert alone["gpu_compress_cycles"] == compress_cycles(A100, 1024 * 1024, 2, copies=1)[0] > 0
    assert alone["cycles"] - alone["gpu_compress_cycles"] < alone["dense_cycles"]  # 2:4 GEMM faster


def test_the_unstructured_library_field_picks_its_curve():
    # Sputnik's curve (fitted per sparsity level, tests/hwsim/gpu/test_published.py) is read at its
    # knots, linear between them, clamped outside; cusparse switches to cuSPARSE's curve
    from archs import gpu_presets
    from hwsim.gpu.sparse import efficiency

    knots = dict(zip(gpu_presets.SPUTNIK_DENSITIES, gpu_presets.SPUTNIK_CURVE, strict=True))
    for d, e in knots.items():
        assert efficiency(A100, d) == pytest.approx(e)
    assert efficiency(A100, 0.3125) == pytest.approx((knots[0.25] + knots[0.375]) / 2)
    assert efficiency(A100, 0.01) == pytest.approx(knots[0.125])
    assert efficiency(A100, 1.0) == pytest.approx(knots[0.5])
    cusparse = archs.replace(A100, {"sparse.unstructured_library": "cusparse"})
    assert efficiency(cusparse, 0.3) == pytest.approx(gpu_presets.CUSPARSE_EFFICIENCY)


def test_crossover_density_is_where_the_sparse_kernel_ties_the_dense_gemm():
    from hwsim.gpu.sparse import crossover_density, spmm_cost

    m = k = n = 4096
    dense = gemm_cost(A100, m, k, n, DENSE).cycles
    c = crossover_density(A100, m, k, n, "b", 2, dense)
    assert 0.005 < c < 0.1  # sparse kernels pay off only at very high sparsity
    assert spmm_cost(A100, m, k, n, round(c * k * n), "b", 2).cycles <= dense
    assert spmm_cost(A100, m, k, n, round(1.02 * c * k * n), "b", 2).cycles > dense


def test_an_operand_whose_sparsity_changes_pays_its_csr_conversion():
    """Activations and gradients (and a weight whose mask changed) are converted to CSR every step:
    a memory kernel reading the operand dense and writing values, 32-bit indices and pointers."""
    from hwsim.gpu.kernels import memory_kernel_cycles
    from hwsim.gpu.sparse import spmm_cost

    m, k, n, nnz = 512, 1024, 256, 1024 * 256 // 10
    kept = spmm_cost(A100, m, k, n, nnz, "b", 2, convert=False)
    built = spmm_cost(A100, m, k, n, nnz, "b", 2, convert=True)
    read, written = k * n * 2, nnz * (2 + 4) + (n + 1) * 4
    assert (built.convert_read_bytes, built.convert_write_bytes) == (read, written)
    assert built.cycles - kept.cycles == memory_kernel_cycles(A100, read + written, ops=k * n) > 0


def test_dense_training_does_not_gain_from_sparse_kernels_on_small_layers(tmp_path):
    """A dense-trained trace's ReLU zeros (about half the activations) must not make CUDA-core SpMM
    beat the tensor cores once the activations are converted to CSR each step."""
    from hwsim.simulate import simulate
    from traces.synth import write_synthetic

    from ...traces.helpers import LAYERS

    path = write_synthetic(LAYERS, tmp_path / "t", batch=64, density={"x": 0.5, "dy": 0.5}, seed=0)
    df = simulate(path, "gpu-a100").to_frame()
    gemm = df[df["pass"] != "update"]
    assert (gemm["gpu_sparse_path"] == "dense").all(), gemm[["layer", "pass", "gpu_sparse_path"]]
    assert (gemm["gpu_crossover_density"] < 0.5).all()


def test_2_4_runs_only_where_it_pays_under_auto():
    """A changing 2:4 mask on a small layer: compression every step costs more than 2:4 saves, so
    `auto` keeps the dense GEMM (and says why); `sparse` forces 2:4, and it is slower there."""
    import archs

    spec = linear(64, 256, 128)
    it = layer_input(spec, transposable_24(128, 256), stats={"flips_on": 10, "flips_off": 10})
    auto = replay(spec, it)["forward"]
    forced = replay(spec, it, arch=archs.replace(A100, {"sparse.unstructured_policy": "sparse"}))["forward"]
    assert forced["gpu_sparse_path"] == "2:4" and forced["gpu_compress_cycles"] > 0
    assert forced["cycles"] > forced["dense_cycles"]  # 2:4 does not pay here
    assert auto["gpu_sparse_path"] == "dense" and auto["cycles"] == auto["dense_cycles"]
    reason = auto["gpu_dense_reason"]
    assert "faster than 2:4" in reason and "compression included" in reason
    big = linear(8192, 4096, 4096)  # large: 2:4 pays even with the compression
    big_it = layer_input(big, transposable_24(4096, 4096), stats={"flips_on": 10, "flips_off": 10})
    assert replay(big, big_it, passes=("forward",))["forward"]["gpu_sparse_path"] == "2:4"


def test_grouped_spmm_moves_the_real_operands():
    """A grouped layer's SpMM reads each operand once at its real size: CSR of the sparse one
    (values, 32-bit indices, one pointer per row and group), the other dense, C written once."""
    from hwsim.gpu.sparse import spmm_cost

    g, m, k, n, eb = 8, 256, 72, 16, 2  # per group: e.g. a depthwise-ish conv's GEMMs
    nnz_b = 8 * k * n // 20  # 5 % of the whole weight (g·k·n elements)
    b = spmm_cost(A100, m, k, n, nnz_b, "b", eb, groups=g)
    assert b.convert_read_bytes == g * k * n * eb  # the weight itself, not a block-diagonal g²·k·n
    assert b.read_dense_bytes == g * m * k * eb and b.write_bytes == g * m * n * eb
    assert b.read_sparse_metadata_bytes == nnz_b * 4 + (g * n + 1) * 4
    nnz_a = g * m * k // 50
    a = spmm_cost(A100, m, k, n, nnz_a, "a", eb, groups=g)
    assert a.read_dense_bytes == g * k * n * eb  # every group's B, not one
    assert a.macs == nnz_a * n and b.macs == nnz_b * m


def test_non_gemm_kernels_book_each_tensor_where_it_moves():
    """The forward's elementwise kernel reads and writes Y (operand c); DST's threshold compare
    reads W (operand b) — nothing of W is booked as a write of C."""
    spec = linear(64, 1024, 1024)
    w = np.ones((1024, 1024), bool)
    plain = replay(spec, layer_input(spec, w), passes=("forward",))["forward"]
    dst = replay(spec, layer_input(spec, w), method="dst", passes=("forward",))["forward"]
    assert dst["hbm_c_write_bytes"] == plain["hbm_c_write_bytes"]
    assert dst["hbm_c_read_bytes"] == plain["hbm_c_read_bytes"]
    assert dst["hbm_b_read_bytes"] - plain["hbm_b_read_bytes"] == 1024 * 1024 * 2  # W once, fp16


def test_fp16_data_runs_at_the_cards_fp16_clock():
    # a math-bound GEMM: its main loops stretch by 1 / fp16_clock_ratio, its launch does not
    h100 = archs.PRESETS["gpu-h100"]
    fp16 = archs.replace(h100, {"gpu.operand_dtype": "fp16"})
    launch = launch_cycles(h100)
    t_bf16 = gemm_cost(h100, 8192, 8192, 8192, DENSE).cycles - launch
    t_fp16 = gemm_cost(fp16, 8192, 8192, 8192, DENSE).cycles - launch
    assert t_fp16 == pytest.approx(t_bf16 / h100.gpu.fp16_clock_ratio, rel=0.01)
    assert h100.gpu.fp16_clock_ratio < 1


def test_a_serial_epilogue_adds_the_c_writes_of_each_wave():
    # cuSPARSELt on Ampere: a wave's C tiles leave after its main loops, at the HBM bandwidth; at the
    # same FLOPs and HBM bytes, the shape that writes 4x more C (K = 768, N = 3072) loses more
    from hwsim.gpu.kernels import hbm_bytes_per_cycle
    from hwsim.gpu.sparse import structured_gemm

    cslt = archs.replace(A100, {"sparse.structured.library": "cusparselt"})
    overlap = archs.replace(cslt, {"sparse.structured.cusparselt_serial_epilogue": False})
    assert cslt.sparse.structured.cusparselt_serial_epilogue
    slower = {}
    for m, k, n in [(49152, 3072, 768), (12288, 768, 3072)]:
        serial, hidden = structured_gemm(cslt, m, k, n, 2).gemm, structured_gemm(overlap, m, k, n, 2).gemm
        c_writes = serial.traffic[("hbm", "c", "data", "write")] / hbm_bytes_per_cycle(cslt)
        assert serial.cycles > hidden.cycles
        assert serial.cycles - hidden.cycles <= c_writes + serial.waves  # at most every C write, once
        slower[k] = serial.cycles / hidden.cycles
    assert slower[768] > slower[3072] + 0.1
