"""The GPU model against published measurements of real cards (each number from its source, never
the model): ``tests/data/gpu_published.csv``, evaluated by ``published.py`` (run
``python -m tests.hwsim.gpu.published`` for the per-point table, ``--fit`` for the fitted constants).

Every fitted constant of ``archs/gpu_presets.py`` is fitted on the rows marked ``fit`` only; the
``holdout`` rows (other sources, shapes and cards) are kept out of every fit, and their error is
bounded separately. Bounds: the issue's targets where the model meets them (dense ≥ 0.5 ms ≤ 10 % per
card, < 0.5 ms ≤ 20 %, 2:4 speedup ≤ 10 % per library on A100), otherwise the error reached today with
a little room, named as a missed target (docs/gpu.md, "Validation", lists them).

The GEMV negative case, pytorch/pytorch#111339: a 4096×4096 weight with a 1×4096 input: "no
speedup"; the maintainer's measurement on the quickstart: dense 0.022 ms, sparse 0.196 ms (0.111×),
because PyTorch pads the 1-row input (to 32 rows in 2.1) and slices the result.
"""

from __future__ import annotations

import pytest

import archs
from hwsim.gpu.gemm import Operands, gemm_cost
from hwsim.gpu.kernels import hbm_bytes_per_cycle
from hwsim.gpu.sparse import structured_gemm

from . import published
from .helpers import A100, layer_input, linear, replay, transposable_24

CLOCK_HZ = A100.clock_hz
DENSE = Operands(2, 2, 2)
POINTS = published.load()
SUMMARY = published.summary(POINTS)

# (group, bound on the MAE of all its points, bound on the MAE of its held-out points); a bound above
# the issue's target is a missed target, kept here so that it cannot silently get worse.
BOUNDS = {
    "dense gpu-a100 ≥0.5ms": (0.10, 0.10),  # target 10 %
    "dense gpu-a100 <0.5ms": (0.20, 0.20),  # target 20 %
    "dense gpu-a100-80gb ≥0.5ms": (0.10, 0.10),  # target 10 %
    "dense gpu-a100-80gb <0.5ms": (0.20, 0.20),  # target 20 % (the GEMV)
    "dense gpu-a100-80gb-pcie ≥0.5ms": (0.10, 1.0),  # target 10 % (its one point is the clock's fit point)
    "dense gpu-a100-80gb-pcie <0.5ms": (0.20, 0.20),  # target 20 %
    "dense gpu-h100 ≥0.5ms": (0.10, 0.10),  # target 10 %
    "dense gpu-h100 <0.5ms": (0.20, 0.20),  # target 20 %
    "dense gpu-h100-pcie ≥0.5ms": (0.10, 0.10),  # target 10 %
    "dense gpu-h100-pcie <0.5ms": (0.20, 0.20),  # target 20 %
    "2:4 cutlass a100": (0.10, 0.10),  # target 10 %
    "2:4 cusparselt a100": (0.10, 0.10),  # target 10 % (CUDALibrarySamples #57's 4096³ is excluded: below)
}
# Unstructured SpMM: the issue's target is the median error per sparsity level (15 %), held-out rows.
SPARSITY_LEVELS = [f"unstructured sputnik d={d:g}" for d in published.SPUTNIK_DENSITIES]


def test_the_validation_set_covers_the_issue():
    # at least 40 published points; dense, 2:4 and unstructured; A100 and H100; every row sourced
    assert len(POINTS) >= 40 and sum(p.group != "unstructured" for p in POINTS) >= 40
    assert {p.group for p in POINTS} == {"dense", "2:4", "unstructured"}
    assert {p.preset.split("-")[1] for p in POINTS} >= {"a100", "h100"}
    assert all(p.source and p.library and p.split in ("fit", "holdout", "excluded") for p in POINTS)
    assert len({p.id for p in POINTS}) == len(POINTS)
    held = [p for p in POINTS if p.split == "holdout"]
    assert len(held) >= 30 and {p.group for p in held} >= {"dense", "2:4"}


def test_excluded_points_say_why_and_stay_out_of_the_statistics():
    # an excluded row states its reason, with the sources it rests on, in its convention; it is in no
    # fit and in no group statistic, but the per-group count says it is there
    excluded = [p for p in POINTS if p.split == "excluded"]
    assert [p.id for p in excluded] == ["cls57_cslt"]
    for p in excluded:
        assert "excluded:" in p.convention and "#" in p.convention.partition("excluded:")[2]
        group = published.group_of(p)
        kept = [q for q in POINTS if published.group_of(q) == group and q.split != "excluded"]
        assert SUMMARY[group]["n"] == len(kept) and SUMMARY[group]["n_excluded"] == 1
        assert SUMMARY[group]["mae"] == pytest.approx(
            sum(abs(published.error(q)) for q in kept) / len(kept))
    assert all(p.split == "fit" for _, _, presets, what in published.FITS
               for p in published.fit_points(POINTS, presets, what))


def test_every_fitted_constant_is_fitted_on_fit_points_only():
    # the fit recomputed from the fit rows reproduces the presets' constants: the held-out rows
    # cannot have informed them
    for name, field, presets, what in published.FITS:
        chosen = published.fit_points(POINTS, presets, what)
        assert chosen and all(p.split == "fit" for p in chosen)
        fitted = published.fit_one(chosen, field, *published.search_range(field))
        assert fitted == pytest.approx(published.preset_constant(name), rel=0.01)


