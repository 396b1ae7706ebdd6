"""Re-pricing (analysis.sweep.reprice, hwsim.pricing): points that differ only in prices are timed once
and priced together, and their rows are the per-point replay's, bit for bit, on every family."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archs
from analysis.sweep import Sweep, execute, load, load_spec
from analysis.sweep.cache import worker_cache
from analysis.sweep.evaluate import cache_stats
from analysis.sweep.reprice import timing_key
from analysis.sweep.store import Store
from hwsim import pricing
from hwsim.simulate import simulate

from .sweep_helpers import kill_sweep_midway, small_trace

REPO = Path(__file__).resolve().parents[2]
PASSES = ["forward", "backward_data", "backward_weight", "update"]

# Per family: two timing axes (clock, an off-chip bandwidth: each changes cycles) and two price axes
# (energies per action, static power, ReRAM powers), two values each, with more prices derived from
# one of them; the metadata energy's -1 is its "same as data" sentinel.
FAMILY_AXES = {
    "edge-npu": ({"clock_hz": [5e8, 1e9], "memories.dram.bandwidth_bytes_per_s": [2e9, 8e9],
                  "compute.mac_energy_pj": [0.2, 0.45],
                  "memories.dram.metadata_read_energy_pj_per_byte": [-1.0, 7.0]},
                 {"memories.glb.read_energy_pj_per_byte": "compute.mac_energy_pj * 7.25",
                  "memories.glb.leakage_mw": "compute.mac_energy_pj * 3",
                  "links.noc.energy_pj_per_byte": "compute.mac_energy_pj / 3"}),
    "eyeriss-v2-pe": ({"clock_hz": [1e8, 2e8], "memories.backing_storage.bandwidth_bytes_per_s": [1e9, 4e9],
                       "compute.gated_mac_energy_pj": [0.01, 0.3],
                       "memories.iact_spad.read_energy_pj_per_byte": [0.3, 1.1]},
                      {"compute.leakage_mw": "compute.gated_mac_energy_pj * 11"}),
    "gpu-a100": ({"clock_hz": [1.0e9, 1.41e9], "memories.hbm.bandwidth_bytes_per_s": [1.0e12, 1.555e12],
                  "gpu.tensor_core.fma_energy_pj": [0.4, 1.3], "gpu.sm_leakage_mw": [0.0, 250.0]},
                 {"memories.hbm.read_energy_pj_per_byte": "gpu.tensor_core.fma_energy_pj * 40",
                  "vector_unit.op_energy_pj": "gpu.tensor_core.fma_energy_pj * 1.5"}),
    "reram-isaac": ({"clock_hz": [1e9, 1.2e9], "memories.hbm.bandwidth_bytes_per_s": [1e10, 5e10],
                     "reram.adc.power_mw": [2.0, 16.0], "reram.write.pulse_energy_pj": [1.0, 9.5]},
                    {"reram.crossbar.power_mw": "reram.adc.power_mw / 7",
                     "reram.tile_peripherals.sigmoid.power_mw": "reram.adc.power_mw / 3",
                     "memories.edram.leakage_mw": "reram.write.pulse_energy_pj * 2"}),
}
TIMING = ("clock_hz", "bandwidth_bytes_per_s")


@pytest.fixture(scope="module")
def conv_trace(tmp_path_factory):
    return small_trace(tmp_path_factory.mktemp("reprice") / "conv.trace")


@pytest.fixture(scope="module")
def dst_trace(tmp_path_factory):
    """A real DST trace (MLP on digits): recorded weights and updates (ReRAM cell writes), weight masks
    that change (re-encoding), counts-only iterations between the masked ones (expected mode)."""
    from traces.training import train

    out = tmp_path_factory.mktemp("reprice") / "dst"
    train(model="mlp", dataset="digits", method="dst", epochs=1, every=5, out=out,
          method_params={"alpha": 5e-3})
    return out


def _sweep(traces, base, axes, iterations, derive=None):
    return Sweep(traces, base, axes, derive=derive, options={"passes": PASSES, "iterations": iterations},
                 name=base)


def _rows_and_points(directory):
    points, rows = load(directory)
    return points.drop(columns=["seconds"]), rows


CASES = [(base, which) for base in FAMILY_AXES for which in ("conv", "dst")
         if (base, which) != ("eyeriss-v2-pe", "dst")]  # a single PE on the MLP: 15 s, nothing new


@pytest.mark.parametrize(("base", "which"), CASES)
def test_repriced_rows_equal_per_point_rows(base, which, conv_trace, dst_trace, tmp_path):
    axes, derive = FAMILY_AXES[base]
    # the conv trace: its one masked iteration; the DST trace: iteration 1 has counts only (expected-value /
    # counts-only rows), 0 and 5 have masks and recorded weights and updates
    trace, iterations = (conv_trace, None) if which == "conv" else (dst_trace, [0, 1, 5])
    sw = _sweep([trace], base, axes, iterations, derive)
    per_point = sw.run(tmp_path / "per_point", scheduler="inprocess", use_cache=False, reprice=False)
    worker_cache().clear()
    before = cache_stats()
    grouped = sw.run(tmp_path / "grouped", scheduler="inprocess")
    after = cache_stats()
    n_points = math.prod(len(v) for v in axes.values())
    assert per_point.computed == grouped.computed == n_points and grouped.failed == per_point.failed == 0
    a_points, a_rows = _rows_and_points(tmp_path / "per_point")
    b_points, b_rows = _rows_and_points(tmp_path / "grouped")
    pd.testing.assert_frame_equal(a_rows, b_rows, check_exact=True)
    pd.testing.assert_frame_equal(a_points, b_points, check_exact=True)
    # timing ran once per distinct (clock, bandwidth); every point was priced from those replays
    timings = math.prod(len(v) for k, v in axes.items() if k.endswith(TIMING))
    counted = ("replays", "repriced_points", "reprice_fallbacks")
    gained = {k: after.get(k, 0) - before.get(k, 0) for k in counted}
    assert gained == {"replays": timings, "repriced_points": n_points, "reprice_fallbacks": 0}
    # and the prices did move the energies: within a timing, no two points share their energy
    timing_axes = [k for k in axes if k.endswith(TIMING)]
    per_timing = a_points.groupby(timing_axes)["energy_pj"].nunique()
    assert (per_timing == n_points // timings).all()
    if which == "dst":
        assert set(a_rows["mode"]) >= {"exact"} and len(set(a_rows["mode"])) == 2  # and expected/counts-only
        if base == "reram-isaac":  # the cell writes were priced too
            assert a_rows.loc[a_rows["pass"] == "update", "energy_cell_write_pj"].gt(0).any()


def test_a_group_priced_from_another_point_gives_the_same_rows(conv_trace, tmp_path):
    """A rerun that adds points (or resumes) re-prices a group from whichever point it times first."""
    axes = {"memories.dram.bandwidth_bytes_per_s": [2e9, 8e9], "compute.mac_energy_pj": [0.2, 0.3, 0.4],
            "memories.dram.read_energy_pj_per_byte": [16.0, 64.0]}
    whole = _sweep([conv_trace], "edge-npu", axes, None)
    whole.run(tmp_path / "whole", scheduler="inprocess")
    part = _sweep([conv_trace], "edge-npu", {**axes, "compute.mac_energy_pj": [0.4]}, None)
    first = part.run(tmp_path / "grown", scheduler="inprocess")
    worker_cache().clear()  # the rest is timed again from another point of each group
    rest = whole.run(tmp_path / "grown", scheduler="inprocess")
    assert (first.computed, rest.already_done, rest.computed) == (4, 4, 8)
    a_points, a_rows = _rows_and_points(tmp_path / "whole")
    b_points, b_rows = _rows_and_points(tmp_path / "grown")
    pd.testing.assert_frame_equal(a_rows, b_rows, check_exact=True)
    # (a point's index is its place in the spec that computed it)
    pd.testing.assert_frame_equal(a_points.drop(columns="point_index"), b_points.drop(columns="point_index"),
                                  check_exact=True)


def test_an_energy_sweep_killed_mid_way_resumes_to_the_same_rows(conv_trace, tmp_path):
    axes = """      clock_hz: [5.0e+8, 7.5e+8, 1.0e+9]
      memories.dram.bandwidth_bytes_per_s: [2.0e+9, 4.0e+9, 8.0e+9]
      compute.mac_energy_pj: [0.2, 0.3, 0.4, 0.5]"""
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(f"""version: 1
name: energies
traces:
  - path: {conv_trace}
