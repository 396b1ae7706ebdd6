"""Chip area per component and in total, against the sourced figures in the presets."""

from __future__ import annotations

import pytest

import archs


def test_edge_npu_area_is_the_eyeriss_like_reference_table():
    # timeloop-accelergy-exercises eyeriss_like ART (µm², 65 nm): mac 191.82, weights_spad (384 B)
    # 11632.88556, shared_glb (128 KiB) 217363.36892
    a = archs.area_by_component_mm2(archs.load("edge-npu"))
    assert a["compute"] == pytest.approx(256 * 191.82e-6)
    assert a["rf"] == pytest.approx(256 * 512 / 384 * 11632.88556e-6)
    assert a["glb"] == pytest.approx(0.21736336892)
    assert archs.chip_area_mm2(archs.load("edge-npu")) == pytest.approx(sum(a.values()))


def test_area_follows_the_swept_fields():
    base = archs.load("edge-npu")
    two_rfs = archs.replace(base, {"memories.rf.instances": 512})
    extra = archs.chip_area_mm2(two_rfs) - archs.chip_area_mm2(base)
    assert extra == pytest.approx(256 * 512 / 384 * 11632.88556e-6)
    a100 = archs.load("gpu-a100")
    assert archs.chip_area_mm2(a100) == pytest.approx(108 * 826 / 128)  # SMs only: no smem/L2 area cited
    half = archs.replace(a100, {"gpu.sms": 54})
    assert archs.chip_area_mm2(half) == pytest.approx(54 * 826 / 128)


def test_reram_area_counts_every_instance():
    r = archs.load("reram-isaac")
    # 168 tiles × (12 IMAs × 8 ADCs × 1200 µm² + the 64 KB eDRAM's 0.083 mm²); the other ISAAC
    # components carry no area in the preset
    assert archs.chip_area_mm2(r) == pytest.approx(168 * (12 * 8 * 1200e-6 + 0.083))
    assert archs.derived.summary(r)["chip_area_mm2"] == archs.chip_area_mm2(r)
