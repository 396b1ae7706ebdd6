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
from hwsim.reram.writes import per_crossbar, step_writes
from hwsim.simulate import simulate
from traces.synth import linear

ISAAC = archs.PRESETS["reram-isaac"]
ONE_COPY = archs.replace(ISAAC, {"reram.replicate_layers": False})  # one copy per layer: plain counts
R = ISAAC.reram


def test_an_update_changing_one_cell_level_in_one_slice_counts_one_write_with_its_pulses():
    w = np.zeros((4, 6), np.float16)
    w[0, 0] = 1.0  # sets the scale: one code step = 1 / 32767
    step = 1.0 / 32767
    w[1, 1] = np.float16(4 * step)  # code 4: offset code 32772, lowest 2-bit cell at level 0
    dw = np.zeros_like(w)
    dw[1, 1] = np.float16(step)  # code 5: the lowest cell goes to level 1, every other cell stays
    sw = step_writes(w, dw, None, map_layer(linear("fc", 6, 4), R), R)
    assert sw.cell_writes == 1
    assert sw.pulses == math.ceil(1 * 60 / 3)  # a full range (3 level steps) is 60 pulses
    assert sw.rows_written == 1
    assert sw.latency_ns == 20 * 50.0  # one row, 20 pulses of 50 ns
    heat = per_crossbar(sw.changed, map_layer(linear("fc", 6, 4), R), R)
    assert heat.shape == (8, 1, 1, 1) and heat.sum() == 1 and heat[0, 0, 0, 0] == 1  # slice 0's crossbar


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
    assert last["reram_max_cell_writes"] == 4 and last["reram_max_cell_writes_per_epoch"] == 37
    assert last["reram_lifetime_epochs"] == pytest.approx(R.write.endurance_cycles / 37)


def scalar_writes(weight: np.ndarray, delta: np.ndarray, mask: np.ndarray | None) -> tuple[dict, int, int]:
    """Quantize the recorded weights one element and one cell at a time (offset code, 16 bits over
    8 cells of 2 bits): the written cells (a dict cell -> 1), their count and their pulses."""
    w0 = weight.astype(np.float32).ravel()
    w1 = (weight.astype(np.float32) + delta.astype(np.float32)).ravel()
    if mask is not None:
        keep = mask.ravel()
        w0 = np.where(keep, w0, np.float32(0))
        w1 = np.where(keep, w1, np.float32(0))
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
                pulses += math.ceil(abs(a - b) * 60 / 3)
    return written, count, pulses


@pytest.mark.parametrize("method", ["dense", "dst", "mlevel", "lenet5-dst"])
def test_cell_writes_of_real_traces_match_the_scalar_reference(trained, trained_lenet, method):
    tr = traces.load(trained_lenet if method == "lenet5-dst" else trained[method])
    its = list(tr.mask_iterations)[:2 if method == "lenet5-dst" else 3]
    df = simulate(tr, ONE_COPY, passes=["update"], iterations=its).to_frame()
    wear: dict[tuple, int] = {}
    for index in its:
        with tr.iteration(index) as it:
            for li, spec in enumerate(tr.layers):
                w, dw = it.weights(li)
                written, count, pulses = scalar_writes(w, dw, it.mask(li, "w"))
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