@pytest.mark.parametrize("group", sorted(BOUNDS))
def test_error_per_group_is_bounded(group):
    s = SUMMARY[group]
    assert s["mae"] <= BOUNDS[group][0], f"{group}: MAE {s['mae']:.1%} over {s['n']:.0f} points"
    if s["n_holdout"]:
        assert s["mae_holdout"] <= BOUNDS[group][1], f"{group}: held-out MAE {s['mae_holdout']:.1%}"


@pytest.mark.parametrize("level", SPARSITY_LEVELS)
def test_unstructured_median_error_per_sparsity_level(level):
    s = SUMMARY[level]
    assert s["n_holdout"] >= 80  # 4 of the 5 M values × 20 shapes: kept out of the curve's fit
    assert s["median_holdout"] <= 0.15, f"{level}: held-out median {s['median_holdout']:.1%}"
    assert s["median"] <= 0.15


def test_the_sputnik_rate_falls_with_sparsity():
    # measured: effectual throughput per non-zero drops as the operand gets sparser (the fitted curve
    # follows the data, it is not imposed): efficiency rises with density
    from archs import gpu_presets

    assert list(gpu_presets.SPUTNIK_CURVE) == sorted(gpu_presets.SPUTNIK_CURVE)
    assert gpu_presets.SPUTNIK_CURVE[-1] / gpu_presets.SPUTNIK_CURVE[0] > 1.2


def test_the_docs_table_is_current():
    # docs/gpu.md's validation table is generated from this CSV and the model (make gpu-validation)
    doc = published.CSV.parents[2] / "docs" / "gpu.md"
    text = doc.read_text()
    assert published.docs_with_table(text, published.markdown_table(POINTS)) == text, \
        "docs/gpu.md's validation table is stale: run make gpu-validation"


def test_every_group_with_points_has_a_bound_or_is_named_here():
    # groups left without a bound: too few points to mean anything (said in docs/gpu.md)
    unbounded = {"2:4 cutlass h100", "2:4 cusparselt h100", "2:4 cutlass-profiler a100",
                 "unstructured cusparse d=0.22"}
    assert set(SUMMARY) <= set(BOUNDS) | set(SPARSITY_LEVELS) | unbounded


def test_gemv_is_hbm_bound():
    # 1×4096 · 4096×4096 FP16: the weight (32 MiB) streams once from HBM at the bandwidth a copy
    # kernel reaches on the card (A100 40 GB: 1355 GB/s measured, archs/gpu_presets.py)
    c = gemm_cost(A100, 1, 4096, 4096, DENSE)
    seconds = c.cycles / CLOCK_HZ
    floor = 4096 * 4096 * 2 / (hbm_bytes_per_cycle(A100) * CLOCK_HZ)
    assert floor < seconds < floor + 5e-6  # plus launch, latency and epilogue: a few µs
    # pytorch#111339, maintainer's measurement: dense 0.022 ms; on the 80 GB card (its bandwidth
    # is the only one that allows 0.022 ms) within 15 %
    a80 = archs.PRESETS["gpu-a100-80gb"]
    assert gemm_cost(a80, 1, 4096, 4096, DENSE).cycles / a80.clock_hz == pytest.approx(0.022e-3, rel=0.15)


def gemv_24_ratio() -> float:
    """Dense over 2:4 time of the 1×4096 · 4096×4096 GEMV when the 2:4 kernel is forced."""
    dense = gemm_cost(A100, 1, 4096, 4096, DENSE).cycles
    nm = structured_gemm(A100, 1, 4096, 4096, 2)
    return dense / (nm.gemm.cycles + nm.pad_cycles)


def test_gemv_24_kernel_is_no_faster_than_dense():
    # pytorch#111339: "no speedup"; the maintainer measured 0.111x end to end, which includes the
    # tensor subclass's host-side dispatch that the model leaves out, so the model's forced 2:4
    # kernel must be slower than dense but not slower than that measurement. Mechanism: PyTorch's
    # one CUTLASS tile (128×128×64) computes the padded input's 8 rows as 128, at the sparse rate,
    # on 32 thread blocks (no split-K), while the dense GEMV streams the weight over every SM.
    ratio = gemv_24_ratio()
    assert 0.111 < ratio < 1.0, f"model {ratio:.3f}x"
    nm = structured_gemm(A100, 1, 4096, 4096, 2)
    assert nm.padded_rows == 8 and nm.pad_cycles > 0 and nm.gemm.blocks == 32 and nm.gemm.split == 1


def test_gemv_24_replay_runs_dense_at_1x():
    # the published shape (a linear layer with one input row and a transposable 2:4 weight), as a
    # replay: under the default policy the library keeps the dense GEMM, so 2:4 buys ≈1.0x
    # (architecture_parameters.md §6: "≈1.0x"); forcing 2:4 shows the slowdown of the test above
    spec = linear(1, 4096, 4096)
    it = layer_input(spec, transposable_24(4096, 4096))
    fwd = replay(spec, it, passes=("forward",))["forward"]
    assert fwd["gpu_sparse_path"] == "dense" and "is faster than 2:4" in fwd["gpu_dense_reason"]
    assert 0.95 <= fwd["speedup"] <= 1.05
    forced = replay(spec, it, archs.replace(A100, {"sparse.unstructured_policy": "sparse"}),
                    passes=("forward",))["forward"]
    assert forced["gpu_sparse_path"] == "2:4" and forced["speedup"] < 1.0
    assert forced["gpu_pad_cycles"] == structured_gemm(A100, 1, 4096, 4096, 2).pad_cycles
