"""`hwsim replay TRACE --arch reram-*` end to end, for every built-in method's trace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim.cli.main import main

from .conftest import METHODS


@pytest.mark.parametrize("arch", ["reram-isaac", "reram-neurosim"])
@pytest.mark.parametrize("method", METHODS)
def test_replay_from_the_cli(trained, method, arch, tmp_path, capsys):
    out = tmp_path / "r.csv"
    args = ["replay", str(trained[method]), "--arch", arch, "--iterations", "0,5", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"on {arch}, 2 iteration(s)" in text and "None" not in text  # no dataflow on a crossbar machine
    assert "cells written/step" in text and "lifetime (epochs)" in text and "slowest stage" in text
    df = pd.read_csv(out)
    assert set(df["pass"]) == {"forward", "backward_data", "backward_weight", "update"}
    assert (df["algorithmic_macs"].fillna(0) == df["actual_macs"].fillna(0) + df["skipped_macs"].fillna(0)
            + df["gated_macs"].fillna(0)).all()
    upd = df[df["pass"] == "update"]
    assert (upd["reram_cell_writes"] > 0).all() and (upd["energy_cell_write_pj"] > 0).all()
    fwd = df[(df["pass"] == "forward") & df["vector_op_kind"].isna()]  # the layers' GEMMs, on crossbars
    assert not fwd.empty and (fwd["energy_adc_pj"] > 0).all()
    assert (fwd["dense_energy_pj"] >= fwd["energy_pj"]).all()


def test_reports_are_identical_for_any_number_of_workers(trained):
    from hwsim.simulate import simulate

    one = simulate(trained["dst"], "reram-isaac", workers=1).to_frame()
    two = simulate(trained["dst"], "reram-isaac", workers=2).to_frame()
    pd.testing.assert_frame_equal(one, two)


def test_digital_passes_keep_their_macs_out_of_the_non_gemm_ops(trained):
    """Backward-weight runs on the digital unit: its MACs are actual MACs, and `vector_ops` holds only
    the non-GEMM work, as on the other families (the --dense-trained headline compares them)."""
    import traces
    from hwsim.simulate import simulate
    from hwsim.vector import gemm_pass_work

    tr = traces.load(trained["dense"])
    df = simulate(tr, "reram-isaac", passes=["backward_weight"], iterations=[0]).to_frame()
    assert (df["reram_engine"] == "digital").all()
    for _, row in df.iterrows():
        spec = tr.layers[tr.layer_index(row["layer"])]
        assert row["actual_macs"] == spec.gemm("backward_weight", row["simulated_batch"]).macs
        expected = gemm_pass_work(spec, "backward_weight", row["simulated_batch"], "dense", {}).ops
        assert row["vector_ops"] == expected


def test_update_rows_leak_during_the_write_latency_too(trained):
    """Energy = counts × table + leakage × time: the update row's time includes its cell writes, so
    its leakage does too."""
    import archs
    import traces
    from hwsim.simulate import simulate

    arch = archs.replace(archs.PRESETS["reram-isaac"], {"vector_unit.leakage_mw": 100.0})
    tr = traces.load(trained["dst"])
    df = simulate(tr, arch, passes=["update"], iterations=[0]).to_frame()
    rows = df[df["reram_writes_recorded"].astype(bool)]
    assert not rows.empty and (rows["reram_write_cycles"] > 0).all()
    power_mw = sum(archs.leakage_mw(arch).values())
    expected = power_mw * 1e-3 * rows["cycles"] / arch.clock_hz * 1e12
    np.testing.assert_allclose(rows["energy_leakage_pj"], expected, rtol=1e-6)  # float sums of pJ
    parts = rows[[c for c in rows.columns
                  if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]].sum(axis=1)
    np.testing.assert_allclose(rows["energy_pj"], parts, rtol=1e-9)


def test_a_counts_only_iteration_replayed_alone_prints_its_expected_writes(trained, capsys):
    """Issue 25: `--iterations 3` (no masks, no weights) used to print "the trace records no
    weights" and drop every write; now it takes them from the nearest recorded update."""
    assert main(["replay", str(trained["dense"]), "--arch", "reram-isaac", "--iterations", "3"]) == 0
    text = capsys.readouterr().out
    assert "cells written/step" in text and "no recorded update" in text  # lifetime: no wear replayed
    assert "records no weights" not in text and "no recorded update to take them from" not in text
