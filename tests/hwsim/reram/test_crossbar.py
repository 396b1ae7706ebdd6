"""ReRAM in-situ MAC: the ISAAC table from a replayed layer, hand cases, and a scalar reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

import archs
from hwsim.errors import MappingError
from hwsim.reram.crossbar import DENSE, Skips, mvm_costs, reads_per_vector
from hwsim.reram.mapping import map_layer, map_model
from hwsim.simulate import simulate
from traces.synth import linear, write_synthetic

ISAAC = archs.PRESETS["reram-isaac"]
R = ISAAC.reram
ALL = Skips(True, True, True)


def within(value: float, target: float, rel: float) -> bool:
    return abs(value - target) <= rel * target


@pytest.fixture(scope="module")
def full_chip_row(tmp_path_factory):
    """One dense 128×128 16-bit layer (one IMA) replayed with 4 × 2016 input vectors: the chip
    replicates it into all 2016 IMAs, every crossbar busy for the whole pass."""
    path = write_synthetic([linear("fc", 128, 128)], tmp_path_factory.mktemp("isaac") / "t", batch=4 * 2016)
    df = simulate(path, ISAAC, passes=["forward"]).to_frame()
    return df.iloc[0]


def test_isaac_table_from_a_replayed_dense_layer_at_full_occupancy(full_chip_row):
    r = full_chip_row
    assert r["reram_replicas"] == 2016 and r["utilization"] == pytest.approx(1.0)
    seconds = r["cycles"] / ISAAC.clock_hz
    chip_w = r["energy_pj"] * 1e-12 / seconds
    tile_parts = ("crossbar", "adc", "dac", "ima_peripherals", "tile_peripherals")
    in_tiles = sum(r[f"energy_{k}_pj"] for k in tile_parts)
    # ISAAC (ISCA'16) table, architecture_parameters.md §4.1/§6: 41.3 TOPS at 16 bit, 168 tiles = 55.4 W,
    # tile ≈ 330 mW (329.9 summed), ADCs 58 % of tile power
    assert within(2 * r["actual_macs"] / seconds / 1e12, 41.3, 0.03)
    assert within(chip_w, 55.4, 0.03)
    assert within(in_tiles * 1e-12 / seconds / R.tiles * 1e3, 330, 0.03)
    assert within(r["energy_adc_pj"] / in_tiles, 0.58, 0.03)


def test_two_crossbars_in_k_and_three_in_n_use_six_per_bit_slice():
    lm = map_layer(linear("fc", 200, 300), R)  # K = 200 > 128 rows, N = 300 > 2 × 128 columns
    assert (lm.k_xbars, lm.n_xbars, lm.slices, lm.sets) == (2, 3, 8, 1)  # 16-bit weights, 2-bit cells
    assert lm.crossbars == 6 * 8
    c = mvm_costs(None, None, (1, 200, 300), lm, R, DENSE)  # one dense vector
    assert c.crossbar_reads == 6 * 8 * 16  # every crossbar, once per input bit
    diff = archs.replace(ISAAC, {"reram.signed_weights": "differential"}).reram
    lmd = map_layer(linear("fc", 200, 300), diff)
    assert lmd.crossbars == 6 * math.ceil(15 / 2) * 2  # 15 magnitude bits, two column sets


def test_an_all_zero_input_vector_costs_no_adc_conversion():
    lm = map_layer(linear("fc", 200, 300), R)
    b = np.ones((200, 300), bool)
    zero = mvm_costs(np.zeros((1, 200), bool), b, (1, 200, 300), lm, R, ALL)
    assert (zero.adc_conversions, zero.crossbar_reads, zero.dac_drives, zero.time_ns) == (0, 0, 0, 0.0)
    one = np.zeros((2, 200), bool)
    one[0, 5] = True  # one non-zero in the first block of 128 rows
    c = mvm_costs(one, b, (2, 200, 300), lm, R, ALL)
    assert c.adc_conversions == 16 * 300 * 8  # the first block's 300 columns × 8 slices, per input bit
    dense = mvm_costs(one, b, (2, 200, 300), lm, R, DENSE)
    assert dense.adc_conversions == 2 * 2 * 16 * 300 * 8


def scalar_counts(a: np.ndarray, b: np.ndarray, rows: int, cols: int, slices: int, bits: int,
                  parallel: int) -> dict:
    """A slow reference for the skipping machine: loop over vectors, row groups read at once
    (``parallel`` rows of a crossbar) and crossbars."""
    m, k = a.shape
    n = b.shape[1]
    out = {"conv": 0, "reads": 0, "drives": 0, "macs": 0}
    for v in range(m):
        for kr in range(0, k, parallel):
            seg = a[v, kr:kr + parallel]
            if not seg.any():
                continue
            kb = kr // rows * rows  # the crossbar block these rows are in
            for nb in range(0, n, cols):
                block = b[kb:kb + rows, nb:nb + cols]
                nz_cols = int(block.any(axis=0).sum())
                if nz_cols == 0:
                    continue  # an all-zero crossbar is not activated
                out["reads"] += bits * slices
                out["conv"] += bits * slices * nz_cols
                out["drives"] += bits * slices * int(seg.sum())
                out["macs"] += int(seg.sum()) * nz_cols
    return out


@pytest.mark.parametrize(("seed", "parallel"), [(0, 128), (1, 128), (2, 32)])
def test_counts_match_a_scalar_reference(seed, parallel):
    rng = np.random.default_rng(seed)
    a = rng.random((37, 300)) < 0.3
    a[3] = False
    b = rng.random((300, 290)) < 0.4
    b[:, 7:140] = False  # whole zero columns and one zero crossbar column block
    b[128:256, 256:] = False
    r = archs.replace(ISAAC, {"reram.crossbar.parallel_rows": parallel}).reram
    lm = map_layer(linear("fc", 300, 290), r)
    c = mvm_costs(a, b, (37, 300, 290), lm, r, ALL)
    ref = scalar_counts(a, b, 128, 128, 8, reads_per_vector(r), parallel)
    assert (c.adc_conversions, c.crossbar_reads, c.dac_drives, c.actual_macs) == \
        (ref["conv"], ref["reads"], ref["drives"], ref["macs"])


def test_replication_balances_the_pipeline_and_a_too_large_model_names_the_shortfall():
    layers = [linear("a", 128, 128), linear("b", 128, 128)]
    maps = map_model(layers, R, [3000, 1000])
    assert maps["a"].imas * maps["a"].replicas + maps["b"].imas * maps["b"].replicas <= 2016
    # the stages are balanced: vectors per copy differ by less than one copy's share
    assert math.ceil(3000 / maps["a"].replicas) == pytest.approx(math.ceil(1000 / maps["b"].replicas), abs=1)
    big = [linear("big", 128 * 2017, 128)]  # 2017 IMAs of 8 crossbars each
    with pytest.raises(MappingError, match=r"need 2,017 IMAs .* has 2,016 .* short by 1 IMAs = 1 tiles"):
        map_model(big, R, [1])


def test_transposed_read_counts_match_the_scalar_reference_with_rows_and_columns_swapped():
    """Backward-data: dY (M × N) drives the bit lines of the crossbars holding W (Kr × N), the word
    lines are sensed; on a 64-row × 128-column crossbar the input blocks are 128 long, outputs 64."""
    rng = np.random.default_rng(3)
    r = archs.replace(ISAAC, {"reram.crossbar.rows": 64}).reram
    lm = map_layer(linear("fc", 150, 300), r)  # Kr = 150, N = 300
    dy = rng.random((11, 300)) < 0.5
    w_t = rng.random((300, 150)) < 0.3  # (N, Kr): the mapped matrix transposed
    w_t[:, 64:128] = False  # one block of word lines all zero
    c = mvm_costs(dy, w_t, (11, 300, 150), lm, r, ALL, transposed=True)
    ref = scalar_counts(dy, w_t, 128, 64, 8, reads_per_vector(r), 128)
    assert (c.adc_conversions, c.crossbar_reads, c.dac_drives, c.actual_macs) == \
        (ref["conv"], ref["reads"], ref["drives"], ref["macs"])
