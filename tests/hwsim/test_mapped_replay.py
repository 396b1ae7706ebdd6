"""simulate(mapping=...) and `hwsim replay --mapping`: the loop nest's traffic in the rows, strict
mapping files (the nest's timing: tests/hwsim/test_nest_timing.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import archs
from hwsim.errors import MappingError
from hwsim.npu.loopnest import ConvShape
from hwsim.npu.mapper import evaluate, search
from hwsim.simulate import simulate
from traces.synth import conv, linear, write_synthetic

TWIN = Path(__file__).resolve().parents[1] / "data" / "zigzag" / "systolic_32x32_hwsim.yaml"
ONE = {"a": 1.0, "b": 1.0, "c": 1.0}
LAYERS = [conv("c3", 16, 18, 18, 40, 3), conv("c1s2", 32, 15, 15, 24, 1, stride=2), linear("fc", 96, 48)]


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    return write_synthetic(LAYERS, tmp_path_factory.mktemp("m") / "t", batch=2, density={"x": 0.5})


@pytest.fixture(scope="module")
def frames(trace):
    from dataclasses import replace

    twin = archs.load(TWIN)  # without its 1 B/cycle DRAM port: no transfer takes time
    arch = replace(twin, memories=tuple(replace(m, bandwidth_bytes_per_s=0.0) if m.off_chip else m
                                        for m in twin.memories))
    fixed = simulate(trace, arch, passes=["forward", "backward_data", "backward_weight"]).to_frame()
    found = simulate(trace, arch, passes=["forward", "backward_data", "backward_weight"],
                     mapping="search").to_frame()
    return arch, fixed, found


def test_one_tile_nests_keep_the_replays_cycles_macs_and_sram_reads(frames):
    """These layers fit the twin's SRAMs whole: every searched nest is one tile (``| -``), and a
    one-tile nest's schedule is the fixed order's SCALE-Sim cycles (no DRAM limit here)."""
    _, fixed, found = frames
    assert found["mapping"].str.endswith("| -").all()
    for col in ("cycles", "gemm_cycles", "actual_macs", "ifmap_sram_a_read_bytes", "filter_sram_b_read_bytes",
                "dense_cycles"):
        assert found[col].tolist() == fixed[col].tolist(), col


def test_dram_bytes_are_the_mappers(frames):
    """The mapping is searched at densities rounded up to 5 % and costed at the row's own."""
    arch, _, found = frames
    specs = {s.name: s for s in LAYERS}
    tensors = {"forward": ("x", "w", "y"), "backward_data": ("dy", "w", "dx"),
               "backward_weight": ("x", "dy", "dw")}
    for row in found.to_dict("records"):
        pass_ = row["pass"]
        dens = {op: row.get(f"density_{t}", 1.0) for op, t in zip("abc", tensors[pass_], strict=True)}
        dens = {op: 1.0 if d != d else d for op, d in dens.items()}  # NaN: not recorded
        coarse = {op: min(1.0, math.ceil(d * 20 - 1e-9) / 20) for op, d in dens.items()}
        shape = ConvShape.of(specs[row["layer"]], 2)
        chosen = search(shape, pass_, arch, ONE, coarse).mapping
        res = evaluate(shape, pass_, arch, chosen, ONE, dens)
        assert row["mapping"] == res.notation
        for op, direction in (("a", "read"), ("b", "read"), ("c", "write"), ("c", "read")):
            assert row[f"dram_{op}_{direction}_bytes"] == res.bytes[("dram", op, "data", direction)]


def test_every_edge_npu_row_names_its_mapping(frames):
    _, fixed, found = frames
    assert fixed["mapping"].str.startswith("ws M").all()
    assert found["mapping"].str.contains(r"^B\d+ K\d+ C\d+ OY\d+ OX\d+ \| ").all()


