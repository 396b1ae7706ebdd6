"""ReRAM training writes: hand cases, and real traces against a scalar reference that quantizes the
recorded weights directly."""

from __future__ import annotations

import math

import numpy as np
import pytest

import archs
import traces
from hwsim.layer_input import LayerInput
from hwsim.reram import context, layer_rows
from hwsim.reram.mapping import map_layer
from hwsim.reram.writes import per_crossbar, pulse_counts, step_writes
from hwsim.simulate import simulate
from traces.synth import linear

ISAAC = archs.PRESETS["reram-isaac"]
ONE_COPY = archs.replace(ISAAC, {"reram.replicate_layers": False})  # one copy per layer: plain counts
R = ISAAC.reram


def _one_weight(code0: int, code1: int, bits: int = 16) -> tuple[np.ndarray, np.ndarray, float]:
    """A 4×6 layer whose weight (1, 1) moves from code0 to code1 (codes of a scale of 1 / (2^(b-1)-1))."""
    top = 2 ** (bits - 1) - 1
    w = np.zeros((4, 6), np.float32)
    w[0, 0] = 1.0  # the largest weight: one code step = 1 / top
    w[1, 1] = code0 / top
    dw = np.zeros_like(w)
    dw[1, 1] = (code1 - code0) / top
    return w, dw, 1.0 / top


def test_one_cell_moved_one_level_is_one_pulse_on_a_multi_level_cell():
    w, dw, scale = _one_weight(4, 5)  # offset code 32772 -> 32773: only the lowest 2-bit cell moves, 0 -> 1
    lm = map_layer(linear("fc", 6, 4), R)
    sw = step_writes(w, dw, None, lm, R, scale)
    assert (sw.cell_writes, sw.set_pulses, sw.reset_pulses) == (1, 1, 0)
    assert sw.rows_written == 1 and sw.row_pulses == 1
    assert sw.latency_ns == 1 * R.write.pulse_ns  # one row, a SET phase of one pulse
    heat = per_crossbar(sw.changed, lm, R)
    assert heat.shape == (8, 1, 1, 1) and heat.sum() == 1 and heat[0, 0, 0, 0] == 1  # slice 0's crossbar


def test_a_device_with_more_levels_than_the_cell_takes_neurosims_pulses_per_level():
    """NeuroSim V2.1: ceil(|ΔG| / (G range / maxNumLevel)); a 5-bit cell on a 60-level device."""
    r = archs.replace(ISAAC, {"reram.crossbar.bits_per_cell": 5, "reram.weight_bits": 5,
                              "reram.write.levels_ltp": 60, "reram.write.levels_ltd": 60}).reram
    lm = map_layer(linear("fc", 6, 4), r)
    for d, pulses in ((1, 2), (2, 4), (3, 6), (-1, 2)):  # ceil(|d| · 60 / 31)
        w, dw, scale = _one_weight(4, 4 + d, bits=5)
        sw = step_writes(w, dw, None, lm, r, scale)
        assert sw.pulses == pulses == math.ceil(abs(d) * 60 / 31)
        assert (sw.set_pulses > 0) == (d > 0) and (sw.reset_pulses > 0) == (d < 0)


def test_a_row_writes_a_set_phase_then_a_reset_phase():
    r = archs.replace(ISAAC, {"reram.crossbar.bits_per_cell": 4, "reram.weight_bits": 4}).reram
    top = 7
    w = np.zeros((4, 6), np.float32)
    w[0, 0] = 1.0
    w[1, 1], w[2, 1] = 2 / top, 5 / top  # outputs 1 and 2 share crossbar row 1 (input 1)
    dw = np.zeros_like(w)
    dw[1, 1], dw[2, 1] = 1 / top, -3 / top  # +1 level (SET), -3 levels (RESET) in the same row
    sw = step_writes(w, dw, None, map_layer(linear("fc", 6, 4), r), r, 1 / top)
    assert (sw.set_pulses, sw.reset_pulses, sw.row_pulses, sw.rows_written) == (1, 3, 4, 1)
    assert sw.latency_ns == 4 * r.write.pulse_ns


def test_each_row_phase_charges_its_cells_lines_and_inhibits_the_other_mapped_columns():
    """NeuroSim V2.1 (1T1R RRAM): SET drives the bit lines of the SET cells and raises the source lines of
    the other mapped columns; RESET drives the RESET cells' source lines and raises the others' bit lines.
    The same row as above, 4 mapped columns: SET phase 1 pulse, RESET phase 3 pulses."""
    for inhibit, bit, source in ((True, 1 * 1 + 3 * 3, 1 * 3 + 3 * 1), (False, 1, 3)):
        r = archs.replace(ISAAC, {"reram.crossbar.bits_per_cell": 4, "reram.weight_bits": 4,
                                  "reram.write.inhibit_unselected_lines": inhibit}).reram
        top = 7
        w = np.zeros((4, 6), np.float32)
        w[0, 0] = 1.0
        w[1, 1], w[2, 1] = 2 / top, 5 / top
        dw = np.zeros_like(w)
        dw[1, 1], dw[2, 1] = 1 / top, -3 / top
        sw = step_writes(w, dw, None, map_layer(linear("fc", 6, 4), r), r, 1 / top)
        assert (sw.bit_line_pulses, sw.source_line_pulses) == (bit, source)


