"""Ratios in reports: a speedup or an energy saving of 0 over 0 is 1 (nothing was spent either way),
never NaN; x over 0 stays undefined (NaN)."""

import math

import numpy as np

from hwsim import pricing
from hwsim.report import Report


def test_ratio_of_two_zeros_is_one_and_of_x_over_zero_is_the_given_value():
    assert pricing.ratio(0.0, 0.0, float("nan")) == 1.0
    assert pricing.ratio(0, 0, 7.0) == 1.0
    assert math.isnan(pricing.ratio(5.0, 0.0, float("nan")))
    assert pricing.ratio(6.0, 3.0, float("nan")) == 2.0


def test_a_recorded_ratio_evaluates_as_the_plain_one():
    tape = pricing.Tape()
    num, den = tape.leaf(("e", "num")), tape.leaf(("e", "den"))
    r = pricing.ratio(num, den, float("nan"))
    prices = {("e", "num"): np.array([0.0, 5.0, 6.0]), ("e", "den"): np.array([0.0, 0.0, 3.0])}
    got = tape.evaluate(prices)[r.index]
    pairs = zip(prices[("e", "num")], prices[("e", "den")], strict=True)
    want = [pricing.ratio(a, b, float("nan")) for a, b in pairs]
    np.testing.assert_array_equal(got, np.array(want))


def test_summary_of_a_pass_that_costs_nothing_either_way_saves_nothing():
    rows = [{"iteration": 0, "layer": "fc", "pass": "forward", "cycles": 10, "dense_cycles": 20,
             "energy_pj": 0.0, "dense_energy_pj": 0.0},
            {"iteration": 0, "layer": "fc", "pass": "update", "cycles": 0, "dense_cycles": 0,
             "energy_pj": 4.0, "dense_energy_pj": 4.0}]
    s = Report(rows).summary()
    assert s.loc["forward", "speedup"] == 2.0 and s.loc["forward", "energy_saving"] == 1.0
    assert s.loc["update", "speedup"] == 1.0 and s.loc["update", "energy_saving"] == 1.0
    assert not s[["speedup", "energy_saving"]].isna().any().any()
