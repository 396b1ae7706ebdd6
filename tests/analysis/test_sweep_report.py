"""The sweep report and figures: self-contained, the Pareto points are the non-dominated ones,
per-point summaries equal their rows."""

from __future__ import annotations

import numpy as np
import pytest

import archs
from analysis import pareto
from analysis.sweep import execute, load, load_spec
from analysis.sweep.report import write_sweep_report
from archs.units import format_quantity
from hwsim.cli.main import main

from .plotly_html import decode, figures
from .sweep_helpers import small_trace, spec_text


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    trace = small_trace(d / "t.trace")
    (d / "spec.yaml").write_text(spec_text(trace))
    execute(load_spec(d / "spec.yaml"), d / "out", scheduler="inprocess")
    return d / "out"


def test_point_summaries_equal_their_rows(sweep):
    points, rows = load(sweep)
    assert len(points) == 12 and (points["status"] == "ok").all()
    for _, p in points.iterrows():
        r = rows[rows["point_key"] == p["point_key"]]
        n_it = r["iteration"].nunique()
        assert p["cycles"] == r["cycles"].sum() / n_it
        assert p["energy_pj"] == r["energy_pj"].sum() / n_it
        assert p["speedup"] == r["dense_cycles"].sum() / r["cycles"].sum()
        assert p["latency_s"] == p["cycles"] / r["clock_hz"].iloc[0]
    npu = points[points["design"] == "edge-npu"]
    assert set(zip(npu["compute.rows"], npu["compute.cols"], strict=True)) == \
        {(8, 8), (8, 16), (16, 8), (16, 16), (32, 8)}
    assert (points["chip_area_mm2"] == archs.chip_area_mm2(archs.load("edge-npu"))).loc[npu.index].all()


def test_the_report_is_self_contained_and_its_front_is_non_dominated(sweep, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(sweep), "--out", str(out)]) == 0
    text = out.read_text()
    assert "<script src=" not in text and text.count("plotly.js v") == 1  # plotly inlined once, no network
    figs = {f["layout"]["meta"]["figure"]: f for f in figures(text)}
    assert {"sweep_pareto", "sweep_parallel_coordinates", "sweep_heatmap", "sweep_methods"} <= set(figs)
    points, _ = load(sweep)
    front = pareto(points, minimize=["latency_s", "energy_j"]).sort_values("latency_s")
    line = figs["sweep_pareto"]["data"][1]
    assert np.array_equal(decode(line["x"]), front["latency_s"].to_numpy())
    assert np.array_equal(decode(line["y"]), front["energy_j"].to_numpy())
    assert write_sweep_report(sweep, tmp_path / "again.html").read_bytes() == out.read_bytes()


def test_heatmap_cells_are_means_over_the_other_axes(sweep):
    from analysis.sweep import figures as sf

    points, _ = load(sweep)
    npu = points[points["design"] == "edge-npu"]
    fig = sf.heatmap(npu, "compute.rows", "compute.cols")
    z = np.asarray(fig.data[0].z, dtype=float)
    expect = npu.groupby(["compute.cols", "compute.rows"])["speedup"].mean()
    for (c, r), v in expect.items():
        i = list(fig.data[0].y).index(format_quantity("compute.cols", c))
        j = list(fig.data[0].x).index(format_quantity("compute.rows", r))
        assert z[i, j] == v
    assert np.isnan(z).sum() == 1  # 32 × 16 was rejected by the constraint
    best = sf.best_per_method(points)
    assert len(best) == 1 and best["energy_j"].iloc[0] == points["energy_j"].min()


def test_report_of_a_directory_that_is_not_a_sweep_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a sweep directory" in err


def test_the_report_is_titled_by_the_spec_name_and_labels_axes_in_units(sweep, tmp_path):
    """Issue 22: the title was the folder's name (`Sweep out`) and a heat map's labels printed
    `2000000000000.0` for 2 TB/s."""
    import pandas as pd

    from analysis.sweep import figures as sf

    text = write_sweep_report(sweep, tmp_path / "r.html").read_text()
    assert "<h1>Sweep test</h1>" in text  # spec_text's `name: test`, not the folder `out`
    points, _ = load(sweep)
    npu = points[points["design"] == "edge-npu"]
    fig = sf.heatmap(npu, "compute.rows", "memories.glb.capacity_bytes")
    assert list(fig.data[0].y) == ["64.0 KiB", "128 KiB"] and list(fig.data[0].x) == ["8", "16", "32"]
    bw = "memories.hbm.bandwidth_bytes_per_s"
    pts = pd.DataFrame({"status": "ok", "gpu.sms": [54, 54, 108, 108], bw: [1.555e12, 2e12] * 2,
                        "speedup": [1.0, 1.1, 1.2, 1.3]})
    fig = sf.heatmap(pts, "gpu.sms", bw)
    assert list(fig.data[0].y) == ["1.555 TB/s", "2 TB/s"] and list(fig.data[0].x) == ["54", "108"]