def test_non_linear_potentiation_takes_more_pulses_near_the_top_of_the_range():
    r = archs.replace(ISAAC, {"reram.crossbar.bits_per_cell": 4, "reram.weight_bits": 4,
                              "reram.write.levels_ltp": 30, "reram.write.nonlinearity_ltp": 0.2}).reram
    lo, hi = (pulse_counts(np.array([a]), np.array([a + 1]), r)[0][0] for a in (0, 14))
    assert lo < 2 < hi  # linear: ceil(30 / 15) = 2 per level
    # and the pulses of a whole sweep 0 -> 15 are the full range, 30
    assert pulse_counts(np.array([0]), np.array([15]), r)[0][0] == 30


def test_write_verify_adds_a_read_back_per_pulse_of_each_row_phase():
    r = archs.replace(ISAAC, {"reram.write.write_verify": True, "reram.write.verify_ns": 20.0}).reram
    w, dw, scale = _one_weight(4, 5)
    sw = step_writes(w, dw, None, map_layer(linear("fc", 6, 4), r), r, scale)
    assert sw.latency_ns == 50.0 + 20.0
    assert sw.verified_cells == 1 * r.crossbar.cols


def test_writes_per_crossbar_sum_each_crossbars_cells():
    r = archs.replace(ISAAC, {"reram.crossbar.rows": 4, "reram.crossbar.cols": 2}).reram
    lm = map_layer(linear("fc", 6, 5), r)  # Kr = 6 over 2 crossbars of 4 rows, N = 5 over 3 of 2 columns
    cells = np.zeros((8, 5, 6), bool)
    cells[3, 4, 5] = True  # output 4 → third column block; input 5 → second row block
    cells[3, 0, 0] = cells[3, 1, 3] = True  # both in the first crossbar of slice 3
    heat = per_crossbar(cells, lm, r)
    assert heat.shape == (8, 1, 3, 2)
    assert heat[3, 0, 2, 1] == 1 and heat[3, 0, 0, 0] == 2 and heat.sum() == 3


def test_the_lifetime_of_a_cell_written_every_step_is_endurance_over_steps_per_epoch(tmp_path):
    spec = linear("fc", 6, 4)
    manifest = {"method": {"name": "dense"}, "batch_size": 1, "layers": [spec.to_dict()],
                "schedule": {"iters_per_epoch": 37}, "optimizer": {"name": "SGD"}}
    ctx = context(ONE_COPY, manifest)
    w = np.zeros((4, 6), np.float16)
    w[0, 0] = 1.0
    rows = []
    for i in range(4):  # the weight at (1, 1) toggles between codes 4 and 5 every step
        w[1, 1] = np.float16((4 + i % 2) / 32767)
        dw = np.zeros_like(w)
        dw[1, 1] = np.float16((1 - 2 * (i % 2)) / 32767)
        inp = LayerInput(i, 1, 1, True, {"w": 24, "dw": 24}, {"w": np.ones((4, 6), bool)}, {}, (w.copy(), dw))
        rows += layer_rows(ctx, spec, inp, 0, ["update"])
    last = rows[-1]
    assert [r["reram_cell_writes"] for r in rows] == [1, 1, 1, 1]
    assert [r["reram_write_pulses"] for r in rows] == [1, 1, 1, 1]  # one level each way: one pulse
    assert last["reram_max_cell_writes"] == 4 and last["reram_max_cell_writes_per_epoch"] == 37
    assert last["reram_max_cell_pulses_per_epoch"] == 37
    assert last["reram_lifetime_epochs"] == pytest.approx(R.write.endurance_cycles / 37)


def _steps(ctx, spec, weights):
    rows = []
    for i, (w, dw) in enumerate(weights):
        inp = LayerInput(i, 1, 1, True, {"w": w.size, "dw": w.size}, {"w": np.ones(w.shape, bool)}, {},
                         (w.astype(np.float16), dw.astype(np.float16)))
        rows += layer_rows(ctx, spec, inp, 0, ["update"])
    return rows


MANIFEST = {"method": {"name": "dense"}, "batch_size": 1, "schedule": {"iters_per_epoch": 10},
            "optimizer": {"name": "SGD"}}


def test_a_layer_whose_weights_do_not_change_writes_nothing_even_when_its_range_moves():
    """The range is fixed at the first update: a step that grows the largest weight does not
    re-encode the others (the old model rescaled every step and rewrote them, uncharged)."""
    spec = linear("fc", 6, 4)
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.5, 0.5, (4, 6)).astype(np.float16).astype(np.float32)
    zero = np.zeros_like(w)
    grow = zero.copy()
    grow[0, 0] = 0.4  # the largest weight moves; nothing else does
    ctx = context(ONE_COPY, {**MANIFEST, "layers": [spec.to_dict()]})
    rows = _steps(ctx, spec, [(w, zero), (w, grow), (w + grow, zero)])
    assert rows[0]["reram_cell_writes"] == 0 and rows[0]["energy_cell_write_pj"] == 0
    assert rows[2]["reram_cell_writes"] == 0 and rows[2]["reram_write_cycles"] == 0
    fixed = rows[1]["reram_cell_writes"]
    assert 0 < fixed <= 8  # one weight's cells at most
    rescaled = archs.replace(ONE_COPY, {"reram.rescale_every_step": True})
    ctx = context(rescaled, {**MANIFEST, "layers": [spec.to_dict()]})
    rows = _steps(ctx, spec, [(w, zero), (w, grow)])
    assert rows[1]["reram_cell_writes"] > fixed  # the re-encoding of the others is charged


