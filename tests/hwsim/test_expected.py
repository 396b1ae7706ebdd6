"""Expected-value replay of counts-only iterations."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.npu.expected import expected_tile_costs
from hwsim.npu.mapping import Mapping
from hwsim.npu.tiles import Features, tile_costs
from hwsim.simulate import simulate
from traces import TraceWriter
from traces.format import bits
from traces.format.manifest import TENSOR_INDEX, TENSORS, new_manifest
from traces.synth import conv

from ..traces.test_fig12 import GROUND_TRUTH, read_mask

# Sparseloop's uniform-density model on the same layers (peer_simulators.md, R1 table)
SPARSELOOP_UNIFORM = {"L07": 1_592_245, "L09": 1_479_114, "L13": 1_114_139, "L19": 1_407_304,
                      "L21": 1_610_668, "L23": 1_791_135, "L25": 927_185, "L27": 729_915}


@pytest.mark.parametrize("layer", sorted(SPARSELOOP_UNIFORM))
def test_counts_only_replay_reproduces_sparseloops_uniform_model(fig12_dir, tmp_path, layer):
    c, m, side, truth = GROUND_TRUTH[layer]
    x = read_mask(fig12_dir / f"{layer}_iacts.txt", (side * side, c)).T.reshape(1, c, side, side)
    w = read_mask(fig12_dir / f"{layer}_weights.txt", (m, c)).reshape(m, c, 1, 1)
    writer = TraceWriter(tmp_path / "t")
    writer.write_manifest(new_manifest([conv(layer, c, side, side, m, 1)], model={"name": "fig12"},
                                       method={"name": "dense", "params": {}}, dataset={"name": "fig12"},
                                       schedule={}, batch_size=1))
    counts = np.full((1, len(TENSORS)), -1, dtype=np.int64)
    counts[0, TENSOR_INDEX["x"]], counts[0, TENSOR_INDEX["w"]] = int(x.sum()), int(w.sum())
    writer.write_iteration(0, {"batch": 1}, counts, {(0, "x"): bits.pack(x), (0, "w"): bits.pack(w)})
    writer.write_iteration(1, {"batch": 1}, counts)  # the same densities, counts only
    df = simulate(tmp_path / "t", "eyeriss-v2-pe", passes=["forward"], iterations="all").to_frame()
    exact, expected = df.set_index("mode")["gemm_cycles"].loc[["exact", "expected"]]
    assert exact == truth
    dense = c * m * side * side
    assert abs(expected - dense * x.mean() * w.mean()) <= 1  # the uniform closed form, up to rounding
    # Sparseloop's uniform model is "≈ dense × d_A × d_W" (its density model differs slightly)
    assert abs(expected - SPARSELOOP_UNIFORM[layer]) <= 0.015 * SPARSELOOP_UNIFORM[layer]
    assert expected < truth  # independence under-counts these real, correlated masks


@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("pe_skip", [False, True])
def test_expected_close_to_exact_on_uniform_masks(df, pe_skip):
    rng = np.random.default_rng(3)
    m, k, n, da, db = 512, 96, 80, 0.4, 0.6
    a, b = rng.random((m, k)) < da, rng.random((k, n)) < db
    mp = Mapping(df, 16, 16, m, k, n, {"ws": m, "os": k, "is": n}[df])
    f = Features(pe_skip=True) if pe_skip else Features(gate=True, skip=frozenset({"a", "b"}))
    exact, expected = tile_costs(a, b, None, mp, f), expected_tile_costs(mp, f, da, db)
    assert abs(expected.compute_cycles.sum() / exact.compute_cycles.sum() - 1) < 0.05
    assert abs(expected.actual.sum() / exact.actual.sum() - 1) < 0.02
    assert (expected.algorithmic == exact.algorithmic).all()


def test_counts_only_pass_over_the_memory_budget_is_refused_up_front(tmp_path):
    """Expected tile costs are built for a whole pass at once: over the budget, a one-line refusal
    naming the tile count (the exact iteration of the same trace still replays, in chunks)."""
    from hwsim.errors import MappingError
    from hwsim.npu.mapping import map_gemm
    from hwsim.npu.replay import BYTES_PER_TILE

    spec = conv("c", 16, 12, 12, 16, 3, padding=1)
    rng = np.random.default_rng(0)
    x, w = rng.random((1, 16, 12, 12)) < 0.5, rng.random((16, 16, 3, 3)) < 0.5
    writer = TraceWriter(tmp_path / "t")
    writer.write_manifest(new_manifest([spec], model={"name": "m"}, method={"name": "dense", "params": {}},
                                       dataset={"name": "d"}, schedule={}, batch_size=1))
    counts = np.full((1, len(TENSORS)), -1, dtype=np.int64)
    counts[0, TENSOR_INDEX["x"]], counts[0, TENSOR_INDEX["w"]] = int(x.sum()), int(w.sum())
    writer.write_iteration(0, {"batch": 1}, counts, {(0, "x"): bits.pack(x), (0, "w"): bits.pack(w)})
    writer.write_iteration(1, {"batch": 1}, counts)
    import archs

    g = spec.gemm("forward", 1)
    tiles = map_gemm(g.m, g.k, g.n, archs.PRESETS["eyeriss-v2-pe"], "os").n_tiles
    budget = tiles * BYTES_PER_TILE - 1
    with pytest.raises(MappingError, match=rf"counts only\): {tiles:,} expected tiles"):
        simulate(tmp_path / "t", "eyeriss-v2-pe", passes=["forward"], iterations="all", workers=1,
                 memory_budget_bytes=budget)
    exact = simulate(tmp_path / "t", "eyeriss-v2-pe", passes=["forward"], iterations=[0], workers=1,
                     memory_budget_bytes=budget).to_frame()
    assert exact["tiles"].iloc[0] == tiles
