"""Dense agreement with SCALE-Sim v3 in its stall-free (CALC) mode, through simulate().

The reference numbers come from running scalesim 3.0.0 itself (scripts/scalesim_reference.py,
`make scalesim-reference`) on the topologies and configs under tests/data/scalesim/. Here the same
topologies become synthetic dense traces, the same .cfg files are imported with
archs.from_scalesim_cfg, and every layer's Total Cycles and SRAM read counts must match exactly.
"""

from __future__ import annotations

import pytest

import archs
from hwsim.simulate import simulate

from .scalesim_data import DATA, reference, topology_traces


@pytest.fixture(scope="module")
def traces_by_topology(tmp_path_factory):
    return topology_traces(tmp_path_factory)


def test_reference_covers_the_required_cases():
    rows = reference()
    assert {r["dataflow"] for r in rows} == {"ws", "os", "is"}
    assert len({(r["rows"], r["cols"]) for r in rows}) == 2
    layers = {r["layer"] for r in rows}
    assert len(layers) >= 10 and {r["kind"] for r in rows} == {"conv", "gemm"}
    assert all(r["bandwidth_mode"] == "CALC" for r in rows)


@pytest.mark.parametrize("config", sorted(p.stem for p in DATA.glob("*.cfg")))
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_dense_cycles_and_sram_reads_match_scalesim(traces_by_topology, config, dataflow):
    arch = archs.from_scalesim_cfg(DATA / f"{config}.cfg")
    expected = {r["layer"]: r for r in reference() if r["config"] == config and r["dataflow"] == dataflow}
    got = {}
    for path in traces_by_topology.values():
        df = simulate(path, arch, dataflow=dataflow, passes=["forward"]).to_frame()
        got.update({row.layer: row for row in df.itertuples()})
    assert set(got) == set(expected)
    for layer, ref in expected.items():
        row = got[layer]
        assert row.gemm_cycles == int(ref["total_cycles"]), layer
        assert row.cycles == int(ref["total_cycles"]), layer  # no vector unit of its own in the import
        assert row.ifmap_sram_a_read_bytes == int(ref["sram_ifmap_reads"]), layer
        assert row.filter_sram_b_read_bytes == int(ref["sram_filter_reads"]), layer
        assert row.stall_cycles == 0 == int(ref["stall_cycles"])