def test_replicas_are_written_as_the_policy_field_says():
    spec = linear("fc", 6, 4)
    w, dw, _ = _one_weight(4, 5)
    rewritten = archs.replace(ISAAC, {"reram.replicas_in_training": "rewritten"})
    ctx = context(rewritten, {**MANIFEST, "batch_size": 8, "layers": [spec.to_dict()]})
    reps = ctx.maps["fc"].replicas
    assert reps > 1
    row = _steps(ctx, spec, [(w, dw)])[0]
    assert (row["reram_replicas"], row["reram_cell_writes"], row["reram_write_pulses"]) == (reps, reps, reps)
    assert row["energy_replica_copy_pj"] > 0  # the changed weight sent to every other copy
    ctx = context(ISAAC, {**MANIFEST, "batch_size": 8, "layers": [spec.to_dict()]})  # "none"
    assert ctx.maps["fc"].replicas == 1
    row = _steps(ctx, spec, [(w, dw)])[0]
    assert (row["reram_replicas"], row["reram_cell_writes"]) == (1, 1)
    inference = {k: v for k, v in MANIFEST.items() if k != "optimizer"}
    ctx = context(ISAAC, {**inference, "batch_size": 8, "layers": [spec.to_dict()]})
    assert ctx.maps["fc"].replicas == reps


def scalar_writes(weight: np.ndarray, delta: np.ndarray, mask: np.ndarray | None,
                  scale: float | None) -> tuple[dict, int, int, float]:
    """Quantize the recorded weights one element and one cell at a time (offset code, 16 bits over
    8 cells of 2 bits, one pulse per level) with the layer's fixed ``scale`` (None: this step's
    max|W| sets it): the written cells (a dict cell -> 1), their count, their pulses, the scale."""
    w0 = weight.astype(np.float32).ravel()
    w1 = (weight.astype(np.float32) + delta.astype(np.float32)).ravel()
    if mask is not None:
        keep = mask.ravel()
        w0 = np.where(keep, w0, np.float32(0))
        w1 = np.where(keep, w1, np.float32(0))
    if scale is None:
        scale = float(max(abs(float(v)) for v in w0)) / 32767
    written, count, pulses = {}, 0, 0
    for i in range(w0.size):
        codes = []
        for v in (float(w0[i]), float(w1[i])):
            q = 0 if scale == 0 else min(max(round(v / scale), -32767), 32767)
            codes.append(q + 32768)
        for s in range(8):
            a, b = (codes[0] >> (2 * s)) & 3, (codes[1] >> (2 * s)) & 3
            if a != b:
                written[(s, i)] = 1
                count += 1
                pulses += abs(a - b)
    return written, count, pulses, scale


@pytest.mark.parametrize("method", ["dense", "dst", "mlevel", "lenet5-dst"])
def test_cell_writes_of_real_traces_match_the_scalar_reference(trained, trained_lenet, method):
    tr = traces.load(trained_lenet if method == "lenet5-dst" else trained[method])
    its = list(tr.mask_iterations)[:2 if method == "lenet5-dst" else 3]
    df = simulate(tr, ONE_COPY, passes=["update"], iterations=its).to_frame()
    wear: dict[tuple, int] = {}
    scales: dict[str, float] = {}
    for index in its:
        with tr.iteration(index) as it:
            for li, spec in enumerate(tr.layers):
                w, dw = it.weights(li)
                written, count, pulses, scales[spec.name] = scalar_writes(w, dw, it.mask(li, "w"),
                                                                          scales.get(spec.name))
                for cell in written:
                    wear[(spec.name, cell)] = wear.get((spec.name, cell), 0) + 1
                row = df[(df["iteration"] == index) & (df["layer"] == spec.name)].iloc[0]
                assert (row["reram_cell_writes"], row["reram_write_pulses"]) == (count, pulses)
                most = max((v for (name, _), v in wear.items() if name == spec.name), default=0)
                assert row["reram_max_cell_writes"] == most
    assert df["reram_cell_writes"].sum() > 0


def test_dst_writes_fewer_cells_than_dense_training(trained):
    """DST holds pruned weights at zero: their cells are not rewritten by the update."""
    def writes(method: str) -> float:
        tr = traces.load(trained[method])
        last = list(tr.mask_iterations)[-1]
        df = simulate(tr, ONE_COPY, passes=["update"], iterations=[last]).to_frame()
        return float(df["reram_cell_writes"].sum())

    assert writes("dst") < 0.8 * writes("dense")