designs:
  - base: edge-npu
    axes:
{axes}
options:
  passes: [forward, backward_data, backward_weight]
""")
    whole = execute(load_spec(spec_path), tmp_path / "whole", scheduler="inprocess")
    out = tmp_path / "killed"
    kill_sweep_midway(spec_path, out, 2)
    written = len(Store(out).done_keys())
    assert 4 <= written < whole.total, "the sweep should have been killed part-way"
    resumed = execute(load_spec(spec_path), out, scheduler="inprocess")
    assert resumed.already_done == written and resumed.computed == whole.total - written
    a_points, a_rows = load(tmp_path / "whole")
    b_points, b_rows = load(out)
    assert list(a_points["point_key"]) == list(b_points["point_key"])
    pd.testing.assert_frame_equal(a_rows, b_rows, check_exact=True)


def test_a_group_that_cannot_be_recorded_is_replayed_per_point(conv_trace, tmp_path, monkeypatch):
    axes = {"compute.mac_energy_pj": [0.2, 0.3, 0.4]}
    sw = _sweep([conv_trace], "edge-npu", axes, None)
    sw.run(tmp_path / "plain", scheduler="inprocess", reprice=False)

    def refuse(*args, **kwargs):
        raise pricing.NotRepriceable("recording refused (test)")

    monkeypatch.setattr("analysis.sweep.evaluate.record", refuse)
    worker_cache().clear()
    before = cache_stats()
    sw.run(tmp_path / "fallback", scheduler="inprocess")
    after = cache_stats()
    assert after.get("reprice_fallbacks", 0) - before.get("reprice_fallbacks", 0) == 1
    # the refused recording, then each point
    assert after.get("replays", 0) - before.get("replays", 0) == 1 + 3
    pd.testing.assert_frame_equal(load(tmp_path / "plain")[1], load(tmp_path / "fallback")[1],
                                  check_exact=True)


def test_pricing_a_group_in_chunks_of_points_changes_nothing(conv_trace, tmp_path, monkeypatch):
    axes = {"compute.mac_energy_pj": [0.2, 0.3, 0.4], "memories.dram.write_energy_pj_per_byte": [20.0, 40.0]}
    sw = _sweep([conv_trace], "edge-npu", axes, None)
    sw.run(tmp_path / "per_point", scheduler="inprocess", reprice=False)
    monkeypatch.setattr("analysis.sweep.reprice.EVAL_VALUES", 1)  # one point per run of the tape
    worker_cache().clear()
    sw.run(tmp_path / "chunked", scheduler="inprocess")
    assert cache_stats().get("repriced_points") == 6
    pd.testing.assert_frame_equal(load(tmp_path / "per_point")[1], load(tmp_path / "chunked")[1],
                                  check_exact=True)


def test_the_cli_re_prices_unless_told_not_to(conv_trace, tmp_path, capsys):
    from hwsim.cli.main import main

    spec = tmp_path / "spec.yaml"
    sw = _sweep([conv_trace], "edge-npu", {"compute.mac_energy_pj": [0.2, 0.3, 0.4]}, None)
    spec.write_text(sw.to_yaml())
    counted = {}
    for name, extra in (("default", []), ("no_reprice", ["--no-reprice"])):
        worker_cache().clear()
        out = str(tmp_path / name)
        assert main(["sweep", str(spec), "--out", out, "--scheduler", "inprocess", *extra]) == 0
        counted[name] = (cache_stats().get("replays"), cache_stats().get("repriced_points", 0))
    assert counted == {"default": (1, 3), "no_reprice": (3, 0)}
    pd.testing.assert_frame_equal(load(tmp_path / "default")[1], load(tmp_path / "no_reprice")[1],
                                  check_exact=True)


def test_a_failing_group_records_the_per_point_error_for_each_point(conv_trace, tmp_path):
    axes = {"memories.glb.capacity_bytes": [16], "compute.mac_energy_pj": [0.2, 0.3]}
    sw = _sweep([conv_trace], "edge-npu", axes, None)
    sw.run(tmp_path / "per_point", scheduler="inprocess", reprice=False)
    sw.run(tmp_path / "grouped", scheduler="inprocess")
    a, b = load(tmp_path / "per_point")[0], load(tmp_path / "grouped")[0]
    assert list(a["status"]) == list(b["status"]) == ["failed", "failed"]
    assert list(a["error"]) == list(b["error"]) and a["error"].iloc[0].startswith("MappingError: ")


def test_the_timing_key_ignores_prices_only():
    # through the loader, as every sweep point is (a preset written in Python may hold 512 where the
    # loader makes 512.0: a different key, conservatively)
    base = archs.replace(archs.PRESETS["edge-npu"], {"compute.rows": 16})
    key = timing_key(base)
    assert timing_key(archs.replace(base, {"compute.mac_energy_pj": 9.0, "memories.dram.leakage_mw": 5.0,
                                           "links.noc.energy_pj_per_byte": 2.0})) == key
    for change in ({"clock_hz": 2e9}, {"memories.dram.bandwidth_bytes_per_s": 1e9}, {"compute.rows": 8},
                   {"memories.glb.capacity_bytes": "64 KiB"}):
        assert timing_key(archs.replace(base, change)) != key
    isaac = archs.PRESETS["reram-isaac"]
    reram = archs.replace(isaac, {"reram.tiles": isaac.reram.tiles})
    assert timing_key(archs.replace(reram, {"reram.adc.power_mw": 1.0})) == timing_key(reram)
    assert timing_key(archs.replace(reram, {"reram.adc.sample_rate_hz": 1e9})) != timing_key(reram)


def test_an_energy_in_a_decision_refuses_to_be_recorded(conv_trace):
    """The mapper's energy objective compares energies: under a recording it refuses, loudly."""
    arch = archs.PRESETS["edge-npu"]
    with pytest.raises(pricing.NotRepriceable), pricing.recording(arch):
        simulate(conv_trace, arch, passes=["forward"], mapping="search", workers=1)
    with pytest.raises(pricing.NotRepriceable), pricing.recording(arch):  # another machine's prices
        simulate(conv_trace, archs.PRESETS["gpu-a100"], passes=["forward"], workers=1)
    simulate(conv_trace, arch, passes=["forward"], workers=1)  # the recording is over


