"""hwsim's mapper and schedule against ZigZag 3.9.1 on a held-out machine (issue 23: other hardware).

tests/data/zigzag/held_out_16x16/ holds a 16×16 weight-stationary array with three 32 KiB SRAMs (ZigZag's
systolic_16x16.yaml, hwsim's twin systolic_16x16_hwsim.yaml) and ZigZag's own LOMA results on it
(`make zigzag-reference`). It was added after the mapper and the nest schedule were tuned on the 32×32
machine of test_zigzag_agreement.py, and nothing in hwsim was changed for it. The same targets hold:
ResNet-18's forward pass takes 0.8–1.25× ZigZag's total latency and moves at most 1.10× its DRAM bytes;
where a layer's DRAM bytes agree within 1 %, its energy agrees within 10 %; every chosen mapping fits
its SRAMs; the MAC energy is the same count.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archs
from hwsim.npu.mapper import search
from hwsim.simulate import simulate
from tests.hwsim.test_zigzag_agreement import (
    LAYERS,
    ONE,
    _resnet18_counts,
    _rows,
    shape_of,
    zigzag_dram_bytes,
)
from traces.synth import conv, linear, write_synthetic

MACHINE = Path(__file__).resolve().parents[1] / "data" / "zigzag" / "held_out_16x16"
REFERENCE = {r["layer"]: r for r in _rows("held_out_16x16/reference.csv")}


def _dram(row: dict) -> float:
    return sum(v for k, v in row.items() if k.startswith("dram_") and k.endswith("_bytes"))


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[str, dict]:
    """Every layer of the oracle's list as one dense batch-1 trace (BERT GEMMs as 1×1 convolutions,
    as ZigZag's workload writes them), replayed with `mapping="search"` on the twin."""
    layers = []
    for name, r in LAYERS.items():
        k, c, oy, ox, fy, s = (int(r[x]) for x in ("k", "c", "oy", "ox", "fy", "stride"))
        if r["kind"] == "fc":
            layers.append(linear(name, c, k))
        elif r["kind"] == "gemm":
            layers.append(conv(name, c, 1, ox, k, 1))
        else:
            layers.append(conv(name, c, (oy - 1) * s + fy, (oy - 1) * s + fy, k, fy, stride=s))
    path = write_synthetic(layers, tmp_path_factory.mktemp("held_out") / "t", batch=1)
    arch = archs.load(MACHINE / "systolic_16x16_hwsim.yaml")
    df = simulate(path, arch, passes=["forward"], mapping="search").to_frame()
    return {row["layer"]: row for row in df.to_dict("records")}


def test_the_reference_is_the_held_out_machine_and_covers_every_layer():
    text = (MACHINE / "reference.csv").read_text().splitlines()[0]
    assert "machine held_out_16x16" in text
    assert set(REFERENCE) == set(LAYERS)
    arch = archs.load(MACHINE / "systolic_16x16_hwsim.yaml")
    assert (arch.compute.rows, arch.compute.cols) == (16, 16)


def test_resnet18_forward_latency_and_dram_on_the_held_out_machine(rows):
    counts = _resnet18_counts()
    ours = sum(n * rows[name]["gemm_cycles"] for name, n in counts.items())
    theirs = sum(n * int(REFERENCE[name]["latency_cycles"]) for name, n in counts.items())
    assert 0.8 <= ours / theirs <= 1.25, ours / theirs
    ours_b = sum(n * _dram(rows[name]) for name, n in counts.items())
    theirs_b = sum(n * zigzag_dram_bytes(REFERENCE[name]) for name, n in counts.items())
    assert ours_b <= 1.10 * theirs_b, ours_b / theirs_b


def test_conv1_differs_by_its_spatial_unrolling_not_its_traffic():
    """conv1 (C = 3) is left out of the energy comparison below: ZigZag's spatial mapping unrolls only C
    over the array's rows, so the 7×7 window's taps accumulate in time and every output is read and
    written back FY·FX = 49 times at the output SRAM (its energy is 63 % of ZigZag's total), where
    hwsim's im2col unrolls C·FY·FX = 147 over the rows (docs/validation.md §3b)."""
    r = REFERENCE["conv1_7x7_s2"]
    outputs = int(float(r["ofmap_sram_c_read_up_bytes"]))
    assert outputs == 64 * 112 * 112
    assert int(float(r["ofmap_sram_c_read_down_bytes"])) == 49 * outputs
    assert float(r["ofmap_sram_c_energy_pj"]) > 0.6 * float(r["energy_pj"])


def test_energy_within_10_percent_where_dram_bytes_agree(rows):
    agree = [n for n, r in REFERENCE.items() if abs(_dram(rows[n]) / zigzag_dram_bytes(r) - 1) <= 0.01
             and n != "conv1_7x7_s2"]
    assert len(agree) >= 4
    for name in agree:
        assert rows[name]["energy_pj"] == pytest.approx(float(REFERENCE[name]["energy_pj"]), rel=0.10), name


def test_mac_energy_is_the_same_count(rows):
    for name, r in REFERENCE.items():
        assert rows[name]["energy_compute_pj"] == pytest.approx(float(r["mac_energy_pj"])), name


def test_chosen_mappings_fit_the_held_out_srams():
    arch = archs.load(MACHINE / "systolic_16x16_hwsim.yaml")
    caps = {m.name: m.capacity_bytes for m in arch.memories}
    for name in REFERENCE:
        occupancy = search(shape_of(name), "forward", arch, ONE).occupancy
        assert set(occupancy) == {"ifmap_sram", "filter_sram", "ofmap_sram"}, name
        assert all(used <= caps[m] for m, used in occupancy.items()), name
