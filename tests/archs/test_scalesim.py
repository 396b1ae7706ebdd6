"""SCALE-Sim .cfg import, field by field, for the v2 layout and v3's; scalesim accepts our v3 files."""

from __future__ import annotations

import textwrap

import pytest

import archs
from archs import ConfigError

ARCH = """
[general]
run_name = {name}

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : {ifmap}
FilterSramSzkB : {filt}
OfmapSramSzkB : {ofmap}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {bw}
Dataflow : {df}
"""
V3_EXTRA = """ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : {ifmap_bw}
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : {filt_bw}
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : {sparse}
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40
"""
RUN = """
[run_presets]
InterfaceBandwidth : {mode}
"""


def write_cfg(path, *, v3, name="net", rows=32, cols=16, ifmap=64, filt=32, ofmap=16, bw=10, df="os",
              mode="USER", ifmap_bw=12, filt_bw=8, sparse="false"):
    text = ARCH.format(name=name, rows=rows, cols=cols, ifmap=ifmap, filt=filt, ofmap=ofmap, bw=bw, df=df)
    if v3:
        text += V3_EXTRA.format(ifmap_bw=ifmap_bw, filt_bw=filt_bw, sparse=sparse)
    text += RUN.format(mode=mode) + ("UseRamulatorTrace : False\n" if v3 else "")
    path.write_text(textwrap.dedent(text))
    return path


def link_words_per_cycle(a):
    return {ln.operands[0]: ln.bandwidth_bytes_per_s / a.clock_hz for ln in a.links}


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_v3_config_field_by_field(tmp_path, df):
    a = archs.load(write_cfg(tmp_path / "a.cfg", v3=True, df=df))
    assert a.name == "net" and a.family == "edge_npu"
    assert (a.compute.rows, a.compute.cols, a.compute.dataflow) == (32, 16, df)
    assert a.compute.microarchitecture == "systolic"
    assert [(m.name, m.capacity_bytes, m.operands, m.double_buffered) for m in a.memories[:3]] == [
        ("ifmap_sram", 64 * 1024, ("a",), True), ("filter_sram", 32 * 1024, ("b",), True),
        ("ofmap_sram", 16 * 1024, ("c",), True)]
    # v3 USER mode: ifmap/filter from the [layout] bank bandwidths, ofmap from Bandwidth
    assert link_words_per_cycle(a) == {"a": 12, "b": 8, "c": 10}
    assert "v3 layout, USER bandwidth" in a.description
    assert "energies from the edge-npu preset" in a.description


def test_v2_config_field_by_field(tmp_path):
    a = archs.load(write_cfg(tmp_path / "b.cfg", v3=False, rows=8, cols=64, ifmap=512, filt=256,
                             ofmap=128, bw=20, df="ws"))
    assert (a.compute.rows, a.compute.cols, a.compute.dataflow) == (8, 64, "ws")
    assert [m.capacity_bytes for m in a.memories[:3]] == [512 * 1024, 256 * 1024, 128 * 1024]
    assert link_words_per_cycle(a) == {"a": 20, "b": 20, "c": 20}
    assert "v2 layout" in a.description


def test_calc_mode_is_stall_free(tmp_path):
    a = archs.load(write_cfg(tmp_path / "c.cfg", v3=True, mode="CALC"))
    assert link_words_per_cycle(a) == {"a": 0, "b": 0, "c": 0}  # 0 = unlimited
    assert "CALC bandwidth" in a.description


def test_v3_sparsity_section_becomes_a_filter_format(tmp_path):
    a = archs.load(write_cfg(tmp_path / "s.cfg", v3=True, sparse="true"))
    (fmt,) = a.sparse.formats
    assert (fmt.level, fmt.operand, fmt.format) == ("filter_sram", "b", "ellpack_block")


def test_scalesim_itself_accepts_our_v3_configs(tmp_path):
    from scalesim.scale_config import scale_config

    for df in ("ws", "os", "is"):
        path = write_cfg(tmp_path / f"{df}.cfg", v3=True, df=df, rows=16, cols=8)
        cfg = scale_config()
        cfg.read_conf_file(str(path))
        assert cfg.valid_conf_flag
        ours = archs.load(path)
        assert (cfg.array_rows, cfg.array_cols, cfg.df) == (ours.compute.rows, ours.compute.cols, df)
        assert [cfg.ifmap_sz_kb * 1024, cfg.filter_sz_kb * 1024, cfg.ofmap_sz_kb * 1024] == [
            m.capacity_bytes for m in ours.memories[:3]]
        assert cfg.use_user_bandwidth and cfg.bandwidths == [10]


def test_bad_cfg_lists_every_problem(tmp_path):
    path = write_cfg(tmp_path / "bad.cfg", v3=True, rows="x", df="rs", mode="AUTO")
    with pytest.raises(ConfigError) as e:
        archs.load(path)
    assert str(e.value).startswith(str(path))
    assert e.value.problems == [
        "[architecture_presets] ArrayHeight: expected an integer, got 'x'",
        "[architecture_presets] Dataflow: must be ws, os or is, got 'rs'",
        "[run_presets] InterfaceBandwidth: must be CALC or USER, got 'AUTO'",
    ]