# -- the tape against Python floats --------------------------------------------------------------------

OPS = st.sampled_from(["add", "radd", "sub", "rsub", "mul", "rmul", "div", "neg", "ratio", "add2", "sub2",
                       "mul2", "ratio2", "ratio3"])
NUMBERS = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-10**15, 10**15),
                    st.floats(1e-300, 1e-290), st.just(0.0), st.just(0))


def _step(op, a, b, c):
    if op in ("add", "radd", "sub", "rsub", "mul", "rmul"):
        x, y = (a, c) if op[0] != "r" else (c, a)
        return x + y if "add" in op else x - y if "sub" in op else x * y
    if op == "div":
        return a / (c or 3)
    if op == "neg":
        return -a
    if op == "ratio":
        return pricing.ratio(c, a, 1.0)
    if op == "ratio2":
        return pricing.ratio(a, b, float("nan"))
    if op == "ratio3":
        return pricing.ratio(a, b)
    return a + b if op == "add2" else a - b if op == "sub2" else a * b


def _program(values, program):
    """The same Python code on floats (the reference) and on symbols (recorded): each step combines an
    earlier value with a constant or with another earlier value."""
    out = list(values)
    for op, c, i, j in program:
        out.append(_step(op, out[i % len(out)], out[j % len(out)], c))
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(OPS, NUMBERS, st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=40),
       st.lists(st.lists(st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.just(0.0)), min_size=3,
                         max_size=3), min_size=1, max_size=4))
