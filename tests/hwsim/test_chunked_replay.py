"""Chunked replay: tiles costed and timed in chunks of column folds give exactly the unchunked result.

The chunk size is a memory bound, not a model parameter: every report column must be identical
whether a pass is costed in one piece or in chunks of a single column fold (and the contention
schedule carried across chunks), on every dataflow, micro-architecture and channel arrangement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import archs
from hwsim.errors import MappingError
from hwsim.npu import tiles
from hwsim.npu.mapping import map_gemm
from hwsim.npu.tiles import Features, tile_chunks, tile_costs
from hwsim.simulate import simulate
from traces.synth import conv, linear, write_synthetic

CFG = Path(__file__).resolve().parents[2] / "bench" / "array_32x32_user.cfg"
PASSES = ["forward", "backward_data", "backward_weight"]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    layers = [conv("c1", 8, 12, 12, 24, 3, padding=1), conv("c2", 24, 12, 12, 40, 1, stride=2),
              linear("f", 1440, 36)]
    return write_synthetic(layers, tmp_path_factory.mktemp("t") / "t", batch=2, per_channel=True,
                           density={"x": 0.4, "w": 0.6, "dy": 0.5})


def machines():
    edge = archs.PRESETS["edge-npu"]
    slow = archs.replace(edge, {"memories.dram.bandwidth_bytes_per_s": 2e8})  # transfers dominate
    yield "edge-npu", edge
    yield "edge-npu-slow-dram", slow
    yield "edge-npu-pe-skipping", archs.replace(slow, {"compute.microarchitecture": "pe_skipping"})
    yield "scalesim-user", archs.from_scalesim_cfg(CFG)  # one channel for reads and write-backs
    yield "eyeriss-v2-pe", archs.PRESETS["eyeriss-v2-pe"]
    yield "edge-npu-formats-only", archs.replace(slow, {"sparse.actions": []})  # dense timing, counted bytes


@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("name,arch", list(machines()), ids=[n for n, _ in machines()])
def test_chunked_replay_equals_unchunked(trace, monkeypatch, name, arch, df):
    whole = simulate(trace, arch, dataflow=df, passes=PASSES, workers=1).to_frame()
    chunk = max(2, int(whole["tiles"].min()) // 4)  # several chunks in every pass
    monkeypatch.setattr(tiles, "TILES_PER_CHUNK", chunk)  # a few column folds, or row folds of one
    chunked = simulate(trace, arch, dataflow=df, passes=PASSES, workers=1).to_frame()
    pd.testing.assert_frame_equal(chunked, whole)


@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("feature", [Features(), Features(gate=True, skip=frozenset("ab")),
                                     Features(pe_skip=True), Features(count=frozenset("ab"))])
def test_tile_chunks_concatenate_to_tile_costs(df, feature):
    rng = np.random.default_rng(3)
    arch = archs.PRESETS["edge-npu"]
    a, b = rng.random((70, 50)) < 0.4, rng.random((50, 45)) < 0.5
    need = rng.random((70, 45)) < 0.7
    mp = map_gemm(70, 50, 45, arch, df, stream_chunk=9)
    for res in ({}, {"a": True, "b": True, "c": True}):
        whole = tile_costs(a, b, need, mp, feature, res)
        for max_tiles in (1, 7, 40):
            parts = list(tile_chunks(a, b, need, mp, feature, res, max_tiles=max_tiles))
            assert len(parts) > 1
            cat = tiles.TileCosts.concat(parts)
            for name in ("compute_cycles", "algorithmic", "actual", "gated", "skipped"):
                np.testing.assert_array_equal(getattr(cat, name), getattr(whole, name))
            for name in ("buf_read", "buf_read_nz", "dram_read", "dram_read_nz", "dram_write"):
                assert getattr(cat, name).keys() == getattr(whole, name).keys()
                for k, v in getattr(whole, name).items():
                    np.testing.assert_array_equal(getattr(cat, name)[k], v, err_msg=f"{name}[{k}]")


def test_a_large_layer_under_a_small_budget_equals_the_unchunked_replay(tmp_path, monkeypatch):
    """A pass whose tiles would need over 4 MiB at once replays under a 2 MiB budget in chunks
    (column folds split into row-fold ranges), with exactly the result of the unchunked replay (no
    budget, one chunk); a budget below one row fold is refused up front."""
    from hwsim.npu.replay import BYTES_PER_TILE

    spec = conv("big", 32, 16, 16, 64, 3, padding=1)
    path = write_synthetic([spec], tmp_path / "t", batch=2, density={"x": 0.3, "w": 0.5, "dy": 0.4})
    arch = archs.PRESETS["eyeriss-v2-pe"]
    g = spec.gemm("forward", 2)
    mp = map_gemm(g.m, g.k, g.n, arch, "os")
    assert mp.row_folds * mp.chunks * BYTES_PER_TILE > 4 * 2**20  # even one column fold is over 2 MiB
    small = simulate(path, arch, passes=PASSES, workers=1, memory_budget_bytes=2 * 2**20).to_frame()
    monkeypatch.setattr(tiles, "TILES_PER_CHUNK", 1 << 40)
    whole = simulate(path, arch, passes=PASSES, workers=1).to_frame()
    pd.testing.assert_frame_equal(small, whole)
    with pytest.raises(MappingError, match="one row fold of 18 tiles"):
        simulate(path, arch, passes=PASSES, workers=1,
                 memory_budget_bytes=2 * g.m * g.k + 17 * BYTES_PER_TILE)


def _no_merge(monkeypatch):
    from hwsim.npu import replay

    orig = replay._Context.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        self.merge_dense = self.merge_sparse = False

    monkeypatch.setattr(replay._Context, "__init__", init)


@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("micro", ["systolic", "pe_skipping"])
@pytest.mark.parametrize("machine", ["eyeriss-v2-pe", "edge-npu-free"])
def test_merged_stream_chunks_equal_tile_by_tile(trace, monkeypatch, machine, micro, df):
    """Where transfers take no time, a fold's stream chunks are replayed as one entry: every
    report column (the tile count included) equals the tile-by-tile replay."""
    from hwsim.npu import replay

    if machine == "eyeriss-v2-pe":
        arch = archs.replace(archs.PRESETS[machine], {"compute.microarchitecture": micro})
    else:  # the 16×16 edge NPU with unlimited DRAM and buffer bandwidth
        arch = archs.replace(archs.PRESETS["edge-npu"], {"memories.dram.bandwidth_bytes_per_s": 0,
                                                         "memories.glb.bandwidth_bytes_per_s": 0,
                                                         "compute.microarchitecture": micro})
    ctx = replay.context(arch, {"method": {"name": "dense"}}, dataflow=df, backend="analytic",
                         stream_chunk=4)
    assert ctx.merge_dense and ctx.merge_sparse == (micro == "systolic" or machine == "eyeriss-v2-pe")
    merged = simulate(trace, arch, dataflow=df, passes=PASSES, workers=1, stream_chunk=4).to_frame()
    _no_merge(monkeypatch)
    pd.testing.assert_frame_equal(merged,
                                  simulate(trace, arch, dataflow=df, passes=PASSES, workers=1,
                                           stream_chunk=4).to_frame())
