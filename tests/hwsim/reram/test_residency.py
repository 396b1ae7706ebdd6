"""Weights that do not fit the crossbars: programs written in turns (``hwsim/reram/residency.py``),
counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import archs
from hwsim.errors import MappingError
from hwsim.reram.mapping import chip_imas, map_layer
from hwsim.reram.residency import plan, written_programs
from hwsim.simulate import simulate
from traces.format.manifest import new_manifest
from traces.synth import linear, write_synthetic
from traces.synth_transformer import parse_config, transformer_layers

ISAAC = archs.PRESETS["reram-isaac"]  # 128×128 crossbars of 2-bit cells, 16-bit offset code: 8 slices
ONE_IMA = archs.replace(ISAAC, {"reram.tiles": 1, "reram.imas_per_tile": 1, "reram.replicate_layers": False})
CELLS = 128 * 128 * 8  # one 128 × 128 layer: 8 crossbars = the one IMA
PASSES = ["forward", "backward_data", "backward_weight", "update"]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """Three 128 × 128 linear layers, 4 rows per sample, batch 2, half-dense inputs."""
    layers = [linear(n, 128, 128, rows=4) for n in ("a", "b", "c")]
    return write_synthetic(layers, tmp_path_factory.mktemp("residency") / "t", batch=2,
                           density={"x": 0.5, "w": 0.7, "dy": 0.4})


def test_written_programs_in_steady_state():
    assert written_programs(1, [0]) == ([], 0)  # fits: nothing rewritten
    # no transposed read: the forward writes every program, the last is overwritten before it is read
    assert written_programs(3, []) == ([(0, "forward"), (1, "forward"), (2, "forward")], 2)
    # transposed read: the backward reuses the last and ends on the first, which the next forward reuses
    assert written_programs(3, [0, 1, 2]) == ([(1, "forward"), (2, "forward"), (1, "backward_data"),
                                               (0, "backward_data")], 0)
    # the first layer has no backward-data: the backward ends on program 1, the forward rewrites 0
    assert written_programs(3, [1, 2]) == ([(0, "forward"), (1, "forward"), (2, "forward"),
                                            (1, "backward_data")], 1)


def test_three_layers_on_a_chip_that_holds_one(mlp):
    rep = simulate(mlp, ONE_IMA, passes=PASSES)
    df, meta = rep.to_frame(), rep.meta
    fwd = df[df["pass"] == "forward"].set_index("layer")
    r = ONE_IMA.reram
    # every forward is preceded by writing its layer over the previous one: all 8 crossbars, every cell
    assert fwd["reram_reprogram_cells"].tolist() == [CELLS] * 3
    # independent uniform levels of 2-bit cells: E|Δ| = 3·5/(3·4) = 5/4 levels, one pulse per level
    per_cell = 5 / 4
    assert fwd["reram_reprogram_pulses"].tolist() == pytest.approx([CELLS * per_cell] * 3)
    w = r.write
    cell_pj = per_cell * w.pulse_energy_pj  # a programmed cell's energy, from the spec
    assert fwd["energy_reprogram_cells_pj"].tolist() == pytest.approx([CELLS * cell_pj] * 3)
    rows = 128 * 8  # crossbar rows written; each a SET and a RESET phase of 3 pulses
    half = rows * 128 / 2  # per phase half the columns selected, the other half inhibited
    drivers = (rows * 6 * w.driver_energy_pj_per_row_pulse
               + half * 6 * (w.driver_energy_pj_per_bit_line_pulse + w.driver_energy_pj_per_source_line_pulse)
               + 8 * w.driver_energy_pj_per_crossbar)
    assert fwd["energy_reprogram_drivers_pj"].tolist() == pytest.approx([drivers] * 3)
    hbm = ONE_IMA.off_chip
    fetch = 128 * 128 * 2  # 16-bit weights
    fetch_pj = fetch * hbm.read_energy_pj_per_byte
    assert fwd[f"{hbm.name}_b_read_bytes"].tolist() == [fetch] * 3  # off-chip reads of the weights
    assert fwd["energy_reprogram_fetch_pj"].tolist() == pytest.approx([fetch_pj] * 3)
    # 128 rows × 6 pulses × 50 ns = 38.4 µs per crossbar, all 8 in parallel; the fetch (16 ns) overlaps
    assert 128 * 6 * w.pulse_ns > fetch / hbm.bandwidth_bytes_per_s * 1e9
    assert fwd["reram_reprogram_cycles"].tolist() == [round(38_400e-9 * ONE_IMA.clock_hz)] * 3
    # no cell is written more than 3 times per iteration; the update writes none (each layer's new
    # weights are written when it is next programmed)
    assert fwd["reram_programmings_per_iteration"].tolist() == [3] * 3
    assert meta["reram_reprogram_lifetime_iterations"] == pytest.approx(w.endurance_cycles / (3 * per_cell))
    upd = df[df["pass"] == "update"]
    assert (upd["reram_cell_writes"] == 0).all()
    # the same machine's dense baseline reprograms too
    assert (fwd["dense_cycles"] >= fwd["reram_reprogram_cycles"]).all()
    parts = [c for c in df.columns if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]
    np.testing.assert_allclose(df[parts].fillna(0).sum(axis=1), df["energy_pj"], rtol=1e-9)


def test_passes_off_the_crossbars_report_no_programming_not_nan(mlp):
    """The weight gradient (digital) and the update rows of a reprogrammed chip had NaN in the
    reprogramming columns (found by spec fuzzing: a 1 × 1 crossbar on reram-neurosim): no programming
    precedes them, 0; the programmings per iteration are the run's on every row."""
    df = simulate(mlp, ONE_IMA, passes=PASSES).to_frame()
    cols = [c for c in df.columns if c.startswith("reram_reprogram_")] + ["reram_programmings_per_iteration"]
    assert len(cols) == 7 and not df[cols].isna().any().any()
    off = df["pass"].isin(["backward_weight", "update"])
    assert (df.loc[off, cols[:-1]] == 0).all().all()
    assert (df["reram_programmings_per_iteration"] == df["reram_programmings_per_iteration"].iloc[0]).all()