def test_the_tape_replays_python_float_arithmetic_bit_for_bit(program, tables):
    """Any sequence of + - * / and ratios over prices and constants gives, per point, exactly what the
    same Python float arithmetic gives (a slow scalar reference, one point at a time)."""
    tape = pricing.Tape()
    keys = [("x", str(i)) for i in range(3)]
    with np.errstate(all="ignore"):
        recorded = _program([tape.leaf(k) for k in keys], program)
        evaluated = tape.evaluate({k: np.array([t[i] for t in tables], np.float64)
                                   for i, k in enumerate(keys)})
    for g, table in enumerate(tables):
        try:
            ref = _program([float(v) for v in table], program)
        except (ZeroDivisionError, OverflowError):
            continue  # the scalar replay itself fails: nothing to compare
        for sym, want in zip(recorded, ref, strict=True):
            got = np.float64(evaluated[sym.index][g])
            assert got.tobytes() == np.float64(want).tobytes() or (np.isnan(got) and math.isnan(want))


def test_a_recording_is_this_threads_only(conv_trace):
    """A worker with several threads: one records, the others replay with plain prices."""
    from concurrent.futures import ThreadPoolExecutor

    arch = archs.PRESETS["edge-npu"]
    plain = simulate(conv_trace, arch, passes=["forward"], workers=1).to_frame()
    with pricing.recording(arch), ThreadPoolExecutor(1) as pool:
        assert isinstance(pricing.price(arch, "compute", "mac"), pricing.Sym)
        other = pool.submit(lambda: simulate(conv_trace, arch, passes=["forward"], workers=1).to_frame())
        pd.testing.assert_frame_equal(plain, other.result(), check_exact=True)
        assert pool.submit(pricing.price, arch, "compute", "mac").result() == arch.compute.mac_energy_pj


