"""Presets: YAML twins load to them, and derived figures match the published ones."""

from __future__ import annotations

import dataclasses

import pytest

import archs
from archs import derived
from archs.presets import PRESETS, twin_path, twin_text


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_twin_loads_to_the_preset_and_is_current(name):
    assert archs.load_file(twin_path(name)) == PRESETS[name]
    assert twin_path(name).read_text() == twin_text(name), "regenerate with `python -m archs.presets`"


def test_preset_names_are_the_issue_names():
    assert set(PRESETS) == {"edge-npu", "eyeriss-v2-pe", "eyeriss-like", "gpu-a100", "gpu-h100", "gpu-h200",
                            "reram-isaac", "reram-neurosim",  # eyeriss-like: issue 10 (Timeloop reference)
                            "gpu-a100-80gb", "gpu-a100-80gb-pcie", "gpu-h100-pcie"}  # cards: issue 24
    assert {a.family for a in PRESETS.values()} == {"edge_npu", "gpu", "reram"}


def within(value: float, target: float, rel: float) -> bool:
    return abs(value - target) <= rel * target


def test_a100_peak_from_fields():
    a = PRESETS["gpu-a100"]
    # NVIDIA: 312 TFLOPS dense FP16, 624 with 2:4 sparsity (architecture_parameters.md §3.1)
    assert within(archs.peak_ops_per_s(a) / 1e12, 312, 0.01)
    assert within(archs.peak_ops_per_s(a, structured_sparse=True) / 1e12, 624, 0.01)


def test_h100_peak_from_fields():
    a = PRESETS["gpu-h100"]
    # NVIDIA: 989.4 / 1978.9 TFLOPS FP16 dense / 2:4 (architecture_parameters.md §3.1)
    assert within(archs.peak_ops_per_s(a) / 1e12, 989, 0.01)
    assert within(archs.peak_ops_per_s(a, structured_sparse=True) / 1e12, 1979, 0.01)


def test_h200_is_h100_compute_with_hbm3e():
    h100, h200 = PRESETS["gpu-h100"], PRESETS["gpu-h200"]
    # NVIDIA H200 product page: 141 GB HBM3e at 4.8 TB/s, same GH100 compute (989 TFLOPS FP16 dense)
    # the same chip and clocks; only the memory differs: its datasheet bandwidth and the fraction a
    # streaming kernel reaches (H200 measured: 3.89 of 4.8 TB/s, archs/gpu_presets.py)
    assert dataclasses.replace(h200.gpu, hbm_achievable_fraction=h100.gpu.hbm_achievable_fraction) == h100.gpu
    assert within(h200.gpu.hbm_achievable_fraction * 4.8e12, 3.89e12, 0.001)
    assert within(archs.peak_ops_per_s(h200) / 1e12, 989, 0.01)
    assert h200.off_chip.capacity_bytes == 141e9 and h200.off_chip.bandwidth_bytes_per_s == 4.8e12


def test_isaac_budget_from_fields():
    r = PRESETS["reram-isaac"].reram
    # ISAAC (ISCA'16): tile ≈ 330 mW, ADCs 58% of it, 41.3 TOPS at 16 bit, 55.4 W for 168 tiles
    assert within(derived.tile_power_mw(r), 330, 0.03)
    assert within(derived.adc_power_share(r), 0.58, 0.03)
    assert within(archs.peak_ops_per_s(PRESETS["reram-isaac"]) / 1e12, 41.3, 0.03)
    assert within(r.tiles * derived.tile_power_mw(r) / 1e3, 55.4, 0.03)
    assert within(r.adc.conversion_energy_pj, 1.56, 0.01)  # 2 mW / 1.28 GS/s


def test_eyeriss_pe_is_the_sparseloop_fig12_pe():
    a = PRESETS["eyeriss-v2-pe"]
    assert (a.compute.rows, a.compute.cols, a.compute.microarchitecture) == (1, 1, "pe_skipping")
    assert archs.energy_pj(a, "compute", "mac") == 0.561
    assert archs.energy_pj(a, "weight_spad", "metadata_read") == 0.884
    assert [m.capacity_bytes for m in a.memories[:3]] == [16, 192, 80]


def test_energy_table_has_no_silent_defaults():
    a = PRESETS["edge-npu"]
    assert archs.energy_pj(a, "dram", "read") == 64.0  # 8 pJ/bit
    assert archs.energy_pj(a, "dram", "metadata_read") == 64.0  # -1 means "as data"
    assert archs.energy_pj(a, "glb", "metadata_read") == 1.2
    with pytest.raises(KeyError, match=r"no energy for adc\.conversion"):
        archs.energy_pj(a, "adc", "conversion")
    isaac = PRESETS["reram-isaac"]
    assert archs.energy_pj(isaac, "crossbar", "read") == pytest.approx(30.0)  # 0.3 mW × 100 ns
    # NeuroSim V2.1's cell at G_on: (4·√2 V)² / 240 kΩ × 50 ns (Param.cpp, ProcessingUnit.cpp)
    assert archs.energy_pj(isaac, "cell", "write_pulse") == pytest.approx(32 / 240e3 * 50e-9 * 1e12)