def test_transposed_read_reuses_the_last_program(mlp):
    chip = archs.replace(ONE_IMA, {"reram.transposed_read": True})
    df = simulate(mlp, chip, passes=PASSES).to_frame()
    got = df[df["reram_reprogram_cells"] > 0][["layer", "pass"]].values.tolist()
    # layer a has no backward-data (it is the first): the backward ends on b, so a is rewritten
    assert sorted(got) == [["a", "forward"], ["b", "backward_data"], ["b", "forward"], ["c", "forward"]]
    assert df["reram_reprogram_cells"].sum() == 4 * CELLS


def test_resident_and_reprogram_agree_when_the_model_fits(mlp):
    fits = archs.replace(ONE_IMA, {"reram.imas_per_tile": 3})
    frames = [simulate(mlp, archs.replace(fits, {"reram.weight_residency": mode}), passes=PASSES).to_frame()
              for mode in ("resident", "reprogram")]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert not any("reprogram" in c for c in frames[0].columns)


def test_resident_refuses_what_does_not_fit(mlp):
    chip = archs.replace(ONE_IMA, {"reram.weight_residency": "resident"})
    with pytest.raises(MappingError, match=r"short by 2 IMAs = 2 tiles.*weight_residency: reprogram"):
        simulate(mlp, chip)


@pytest.mark.parametrize("transposed", [False, True])
def test_a_layer_larger_than_the_chip_runs_in_parts(tmp_path, transposed):
    """A 128 × 384 layer (24 crossbars) on an 8-crossbar chip: three column parts, one after another;
    its counts equal the whole layer's on a chip that holds it, its time is the parts' times added."""
    path = write_synthetic([linear("a", 64, 128, rows=4), linear("big", 128, 384, rows=4)], tmp_path / "t",
                           batch=3, density={"x": 0.5, "w": 0.6, "dy": 0.5})
    small = archs.replace(ONE_IMA, {"reram.transposed_read": transposed})
    big = archs.replace(small, {"reram.imas_per_tile": 4})
    split = simulate(path, small).to_frame().set_index(["layer", "pass"])
    whole = simulate(path, big).to_frame().set_index(["layer", "pass"])
    passes = ["forward", "backward_data"] if transposed else ["forward"]
    for p in passes:
        s, w = split.loc[("big", p)], whole.loc[("big", p)]
        for col in ("actual_macs", "algorithmic_macs", "reram_adc_conversions", "reram_crossbar_reads",
                    "reram_dac_drives"):
            assert s[col] == w[col], (p, col)
        assert s["gemm_cycles"] > w["gemm_cycles"]  # the three parts do not run side by side
    fwd = split.loc[("big", "forward")]
    # every part (and the small layer "a") is a program: 4 programs, all written before the forward
    assert fwd["reram_reprogram_cells"] == 128 * 384 * 8
    if not transposed:  # dense inputs: each part takes the whole layer's time
        dense = whole.loc[("big", "forward"), "dense_gemm_cycles"]
        assert split.loc[("big", "forward"), "dense_gemm_cycles"] == pytest.approx(3 * dense, abs=3)


def test_gpt2_small_fits_the_unmodified_isaac_chip_in_turns():
    """GPT-2 small's linears need 3.7 chips of reram-isaac: five programs; the vocabulary projection
    (768 × 50257, 2,358 IMAs) alone is larger than the chip (2,016) and is cut in two."""
    cfg = parse_config("gpt2-small", batch=8)
    specs = [s for s in transformer_layers(cfg) if s.has_weight and s.gemm_passes]
    r = ISAAC.reram
    maps = {s.name: map_layer(s, r) for s in specs}
    res = plan([s.name for s in specs], maps, ISAAC)
    assert sum(m.imas for m in maps.values()) == 7542
    assert len(res.programs) == 5 and res.programmings_per_iteration == 5
    assert all(sum(p.lm.imas for p in prog) <= chip_imas(r) for prog in res.programs)
    assert len(res.parts["lm_head"]) == 2 and sum(p.c1 - p.c0 for p in res.parts["lm_head"]) == 50257
    # every weight's 8 cells are written once per iteration
    cells = sum(w.cells for w in res.before.values())
    assert cells == 8 * sum(s.reduction * s.out_per_group * s.groups for s in specs)
    # the replay's context plans the same from the manifest alone
    from hwsim.reram.replay import context

    manifest = new_manifest(transformer_layers(cfg), model={"name": "gpt2-small"},
                            method={"name": "synthetic"}, dataset={"name": "synthetic"}, seed=0, batch_size=8,
                            schedule={"every": 1})
    ctx = context(ISAAC, manifest)
    assert ctx.meta["reram_programs"] == 5 and ctx.meta["reram_weight_residency"] == "reprogram"