def test_a_symbol_in_a_comparison_or_a_conversion_refuses():
    s = pricing.Tape().leaf(("compute", "mac"))
    for use in (lambda: s > 0, lambda: bool(s), lambda: float(s), lambda: s == 1.0, lambda: round(s),
                lambda: s * np.float32(2.0), lambda: s * np.ones(2)):
        with pytest.raises(pricing.NotRepriceable):
            use()
    assert isinstance(np.float64(2.0) * s, pricing.Sym) and isinstance(np.int64(3) + s, pricing.Sym)


def test_the_grid_groups_by_timing_key_in_tasks():
    from analysis.sweep.run import tasks

    base = archs.PRESETS["edge-npu"]
    pts = []
    for i, (bw, e) in enumerate(itertools.product([2e9, 8e9], [0.1, 0.2, 0.3])):
        arch = archs.replace(base, {"memories.dram.bandwidth_bytes_per_s": bw, "compute.mac_energy_pj": e})
        from analysis.sweep.points import Point

        pts.append(Point(f"k{i}", 0, 0, i, (), arch, None, timing_key(arch)))
    pts = pts[::2] + pts[1::2]  # interleaved
    got = tasks(pts, n_workers=2)
    assert len(got) == 2 and all(len({p.timing for p in t}) == 1 for t in got)
