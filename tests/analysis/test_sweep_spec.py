"""The sweep spec: strict reading with paths, sampling, constraints, the CLI's one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.sweep import Sweep, load_spec, spec_from_dict
from analysis.sweep.expr import Expression, ExpressionError
from analysis.sweep.points import expand, sample
from archs import ConfigError
from hwsim.cli.main import main

from .sweep_helpers import small_trace, spec_text


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return small_trace(tmp_path_factory.mktemp("sweep") / "t.trace")


def problems_of(text, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_spec(p)
    return exc.value.problems


def test_the_grid_has_every_combination_and_constraints_remove_the_rest(trace, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(spec_text(trace))
    spec = load_spec(p)
    points, rejected = expand(spec.designs, ["h"], spec.options)
    # 3 × 2 × 2 NPU combinations, of which rows × cols > 256 (32 × 16, two GLB sizes) are rejected; 2 GPU
    assert rejected == 2
    assert len(points) == 3 * 2 * 2 - 2 + 2
    npu = [dict(p.values) for p in points if p.design == 0]
    assert all(v["compute.rows"] * v["compute.cols"] <= 256 for v in npu)
    assert {p.arch.memory("glb").capacity_bytes for p in points if p.design == 0} == {65536, 131072}


@pytest.mark.parametrize(("axes", "expect"), [
    ("      compute.rwos: [8]", "designs[0].axes.compute.rwos: no field 'compute.rwos' in edge-npu; "
                                "did you mean 'compute.rows'?"),
    ("      compute.rows: []", "designs[0].axes.compute.rows: empty axis; give at least one value"),
    ("      compute.rows: [8, -1]", "designs[0].axes.compute.rows[1]: must be > 0, got -1"),
    ("      compute.dataflow: [ws, xs]", "designs[0].axes.compute.dataflow[1]: must be one of"),
    ("      memories.glbb.capacity_bytes: [1]", "did you mean 'memories.glb.capacity_bytes'?"),
    ("      compute.rows: {min: 4, max: 64}", "designs[0].axes.compute.rows (add integer: true for this "
                                              "integer field): expected an integer"),
    ("      compute.rows: {min: 4, max: 2}", "designs[0].axes.compute.rows: min 4 is above max 2"),
])
def test_axis_errors_name_the_path(trace, tmp_path, axes, expect):
    found = problems_of(spec_text(trace, axes=axes), tmp_path)
    assert any(p.startswith(expect) or expect in p for p in found), found


@pytest.mark.parametrize(("constraint", "expect"), [
    ("compute.rows * compute.colz <= 4096", "unknown name 'compute.colz'; did you mean 'compute.cols'?"),
    ("__import__('os').system('true')", "is not allowed"),
    ("compute.rows.bit_length() > 1", "is not allowed"),
    ("compute.rows <=", "cannot parse"),
    ("compute.dataflow < 3", "TypeError"),
])
def test_bad_constraints_are_refused_when_the_spec_is_read(trace, tmp_path, constraint, expect):
    text = spec_text(trace).replace('["compute.rows * compute.cols <= 256"]', f'["{constraint}"]')
    found = problems_of(text, tmp_path)
    assert any(p.startswith("designs[0].constraints[0]: ") and expect in p for p in found), found


def test_unknown_keys_presets_and_methods_get_a_did_you_mean(trace, tmp_path):
    text = spec_text(trace).replace("base: gpu-a100", "base: gpu-a10").replace("options:", "optoins:")
    text = text.replace("  - base: edge-npu\n", "  - base: edge-npu\n    sampling: {method: lhz}\n")
    found = problems_of(text, tmp_path)
    assert any(p.startswith("optoins: unknown key; did you mean 'options'?") for p in found), found
    assert any(p.startswith("designs[1].base: no preset or file named 'gpu-a10'") for p in found), found
    assert any(p.startswith("designs[0].sampling.method:") and "'lhs'" in p for p in found), found


def test_expressions_evaluate_like_python_without_eval():
    values = {"compute.rows": 16, "compute.cols": 8, "chip_area_mm2": 2.5}
    e = Expression("compute.rows * compute.cols <= 128 and not chip_area_mm2 > 3 or max(1, 2) == 3")
    assert e(values) is True
    assert Expression("-compute.rows // 3 % 5 + abs(-2) ** 2")(values) == (-16 // 3) % 5 + 4
    with pytest.raises(ExpressionError, match="exponent"):
        Expression("2 ** 1000")(values)
    for bad in ("lambda: 1", "[1][0]", "open('x')", "compute.rows if 1 else 2", "True"):
        with pytest.raises(ExpressionError):
            Expression(bad)


def _design(sampling, axes):
    spec = spec_from_dict({"version": 1, "traces": [{"synthetic": {"layers": ["fc, linear, 8, 4"]}}],
                           "designs": [{"base": "edge-npu", "axes": axes, "sampling": sampling}]})
    return spec.designs[0]


def test_lhs_uses_every_stratum_of_every_axis_once():
    d = _design({"method": "lhs", "samples": 20, "seed": 3},
                {"clock_hz": {"min": 1e8, "max": 1e9},
                 "memories.glb.capacity_bytes": {"min": 1024, "max": 2**20, "log": True}})
    pts = sample(d)
    assert len(pts) == 20
    clock = np.array([p["clock_hz"] for p in pts])
    cap = np.log(np.array([p["memories.glb.capacity_bytes"] for p in pts]))
    assert sorted(((clock - 1e8) / 9e8 * 20).astype(int)) == list(range(20))
    assert sorted(((cap - np.log(1024)) / (np.log(2**20) - np.log(1024)) * 20).astype(int)) == list(range(20))
    assert sample(d) == pts  # seeded
    other = _design({"method": "lhs", "samples": 20, "seed": 4}, {"clock_hz": {"min": 1e8, "max": 1e9}})
    assert sample(other) != [{"clock_hz": p["clock_hz"]} for p in pts]


def test_random_sampling_is_seeded_and_grid_ranges_take_steps():
    d = _design({"method": "random", "samples": 5, "seed": 1}, {"compute.rows": [4, 8, 16, 32]})
    assert sample(d) == sample(d)
    assert all(p["compute.rows"] in (4, 8, 16, 32) for p in sample(d))
    g = _design({}, {"compute.rows": {"min": 4, "max": 64, "steps": 5, "log": True, "integer": True}})
    assert [p["compute.rows"] for p in sample(g)] == [4, 8, 16, 32, 64]


def test_sweep_from_python_is_the_same_spec(trace, tmp_path):
    sw = Sweep([trace], "edge-npu", {"compute.rows": [8, 16]}, constraints=["compute.rows <= 8"])
    assert len(sw) == 2
    again = spec_from_dict(__import__("yaml").safe_load(sw.to_yaml()))
    assert again.designs == sw.spec.designs
    with pytest.raises(ConfigError, match=r"designs\[0\]\.axes\.compute\.rows: empty axis"):
        Sweep([trace], "edge-npu", {"compute.rows": []})


def test_the_cli_prints_one_line_and_exits_2(trace, tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(trace, axes="      compute.rwos: [8]"))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--scheduler", "inprocess"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("hwsim: error: ") and "designs[0].axes.compute.rwos" in err
    spec.write_text(spec_text(trace).replace("base: edge-npu", "base: no-such-chip"))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--scheduler", "inprocess"]) == 2
    assert "designs[0].base: no preset or file named 'no-such-chip'" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--scheduler", "udp://x"]) == 2


def test_iterations_a_trace_does_not_have_are_refused_before_running(trace, tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(trace, extra="  iterations: [0, 5]\n"))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--scheduler", "inprocess"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "options.iterations: iteration 5 is not in trace 't.trace' (its iterations: 0..0" in err
    assert not list((tmp_path / "o" / "results" / "points").glob("part-*"))
