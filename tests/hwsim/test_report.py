"""Ratios in reports are defined everywhere (docs/simulator.md, "Ratios"): a speedup or an energy
saving of 0 over 0 is 1 (nothing was spent either way); x over 0 is x over one unit of the
denominator (one cycle, one pJ: the run spent less than that), a finite lower bound, never NaN."""

import numpy as np
import pandas as pd

from analysis import frames
from hwsim import pricing
from hwsim.report import Report


def test_ratio_of_two_zeros_is_one_and_of_x_over_zero_is_x_over_one_unit():
    assert pricing.ratio(0.0, 0.0) == 1.0
    assert pricing.ratio(0, 0, 7.0) == 1.0
    assert pricing.ratio(5.0, 0.0) == 5.0
    assert pricing.ratio(5.0, 0.0, 1.0) == 1.0  # a scale factor asks for its own value
    assert pricing.ratio(6.0, 3.0) == 2.0


def test_ratios_element_wise_match_the_scalar_ratio():
    num, den = np.array([0.0, 5.0, 6.0, 0.0]), np.array([0.0, 0.0, 3.0, 2.0])
    want = [pricing.ratio(a, b) for a, b in zip(num, den, strict=True)]
    np.testing.assert_array_equal(pricing.ratios(num, den), want)
    s = pricing.ratios(pd.Series(num, index=list("abcd")), pd.Series(den, index=list("abcd")))
    assert list(s.index) == list("abcd") and s.tolist() == [1.0, 5.0, 2.0, 0.0]


def test_a_recorded_ratio_evaluates_as_the_plain_one():
    tape = pricing.Tape()
    num, den = tape.leaf(("e", "num")), tape.leaf(("e", "den"))
    r, r_scale = pricing.ratio(num, den), pricing.ratio(num, den, 1.0)
    prices = {("e", "num"): np.array([0.0, 5.0, 6.0]), ("e", "den"): np.array([0.0, 0.0, 3.0])}
    got = tape.evaluate(prices)
    pairs = list(zip(prices[("e", "num")], prices[("e", "den")], strict=True))
    np.testing.assert_array_equal(got[r.index], [pricing.ratio(a, b) for a, b in pairs])
    np.testing.assert_array_equal(got[r_scale.index], [pricing.ratio(a, b, 1.0) for a, b in pairs])


ROWS = [{"iteration": 0, "layer": "fc", "pass": "forward", "cycles": 10, "dense_cycles": 20,
         "energy_pj": 0.0, "dense_energy_pj": 0.0},
        {"iteration": 0, "layer": "fc", "pass": "update", "cycles": 0, "dense_cycles": 0,
         "energy_pj": 4.0, "dense_energy_pj": 4.0},
        {"iteration": 0, "layer": "fc", "pass": "backward_data", "cycles": 0, "dense_cycles": 30,
         "energy_pj": 0.0, "dense_energy_pj": 8.0}]


def test_summary_of_a_pass_that_costs_nothing_saves_nothing_or_everything():
    s = Report(ROWS).summary()
    assert s.loc["forward", "speedup"] == 2.0 and s.loc["forward", "energy_saving"] == 1.0
    assert s.loc["update", "speedup"] == 1.0 and s.loc["update", "energy_saving"] == 1.0
    # nothing spent by the sparse run, something by the dense one: dense over one unit
    assert s.loc["backward_data", "speedup"] == 30.0 and s.loc["backward_data", "energy_saving"] == 8.0
    assert not s[["speedup", "energy_saving"]].isna().any().any()


def test_analysis_ratios_are_never_nan():
    df = pd.DataFrame(ROWS).assign(trace="t", arch="a", trace_iterations=1)
    # an iteration and a whole run where the sparse machine spent nothing at all
    zero = df.assign(iteration=1, cycles=0, energy_pj=0.0)
    both = pd.concat([df, zero], ignore_index=True)
    for table in (frames.per_layer(both), frames.per_iteration(both), frames.run_totals(zero)):
        ratio_cols = [c for c in table.columns if "speedup" in c or "saving" in c]
        assert ratio_cols and not table[ratio_cols].isna().any().any(), table
    it = frames.per_iteration(both).set_index("iteration")
    assert it.loc[1, "speedup"] == 50.0 and it.loc[1, "energy_saving"] == 12.0


def test_the_update_pass_counts_no_gemm_work_instead_of_leaving_it_empty():
    rows = [{"iteration": 0, "layer": "fc", "pass": "forward", "cycles": 10, "dense_cycles": 20, "tiles": 4,
             "actual_macs": 64, "utilization": 0.5, "gpu_pad_cycles": 3, "reram_adc_conversions": 9},
            {"iteration": 0, "layer": "fc", "pass": "update", "cycles": 5, "dense_cycles": 5,
             "reram_cell_writes": 7}]
    df = Report(rows).to_frame()
    update = df[df["pass"] == "update"].iloc[0]
    for c in ("tiles", "actual_macs", "utilization", "gpu_pad_cycles", "reram_adc_conversions"):
        assert update[c] == 0, c
    forward = df[df["pass"] == "forward"].iloc[0]
    assert np.isnan(forward["reram_cell_writes"])  # writes do not apply to a GEMM pass: left empty


def test_gpu_paths_show_a_dash_where_no_operand_is_sparse():
    rows = pd.DataFrame({"trace": ["t"] * 2, "arch": ["gpu-a100"] * 2, "layer": ["fc", "conv"],
                         "pass": ["forward"] * 2, "iteration": [0, 0], "gpu_sparse_path": ["dense", "2:4"],
                         "gpu_dense_reason": ["no sparse operand or kernel", None],
                         "gpu_crossover_density": [np.nan, 0.61234], "gpu_sparse_density": [np.nan, 0.5]})
    out = frames.gpu_paths(rows).set_index("layer")
    assert out.loc["fc", "crossover density"] == "—" and out.loc["fc", "sparse operand density"] == "—"
    assert out.loc["conv", "crossover density"] == 0.6123 and out.loc["conv", "sparse operand density"] == 0.5
    assert not out.isna().any().any()