def test_mapping_file_is_applied_and_checked(trace, tmp_path):
    arch = archs.load(TWIN)
    f = tmp_path / "m.yaml"
    f.write_text("version: 1\nlayers:\n  - layer: c3\n    pass: forward\n    tile: {K: 8, OY: 4}\n"
                 "    order: [OY, K, B, C, OX]\n")
    df = simulate(trace, arch, passes=["forward"], mapping=f).to_frame()
    # the input slice stays while K turns, then slides along OY (`~`: only the new rows come in)
    row = df.set_index("layer").loc["c3"]
    assert row["mapping"] == "B2 K8 C16 OY4 OX16 | OY4~ K5"
    f.write_text(f.read_text() + "    slide: false\n")  # every window whole (ZigZag's halos)
    whole = simulate(trace, arch, passes=["forward"], mapping=f).to_frame().set_index("layer").loc["c3"]
    assert whole["mapping"] == "B2 K8 C16 OY4 OX16 | OY4 K5"
    # the input once either way: by sliding a 6-row window, or (slide off) by keeping all of it
    assert whole["dram_a_read_bytes"] == row["dram_a_read_bytes"] == 2 * 16 * 18 * 18
    for text, field in [("version: 2\nlayers: []\n", "version"),
                        ("version: 1\nlayers:\n  - layer: c3\n    tiles: {K: 8}\n", "did you mean 'tile'"),
                        ("version: 1\nlayers:\n  - layer: c3\n    tile: {K: 7}\n", "does not divide"),
                        ("version: 1\nlayers:\n  - layer: c3\n    tile: {Q: 7}\n", "unknown key 'Q'"),
                        ("version: 1\nlayers:\n  - layer: c3\n    tile: {K: 8}\n    order: [K]\n", "order"),
                        ("version: 1\nlayers:\n  - layer: c3\n    tile: {K: 8}\n    slide: 1\n", "slide")]:
        f.write_text(text)
        with pytest.raises(MappingError, match=field) as err:
            simulate(trace, arch, passes=["forward"], mapping=f)
        assert str(f) in str(err.value)


def test_cli_show_mapping_and_bad_file(trace, tmp_path):
    run = [sys.executable, "-m", "hwsim.cli", "replay", str(trace), "--arch", str(TWIN), "--passes", "fwd"]
    ok = subprocess.run([*run, "--mapping", "search", "--objective", "dram", "--show-mapping"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "mappings (search" in ok.stdout and "OX" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nlayers: 3\n")
    err = subprocess.run([*run, "--mapping", str(bad)], capture_output=True, text=True, timeout=300)
    assert err.returncode == 2 and "Traceback" not in err.stderr
    assert f"{bad}: layers:" in err.stderr


def test_energy_saving_includes_the_dram_bytes_a_compressed_format_saves(tmp_path):
    """A machine whose DRAM holds the input zvc-compressed and nothing else sparse: a format without
    an action still moves compressed bytes, in the fixed order (its im2col stream's non-zeros plus
    a bit per element) as with the mapper, where the raw input crosses DRAM at density · 1 B + 1 bit
    per element and the saving is exactly those bytes at 64 pJ/B (the 10×10×16 input fits on chip:
    read once either way)."""
    from dataclasses import replace

    from archs.components import RepresentationFormat, SparseFeatures

    twin = archs.load(TWIN)
    arch = replace(twin, sparse=SparseFeatures(formats=(RepresentationFormat("dram", "a", "zvc", 1),)))
    path = write_synthetic([conv("small", 16, 10, 10, 8, 3)], tmp_path / "t", batch=1,
                           density={"x": 0.25, "w": 1.0, "dy": 1.0})
    fixed = simulate(path, arch, passes=["forward"]).to_frame().iloc[0]
    found = simulate(path, arch, passes=["forward"], mapping="search").to_frame().iloc[0]
    n = 16 * 10 * 10
    assert fixed["energy_saving"] > 1.0 and fixed["skipped_macs"] == fixed["gated_macs"] == 0
    assert fixed["dram_a_read_bytes"] < fixed["dram_a_metadata_read_bytes"] * 8  # non-zeros < elements
    assert found["dram_a_read_bytes"] == pytest.approx(found["density_x"] * n, abs=1e-6)
    assert found["dram_a_metadata_read_bytes"] == pytest.approx(n / 8)
    saved_pj = (n - found["density_x"] * n - n / 8) * 64.0
    assert found["dense_energy_pj"] - found["energy_pj"] == pytest.approx(saved_pj, rel=1e-9)
    assert found["energy_saving"] > 1.0
