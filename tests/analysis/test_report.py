"""The demo's HTML report: a figure with data for every trace × architecture, and numbers that
equal the results file."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from hwsim.cli import main
from hwsim.cli.demo import DEMO_ARCHS, DEMO_METHODS, TRANSFORMER_METHODS
from hwsim.pricing import ratios

from .plotly_html import decode, figures

DEMO_METHODS_NAMES = [m for m, _ in DEMO_METHODS] + [m for m, _ in TRANSFORMER_METHODS]
TRACES = len(DEMO_METHODS) + len(TRANSFORMER_METHODS)  # the conv net's and the transformer's
MODELS = 2

PER_KEY = ("layer_speedup", "energy_breakdown", "traffic", "over_iterations")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    return pd.read_parquet(out / "results.parquet"), html, figures(html)


def test_report_is_self_contained(demo):
    import re

    results, html, figs = demo
    pairs = len(set(zip(results["trace"], results["arch"], strict=True)))
    # each method vs dense training, the feature-only overview, a density figure per trace, 4 per trace × arch
    reram = [a for a in DEMO_ARCHS if a.startswith("reram")]
    # + per ReRAM machine
    # (the writes side by side, and per trace a heat map per layer and one per crossbar)
    assert len(figs) == 2 + TRACES + pairs * 4 + len(reram) * (1 + 2 * TRACES)
    assert re.findall(r"<script[^>]*\bsrc=", html) == [] and "<link" not in html  # nothing fetched
    assert html.count("Plotly.newPlot") == len(figs)
    assert len(html) > 3_000_000  # plotly.js itself is inlined


def test_every_figure_has_data_for_every_trace_and_architecture(demo):
    results, _, figs = demo
    by_kind = defaultdict(list)
    for f in figs:
        by_kind[f["layout"]["meta"]["figure"]].append(f)
    pairs = set(zip(results["trace"], results["arch"], strict=True))
    assert len(pairs) == TRACES * len(DEMO_ARCHS)  # traces × machines
    for kind in PER_KEY:
        have = {(f["layout"]["meta"]["trace"], f["layout"]["meta"]["arch"]) for f in by_kind[kind]}
        assert have == pairs, kind
        for f in by_kind[kind]:
            assert f["data"] and all(decode(t.get("y", [])).size > 0 for t in f["data"]), kind
    assert {f["layout"]["meta"]["trace"] for f in by_kind["density"]} == set(results["trace"])
    for f in by_kind["density"]:
        assert all(np.isfinite(decode(t["z"]).astype(float)).any() for t in f["data"])
    (overview,) = by_kind["run_overview"]
    assert len(decode(overview["data"][0]["y"])) == len(pairs)


def test_report_numbers_equal_the_results_file(demo):
    results, _, figs = demo
    for f in (f for f in figs if f["layout"]["meta"]["figure"] == "layer_speedup"):
        meta = f["layout"]["meta"]
        rows = results[(results["trace"] == meta["trace"]) & (results["arch"] == meta["arch"])]
        for t in f["data"]:
            if t.get("yaxis", "y") not in ("y", "y1"):
                continue  # the energy-saving panel is checked below
            g = rows[rows["pass"] == t["name"]].groupby("layer", sort=False)[["cycles", "dense_cycles"]].sum()
            # ratios: 0/0 is 1 (a vector op with no work in a pass neither gains nor loses)
            expected = ratios(g["dense_cycles"], g["cycles"]).reindex(list(decode(t["x"])))
            np.testing.assert_allclose(decode(t["y"]), expected.to_numpy(), rtol=1e-12)
        for t in f["data"]:
            if t.get("yaxis") == "y2":
                g = rows[rows["pass"] == t["name"]].groupby("layer", sort=False)[
                    ["energy_pj", "dense_energy_pj"]].sum()
                expected = ratios(g["dense_energy_pj"], g["energy_pj"]).reindex(list(decode(t["x"])))
                np.testing.assert_allclose(decode(t["y"]), expected.to_numpy(), rtol=1e-12)
    (overview,) = (f for f in figs if f["layout"]["meta"]["figure"] == "run_overview")
    sums = results.groupby(["trace", "arch"], sort=False)[["cycles", "dense_cycles"]].sum()
    labels = list(decode(overview["data"][0]["x"]))
    got = dict(zip(labels, decode(overview["data"][0]["y"]), strict=True))
    for (trace, arch), row in sums.iterrows():
        key = f"{trace.split('/')[-1]} on {arch}"
        # whole-run extrapolation scales cycles and dense cycles alike: the ratio is the replay's
        assert got[key] == pytest.approx(row["dense_cycles"] / row["cycles"], rel=1e-12)


def test_mapping_table_shows_each_edge_npu_pass_and_its_dram_bytes(demo):
    from analysis.frames import mappings

    results, html, _ = demo
    table = mappings(results)
    npu = results[results["mapping"].notna()]
    assert set(table["arch"]) == set(npu["arch"]) and "Mappings per layer and pass" in html
    assert len(table) == len(npu.groupby(["arch", "trace", "layer", "pass"]))
    row = table.iloc[0]
    src = npu[(npu["layer"] == row["layer"]) & (npu["pass"] == row["pass"]) & (npu["arch"] == row["arch"])]
    src = src[src["iteration"] == src["iteration"].max()].iloc[0]
    assert row["mapping"] == src["mapping"]
    expected = src["dram_a_read_bytes"] + src.get("dram_a_metadata_read_bytes", 0)
    assert row["dram a read (B)"] == pytest.approx(expected)


def test_hwsim_report_command(demo, tmp_path, capsys):
    results, _, _ = demo
    path = tmp_path / "r.csv"
    results.to_csv(path, index=False)
    assert main(["report", str(path), "--out", str(tmp_path / "r.html"), "--title", "T"]) == 0
    assert "report written to" in capsys.readouterr().out
    assert len(figures((tmp_path / "r.html").read_text())) > 10
    assert main(["report", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "x.html")]) == 2


def test_identical_inputs_give_a_byte_identical_report(demo, tmp_path):
    results, _, _ = demo
    from analysis.html import write_report

    a = write_report(results, tmp_path / "a.html", title="T").read_bytes()
    b = write_report(results, tmp_path / "b.html", title="T").read_bytes()
    assert a == b


def test_the_report_leads_with_each_method_against_dense_training(demo):
    results, html, figs = demo
    assert figs[0]["layout"]["meta"]["figure"] == "versus_dense_training"
    assert html.index("against dense training on the same machine") < html.index("Sparse features on or off")
    per_it = results.groupby(["model", "method", "arch", "iteration"])["cycles"].sum()
    per_it = per_it.groupby(["model", "method", "arch"]).mean()
    for t in figs[0]["data"]:
        if t.get("xaxis", "x") not in ("x", "x1"):
            continue  # the speedup panel: dense-trained cycles over the method's, per iteration
        for label, y in zip(decode(t["x"]), decode(t["y"]), strict=True):
            model, method = label.split(" ")  # two models: bars are "model method"
            expected = per_it[(model, "dense", t["name"])] / per_it[(model, method, t["name"])]
            assert y == pytest.approx(expected, rel=1e-12)


def test_results_are_self_contained(tmp_path, monkeypatch):
    """`hwsim report` from another directory, after the trace has moved away: the results carry the
    trace's length and the replayed iterations' densities."""
    import shutil

    from hwsim.simulate import simulate

    from ..traces.helpers import write_trace

    write_trace(tmp_path / "t", n_iter=6, mask_every=2)
    results = simulate(tmp_path / "t", "edge-npu").to_frame(meta=True)
    assert (results["trace"] == str((tmp_path / "t").resolve())).all()  # provenance, absolute
    assert (results["trace_iterations"] == 6).all() and set(results["method"]) == {"dense"}
    results.to_parquet(tmp_path / "r.parquet")
    shutil.move(tmp_path / "t", tmp_path / "moved")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["report", str(tmp_path / "r.parquet"), "--out", "r.html"]) == 0
    figs = figures((elsewhere / "r.html").read_text())
    (dens,) = (f for f in figs if f["layout"]["meta"]["figure"] == "density")
    (x_trace,) = (t for t in dens["data"] if t["name"] == "x")
    z = decode(x_trace["z"]).astype(float)
    assert z.shape == (2, 3)  # two layers × the three replayed iterations (0, 2, 4)
    conv_x = results[(results["layer"] == "conv")].groupby("iteration")["density_x"].first()
    np.testing.assert_allclose(z[0], conv_x.to_numpy())
    (overview,) = (f for f in figs if f["layout"]["meta"]["figure"] == "run_overview")
    assert overview["data"]


def test_reram_writes_are_shown_side_by_side_with_dense_training(demo):
    results, _, figs = demo
    (side,) = (f for f in figs if f["layout"]["meta"]["figure"] == "reram_writes_by_method")
    u = results[(results["pass"] == "update") & (results["arch"] == side["layout"]["meta"]["arch"])
                & results["reram_writes_recorded"].fillna(False).astype(bool)]
    bars = [t for t in side["data"] if t.get("xaxis", "x") in ("x", "x1")]  # cells written per step
    assert {t["name"] for t in bars} == set(DEMO_METHODS_NAMES) and "dense" in {t["name"] for t in bars}
    assert set(results["method"]) == set(DEMO_METHODS_NAMES)
    for t in bars:
        expected = u[u["method"] == t["name"]].groupby("layer", sort=False)["reram_cell_writes"].mean()
        np.testing.assert_allclose(decode(t["y"]), expected.reindex(list(decode(t["x"]))).to_numpy(),
                                   rtol=1e-12)
    heat = [f for f in figs if f["layout"]["meta"]["figure"] == "reram_write_heatmap"]
    assert len(heat) == TRACES
    for f in heat:
        z = decode(f["data"][0]["z"]).astype(float)
        assert np.isfinite(z).all() and ((z >= 0) & (z <= 1)).all() and z.max() > 0
    xbar = [f for f in figs if f["layout"]["meta"]["figure"] == "reram_crossbar_heatmap"]
    assert len(xbar) == TRACES
    for f in xbar:  # per layer and update, the crossbars' cells add up to the layer's writes per copy
        meta = f["layout"]["meta"]
        rows = results[(results["trace"] == meta["trace"]) & (results["arch"] == meta["arch"])]
        copies = rows[rows["pass"] == "forward"].groupby("layer")["reram_replicas"].first()
        upd = rows[(rows["pass"] == "update") & rows["reram_writes_recorded"].fillna(False).astype(bool)]
        z = pd.DataFrame(decode(f["data"][0]["z"]).astype(float), index=list(decode(f["data"][0]["y"])),
                         columns=list(decode(f["data"][0]["x"])))
        by_layer = z.groupby(z.index.str.rsplit(" #", n=1).str[0]).sum()
        for _, r in upd.iterrows():
            assert by_layer.loc[r["layer"], r["iteration"]] * copies[r["layer"]] == r["reram_cell_writes"]


def test_two_dense_trained_traces_of_one_model_are_averaged_not_multiplied(demo):
    from analysis.frames import versus_dense_training

    results, _, _ = demo
    twin = results[results["method"] == "dense"].assign(trace=lambda d: d["trace"] + "-seed2",
                                                        cycles=lambda d: d["cycles"] * 3)
    v = versus_dense_training(pd.concat([results, twin], ignore_index=True))
    one = versus_dense_training(results)
    assert len(v) == len(one) + MODELS * len(DEMO_ARCHS)  # the twins' own rows, nothing duplicated
    dst = v[v["method"] == "dst"].set_index("arch")
    dst1 = one[one["method"] == "dst"].set_index("arch")
    np.testing.assert_allclose(dst["dense_training_cycles"], 2 * dst1["dense_training_cycles"], rtol=1e-12)
