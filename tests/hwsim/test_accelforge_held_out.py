"""hwsim's register-file level against AccelForge 1.0.467 on a held-out machine (issue 23: other hardware).

tests/data/accelforge/held_out_16x16/ holds DRAM (4 B/cycle) -> a 96 KiB global buffer -> 16×16 PEs with
a 32-byte register file each (AccelForge's pe_array.yaml, hwsim's twin pe_array_16x16_hwsim.yaml; GLB
2.0 and RF 0.2 pJ/B), AccelForge's model on hwsim's chosen mappings (given.csv, every layer of
layers.csv) and AccelForge's own mapper (reference.csv, every layer too: `make accelforge-reference`,
half an hour of searching on a busy 2-core machine). It was added after hwsim's register-file level
was matched on the 32×32 machine of test_accelforge_agreement.py, without changing hwsim; it showed
14 of 90 counts outside 1.25×, 8 of them from one shared register-file tile for all three tensors and
from ranking buffer tiles without their register-file level. Per-tensor register-file slices and the
ranking's lower bound (``hwsim.npu.pe_tiles``) were built for those (reference.csv unchanged); 6 remain.

- given.csv: every tensor's reads and writes at every level and the energy equal hwsim's to the
  element; latency within 1.25×.
- reference.csv: energy within 10 % and latency within 1.25× on every layer; every tensor's accesses
  within 1.25× except the ones of ``OUTSIDE``, which are asserted as they stand with their cause
  (docs/validation.md §3c, "Held-out machine").
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archs
from hwsim.npu.mapper import NestMapping, evaluate, search
from hwsim.npu.pe_tiles import PeMapping
from tests.hwsim.test_accelforge_agreement import (
    LAYERS,
    ONE,
    _rows,
    accesses,
    assert_equal_to_the_model,
    each_access,
    latency_ratios,
    shape_of,
)

MACHINE = Path(__file__).resolve().parents[1] / "data" / "accelforge" / "held_out_16x16"
GIVEN = _rows("held_out_16x16/given.csv")
REFERENCE = _rows("held_out_16x16/reference.csv")
KIB = 1024

# (layer, level, tensor, direction): hwsim / AccelForge's own mapper, outside 1.25× (see the tests below)
OUTSIDE = {
    ("bert_ffn1", "dram", "a", "read"): 4 / 3, ("bert_ffn1", "glb", "a", "write"): 4 / 3,
    ("l1_3x3", "glb", "b", "read"): 0.5, ("l1_3x3", "rf", "b", "write"): 0.5,
    ("l2_3x3_s2", "glb", "c", "read"): 4 / 3, ("l2_3x3_s2", "glb", "c", "write"): 4 / 3,
}


@pytest.fixture(scope="module")
def results():
    arch = archs.load(MACHINE / "pe_array_16x16_hwsim.yaml")
    return arch, {name: search(shape_of(name), "forward", arch, ONE) for name in LAYERS}


def test_the_csvs_are_the_held_out_machine():
    for name in ("given.csv", "reference.csv"):
        assert "machine held_out_16x16" in (MACHINE / name).read_text().splitlines()[0], name
    arch = archs.load(MACHINE / "pe_array_16x16_hwsim.yaml")
    assert (arch.compute.rows, arch.compute.cols) == (16, 16)
    assert arch.memory("rf").capacity_bytes == 32 and arch.memory("glb").capacity_bytes == 2 * 96 * KIB
    oracle = (MACHINE / "pe_array.yaml").read_text()
    assert "size: 96 * 1024 * 8" in oracle and "size: 32 * 8" in oracle and "fanout: 16" in oracle
    assert [r["layer"] for r in GIVEN] == list(LAYERS)
    assert [r["layer"] for r in REFERENCE] == list(LAYERS)  # the mapper ran on every layer
    for r in GIVEN + REFERENCE:  # the oracle ran every MAC of the layer
        assert int(r["macs"]) == shape_of(r["layer"]).macs


def test_given_mappings_are_hwsims_current_choice(results):
    _, res = results
    for r in GIVEN:
        assert res[r["layer"]].notation == r["hwsim_mapping"], r["layer"]


def test_accesses_and_energy_equal_accelforges_model_on_the_same_mapping(results):
    assert_equal_to_the_model(GIVEN, results[1])


def test_latency_within_125_percent_of_accelforges_model(results):
    arch, res = results
    for layer, ratio in latency_ratios(arch, GIVEN, res).items():
        assert 0.8 <= ratio <= 1.25, (layer, ratio)


def test_energy_and_latency_against_accelforges_mapper(results):
    arch, res = results
    for r in REFERENCE:
        assert res[r["layer"]].energy_pj == pytest.approx(float(r["energy_pj"]), rel=0.10), r["layer"]
    for layer, ratio in latency_ratios(arch, REFERENCE, res).items():
        assert 0.8 <= ratio <= 1.25, (layer, ratio)


def test_accesses_within_125_percent_of_accelforges_mapper_but_the_documented_ones(results):
    _, res = results
    seen = set()
    for r in REFERENCE:
        for key, ours, theirs in each_access(r, res):
            if theirs == 0 and ours == 0:
                continue
            ratio = ours / max(theirs, 1)
            if key in OUTSIDE:
                seen.add(key)
                assert ratio == pytest.approx(OUTSIDE[key], rel=1e-9), (key, ours, theirs)
            else:
                assert 0.8 <= ratio <= 1.25, (key, ours, theirs)
    assert seen == set(OUTSIDE)


def test_bert_ffn1_input_differs_by_a_split_loop_over_the_output_channels():
    """AccelForge's buffer keeps 512 output channels of the output while it streams the weights through
    64 at a time: its loop over the output channels is split in two (`T-k ... shape=512` above the
    input's node, `T-k ... shape=64` below it), so the buffer holds 512·128 + 96·128 + 64·96 B of
    96 KiB. hwsim's loop nest has one DRAM loop per dimension, so its tensors' buffer slices nest in
    one order: a tile of K512 C96 for the output and the weights needs 512·128 + 96·128 + 512·96 B,
    over 96 KiB, and hwsim's best takes K384: the input is read from DRAM 8 times instead of 6. By hand:"""
    ref = {r["layer"]: r for r in REFERENCE}
    m = ref["bert_ffn1"]["mapping"]
    assert "T-k in [0..6) shape=512" in m
    assert "[I in GlobalBuffer] I reserves GlobalBuffer T-k in [0..8) shape=64" in m
    assert 512 * 128 + 96 * 128 + 64 * 96 <= 96 * KIB < 512 * 128 + 96 * 128 + 512 * 96
    assert float(ref["bert_ffn1"]["dram_a_read"]) == 6 * 768 * 128
    arch = archs.load(MACHINE / "pe_array_16x16_hwsim.yaml")
    for name, k_tiles in (("bert_qkv", 2), ("bert_ffn1", 8)):
        r = search(shape_of(name), "forward", arch, ONE)
        assert r.notation.startswith(f"B1 K384 C96 OY1 OX128 | K{k_tiles} C8 ||"), r.notation
        assert accesses(r, "dram", "a", "read") == k_tiles * 768 * 128


def test_gemm_register_files_keep_accelforges_per_tensor_slices():
    """In the register file AccelForge keeps 4 × 6 weights, 6 inputs and 1 output (31 B of 32): each
    tensor's node at its own loop. One tile for all three tensors cannot hold that (K4 C6: 24 + 6 + 4 =
    34 B); hwsim's register files keep each tensor's slice at its own residency level: the weights'
    slice spans the buffer-level loop over 6 input channels (`{W} C6`), the input and the output keep
    one tile, 24 + 1 + 4 = 29 B. Every register-file count and the buffer's reads and partial sums then
    equal AccelForge's mapper's on both GEMMs (by hand: each weight loaded into one PE's register file
    once)."""
    ref = {r["layer"]: r for r in REFERENCE}
    arch = archs.load(MACHINE / "pe_array_16x16_hwsim.yaml")
    for name in ("bert_qkv", "bert_ffn1"):
        m = ref[name]["mapping"]
        assert "S-cols-k in [0..16) shape=4 S-rows-c in [0..16) shape=6" in m
        assert "[I in RF] I reserves RF T-k in [0..4) shape=1 [O in RF]" in m
        assert 4 * 6 + 6 + 1 <= 32 < 4 * 6 + 6 + 4
        r = search(shape_of(name), "forward", arch, ONE)
        assert "RF B1 K4 C1 OY1 OX1 | K6 OX128 {W} C6" in r.notation, r.notation
        assert r.rf_levels == {"I": 5, "W": 2, "O": 5}
        assert r.occupancy["rf"] == 4 * 6 + 1 + 4 <= 32
        k = 3072 if name == "bert_ffn1" else 768
        assert accesses(r, "rf", "b", "write") == k * 768  # each weight into one register file, once
        for level in ("glb", "rf"):  # what the register-file level moves (not the buffer's DRAM fills)
            for op in "abc":
                for direction in ("read", "write") if level == "rf" or op == "c" else ("read",):
                    theirs = float(ref[name][f"{level}_{op}_{direction}"])
                    assert accesses(r, level, op, direction) == pytest.approx(theirs, rel=1e-9), \
                        (name, level, op, direction)


def test_l3_3x3_register_files_keep_accelforges_per_tensor_slices():
    """The same on `l3_3x3`: AccelForge keeps 2 × 9 weights, a 3 × 4 input window (two output columns,
    sliding down the rows) and one output (31 B: the output's node sits below the register file's loop
    over the 2 output channels), where one tile of `K2 OX2` for all three tensors is 18 + 12 + 4 =
    34 B over 32. hwsim's register-file tile is `OX2` with the weights' slice spanning the loop over 2
    output channels (`{W} K2`): 18 + 12 + 2 = 32 B, and the input window slides down the 14 rows. Per
    channel and 14 × 14 outputs, 7 sweeps of 12 + 13 · 4 input loads, as AccelForge counts (by hand);
    every count equals AccelForge's mapper's."""
    ref = next(r for r in REFERENCE if r["layer"] == "l3_3x3")
    m = ref["mapping"]
    assert "[Wt in RF] Wt reserves RF T-q in [0..7) shape=2 [I in RF] T-p in [0..14) shape=1" in m
    assert "T-k in [0..2) shape=1 [O in RF]" in m
    assert 2 * 9 + 3 * 4 + 1 <= 32 < 2 * 9 + 3 * 4 + 2 * 2
    arch = archs.load(MACHINE / "pe_array_16x16_hwsim.yaml")
    r = search(shape_of("l3_3x3"), "forward", arch, ONE)
    assert "RF B1 K1 C1 OY1 OX2 | C4 OX7 OY14 {W} K2" in r.notation, r.notation
    assert r.occupancy["rf"] == 2 * 9 + 3 * 4 + 2
    channels, pe_cols = 256, 16  # the input is multicast over the 16 columns (output channels)
    k_trips = 256 // 32  # buffer tiles along K: each refills the register files
    fills = k_trips * channels * 7 * (3 * 4 + 13 * 4) * pe_cols
    assert accesses(r, "rf", "a", "write") == fills == float(ref["rf_a_write"])
    for key, ours, theirs in each_access(ref, {"l3_3x3": r}):
        assert ours == pytest.approx(theirs, rel=1e-9), key


def test_l2_1x1_s2_reaches_accelforges_mapping():
    """On `l2_1x1_s2` AccelForge's mapper keeps each PE's 4 × 4 weights in its register file while the
    28 output rows of one column stream through (buffer tile `OY28 OX1` under a DRAM loop over the 28
    columns). hwsim's model prices that mapping at AccelForge's energy and counts, and its search now
    reaches that energy: buffer tiles are ranked before their register-file level is searched with the
    level's exact PEs in use and a lower bound of its fills (``pe_tiles.pe_bound``: each PE loads its
    slice once per buffer tile), not with none, so a tile whose weights every new buffer tile refills
    (`OY1 OX7 | OY28 OX4`, 112 tiles: 4× the weights' fills, 5 % more energy) no longer ranks first."""
    arch = archs.load(MACHINE / "pe_array_16x16_hwsim.yaml")
    ref = next(r for r in REFERENCE if r["layer"] == "l2_1x1_s2")
    assert "T-q in [0..28) shape=1 [I in GlobalBuffer]" in ref["mapping"]
    theirs = NestMapping((1, 128, 64, 28, 1), ("OX", "B", "K", "C", "OY"),
                         PeMapping((("C", 16), ("K", 16)), (1, 4, 4, 1, 1), ("K", "OY", "B", "C", "OX")))
    res = evaluate(shape_of("l2_1x1_s2"), "forward", arch, theirs, ONE)
    assert res.energy_pj == pytest.approx(float(ref["energy_pj"]), rel=1e-6)
    for key, ours, counted in each_access(ref, {"l2_1x1_s2": res}):
        assert ours == pytest.approx(counted, rel=1e-6, abs=0.5), key
    chosen = search(shape_of("l2_1x1_s2"), "forward", arch, ONE)
    assert chosen.energy_pj == pytest.approx(res.energy_pj, rel=1e-9)
    assert chosen.notation.startswith("B1 K128 C64 OY1 OX28 | OY28 ||")
    missed = evaluate(shape_of("l2_1x1_s2"), "forward", arch, NestMapping((1, 128, 64, 1, 7),
                                                                          ("B", "K", "C", "OY", "OX")), ONE)
    assert accesses(missed, "rf", "b", "write") == 4 * accesses(chosen, "rf", "b", "write")
    assert missed.energy_pj > 1.04 * chosen.energy_pj


def test_l2_3x3_s2_differs_by_a_mapping_that_accelforge_prices_cheaper():
    """On `l2_3x3_s2` AccelForge's own (loop-order-limited) mapper splits the filter's columns above the
    array (`T-s in [0..3)` at the buffer level: the script's whole-window constraint binds only the
    loops between the array and the register file) and accumulates the 4 input channels of each PE in
    its register file: every output visits the buffer 3 times. hwsim's register file keeps whole
    windows and its buffer-level loop over the 4 channels turns outside the output's columns: 4 visits,
    4/3 of the output's buffer reads and writes. AccelForge's own model prices hwsim's mapping lower
    than its mapper's pick (given.csv against reference.csv)."""
    ref = next(r for r in REFERENCE if r["layer"] == "l2_3x3_s2")
    given = next(r for r in GIVEN if r["layer"] == "l2_3x3_s2")
    m = ref["mapping"]
    assert m.index("T-s in [0..3) shape=1") < m.index("S-cols-k") < m.index("[Wt in RF]")
    outputs = 128 * 28 * 28
    assert float(ref["glb_c_write"]) == 3 * outputs and float(given["glb_c_write"]) == 4 * outputs
    assert float(given["energy_pj"]) < float(ref["energy_pj"])


def test_l1_3x3_trades_weight_fills_for_input_fills():
    """On `l1_3x3` both register files keep two output channels' filters (AccelForge: 2 × 9 weights, a
    3 × 4 input window and one output; hwsim: `{W} K2`, a 4 × 3 window of two output rows and their
    two outputs, 32 B), but hwsim's buffer tile spans the full width (`OX56`) where AccelForge's
    mapper halves the width above the array (`T-q in [0..2) shape=28`): hwsim refills each PE's
    filters half as often (0.5× the weights' buffer reads and register-file fills) and its input
    1/0.83 as often. AccelForge's own model prices hwsim's mapping 0.9 % below its mapper's pick
    (given.csv against reference.csv)."""
    ref = next(r for r in REFERENCE if r["layer"] == "l1_3x3")
    given = next(r for r in GIVEN if r["layer"] == "l1_3x3")
    m = ref["mapping"]
    assert "T-q in [0..2) shape=28" in m and m.index("T-q in [0..2) shape=28") < m.index("S-cols-k")
    assert "[Wt in RF] Wt reserves RF T-q in [0..14) shape=2 [I in RF] T-p in [0..8) shape=1" in m
    assert "T-k in [0..2) shape=1 [O in RF]" in m
    assert "RF B1 K1 C1 OY2 OX1 | C4 OY4 OX56 {W} K2" in given["hwsim_mapping"]
    assert "| OY7~ K2 ||" in given["hwsim_mapping"] and "OX56" in given["hwsim_mapping"].split("|")[0]
    assert 2 * 9 + 4 * 3 + 2 <= 32
    assert float(given["glb_b_read"]) == 0.5 * float(ref["glb_b_read"])
    assert float(given["energy_pj"]) < float(ref["energy_pj"]) < 1.01 * float(given["energy_pj"])
