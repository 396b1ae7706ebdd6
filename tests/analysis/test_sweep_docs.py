"""docs/sweeps.md's worked example is docs/sweep-example.yaml, and it runs as the text says."""

from __future__ import annotations

import re
from pathlib import Path

from analysis.sweep import execute, load, load_spec

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_worked_example_in_the_docs_is_the_example_file():
    text = (DOCS / "sweeps.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    assert block == (DOCS / "sweep-example.yaml").read_text()


def test_the_worked_example_runs_with_the_counts_the_docs_give(tmp_path):
    spec = load_spec(DOCS / "sweep-example.yaml")
    counts = execute(spec, tmp_path / "out", scheduler="inprocess")
    assert (counts.total, counts.rejected, counts.failed) == (28, 12, 0)
    points, rows = load(tmp_path / "out")
    npu = points[points["design"] == "edge-npu"]
    assert len(npu) == 24 and (points["design"] == "gpu-a100").sum() == 4
    assert (npu["compute.rows"] * npu["compute.cols"] <= 512).all() and (npu["chip_area_mm2"] <= 5).all()
    # derive: the register files, the array's and the GLB's area follow the swept fields
    pes = npu["compute.rows"] * npu["compute.cols"]
    expect = pes * 191.82e-6 + pes * 512 * 11632.88556 / 384 * 1e-6 \
        + npu["memories.glb.capacity_bytes"] / 131072 * 0.21736336892
    assert ((npu["chip_area_mm2"] - expect).abs() < 1e-9).all()
    assert rows["point_key"].nunique() == 28
