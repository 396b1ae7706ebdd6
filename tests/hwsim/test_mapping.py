"""Mapping: folds, chunks that fit the buffers, MappingError with a hint, user-given chunks."""

from __future__ import annotations

import pytest

import archs
from hwsim.errors import MappingError
from hwsim.npu.mapping import map_gemm
from hwsim.npu.tiles import DENSE, tile_costs
from hwsim.simulate import simulate
from traces.synth import conv, write_synthetic

EDGE = archs.PRESETS["edge-npu"]


def test_folds_and_chunks_fit_the_buffer():
    mp = map_gemm(10_000, 300, 40, EDGE, "ws")  # A rows stream through a 64 KiB half of the GLB
    assert (mp.row_folds, mp.col_folds) == (19, 3)
    working = mp.rows * mp.cols + mp.stream_chunk * (mp.rows + mp.cols)
    assert working <= 64 * 1024 < mp.rows * mp.cols + (mp.stream_chunk + 1) * (mp.rows + mp.cols)
    assert mp.chunks == -(-10_000 // mp.stream_chunk)


def test_chunking_does_not_change_cycles():
    one = map_gemm(500, 70, 50, EDGE, "os", stream_chunk=70)
    many = map_gemm(500, 70, 50, EDGE, "os", stream_chunk=9)
    assert one.chunks == 1 and many.chunks == 8
    assert (tile_costs(None, None, None, one, DENSE).compute_cycles.sum()
            == tile_costs(None, None, None, many, DENSE).compute_cycles.sum())


def test_nothing_fits_raises_with_a_hint(tmp_path):
    tiny = archs.replace(EDGE, {"memories.glb.capacity_bytes": 256})
    with pytest.raises(MappingError, match=r"does not fit glb \(128 usable bytes.*Hint: a smaller array"):
        map_gemm(100, 100, 100, tiny, "ws")
    path = write_synthetic([conv("c", 8, 6, 6, 8, 3, padding=1)], tmp_path / "t")
    with pytest.raises(MappingError, match=r"layer c, forward \(36×72×8\)"):
        simulate(path, tiny, passes=["forward"])


def test_other_families_are_refused_clearly(tmp_path):
    with pytest.raises(MappingError, match="gpu machine; the edge-NPU mapper maps PE arrays"):
        map_gemm(8, 8, 8, archs.PRESETS["gpu-a100"])
    path = write_synthetic([conv("c", 8, 6, 6, 8, 3, padding=1)], tmp_path / "t")
    tiny = archs.replace(archs.PRESETS["reram-isaac"], {"reram.tiles": 1, "reram.imas_per_tile": 1,
                                                       "reram.crossbars_per_ima": 1})
    with pytest.raises(MappingError, match="short by"):  # the ReRAM family maps onto crossbars
        simulate(path, tiny)


def test_reports_are_identical_for_any_number_of_workers(tmp_path):
    import pandas as pd

    from traces.synth import linear

    layers = [conv("c1", 4, 12, 12, 8, 3, padding=1), conv("c2", 8, 12, 12, 8, 3, stride=2),
              linear("fc", 288, 10)]
    path = write_synthetic(layers, tmp_path / "t", batch=4, density={"x": 0.5, "w": 0.8, "dy": 0.3},
                           iterations=2)
    arch = archs.replace(EDGE, {"compute.microarchitecture": "pe_skipping"})
    one = simulate(path, arch, dataflow="os", workers=1).to_frame()
    for n in (2, 3):
        pd.testing.assert_frame_equal(simulate(path, arch, dataflow="os", workers=n).to_frame(), one)


def test_a_pass_over_the_memory_budget_is_refused_up_front(tmp_path, capsys):
    """Instead of being killed by the kernel, a replay whose smallest chunk (one row fold) would need
    more memory than its budget stops before allocating, naming the tile count, the estimate and
    the fixes; at exactly that budget it runs (in chunks of one row fold) and counts every tile."""
    from hwsim.cli import main
    from hwsim.memory import input_bytes
    from hwsim.npu.mapping import map_gemm as mapping
    from hwsim.npu.replay import BYTES_PER_TILE

    spec = conv("c", 16, 14, 14, 16, 3, padding=1)
    path = write_synthetic([spec], tmp_path / "t", batch=2)
    arch = archs.PRESETS["eyeriss-v2-pe"]
    g = spec.gemm("forward", 2)
    mp = mapping(g.m, g.k, g.n, arch, arch.compute.dataflow, {"a": 1, "b": 1, "c": 1})
    tiles = mp.row_folds * mp.col_folds * -(-mp.stream_dim // mp.stream_chunk)
    # eyeriss-v2-pe is output-stationary with per-PE skipping: A and the needs are bool (A is cast
    # to float32 a few MB at a time)
    need = mp.chunks * BYTES_PER_TILE + 2 * g.m * g.k + input_bytes(spec, 2, weights=False)  # + its masks
    with pytest.raises(MappingError, match=rf"layer c, forward: one row fold of {mp.chunks} tiles"):
        simulate(path, arch, passes=["forward"], workers=1, memory_budget_bytes=need - 1)
    ok = simulate(path, arch, passes=["forward"], workers=1, memory_budget_bytes=need).to_frame()
    assert ok["tiles"].iloc[0] == tiles  # every tile replayed, one row fold at a time
    whole = simulate(path, arch, passes=["forward"], workers=1).to_frame()
    assert ok["cycles"].iloc[0] == whole["cycles"].iloc[0]
    assert main(["replay", str(path), "--arch", "eyeriss-v2-pe", "--memory-budget", "1KiB"]) == 2
    err = capsys.readouterr().err
    assert "--memory-budget 1.00 KiB: this process holds" in err and "0.0 GiB" not in err  # units that fit
    assert main(["replay", str(path), "--arch", "eyeriss-v2-pe", "--memory-budget", "lots"]) == 2
    assert "--memory-budget: cannot read 'lots'" in capsys.readouterr().err
