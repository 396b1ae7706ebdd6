"""hwsim's mapper against ZigZag 3.9.1 (committed CSV, `make zigzag-reference`) on the same machine.

tests/data/zigzag/systolic_32x32.yaml (ZigZag) and systolic_32x32_hwsim.yaml (hwsim) describe one
machine. Per network (the ResNet-18 convolutions, the BERT GEMMs) hwsim's `search` moves at most
1.05× ZigZag's DRAM bytes, and where a layer's DRAM bytes agree within 1 % its energy agrees
within 10 %. Every chosen mapping's buffer occupancy is checked against the capacities.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import archs
from hwsim.npu.loopnest import ConvShape
from hwsim.npu.mapper import search

DATA = Path(__file__).resolve().parents[1] / "data" / "zigzag"
ONE = {"a": 1.0, "b": 1.0, "c": 1.0}


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(ln for ln in (DATA / name).read_text().splitlines() if not ln.startswith("#")))


LAYERS = {r["name"]: r for r in _rows("layers.csv")}
REFERENCE = _rows("reference.csv")


def zigzag_dram_bytes(r: dict[str, str]) -> float:
    return sum(float(r[f"dram_{op}_{d}_bytes"]) for op in "abc" for d in ("read_down", "write_from_below"))


def shape_of(name: str) -> ConvShape:
    r = LAYERS[name]
    s = int(r["stride"])
    k, c, oy, ox, fy, fx = (int(r[x]) for x in ("k", "c", "oy", "ox", "fy", "fx"))
    return ConvShape(1, k, c, oy, ox, fy, fx, s, s)


@pytest.fixture(scope="module")
def results():
    arch = archs.load(DATA / "systolic_32x32_hwsim.yaml")
    return arch, {r["layer"]: search(shape_of(r["layer"]), "forward", arch, ONE) for r in REFERENCE}


def test_reference_covers_the_required_layers():
    convs = [LAYERS[r["layer"]] for r in REFERENCE if r["kind"] == "conv"]
    assert sum(r["kind"] == "gemm" for r in REFERENCE) >= 3 and len(convs) >= 6
    kinds = {(c["fy"], c["stride"]) for c in convs}
    assert {("3", "1"), ("1", "2"), ("7", "2")} <= kinds


@pytest.mark.parametrize("kind", ["conv", "gemm"])
def test_network_dram_bytes_at_most_105_percent_of_zigzag(results, kind):
    _, res = results
    ours = sum(res[r["layer"]].dram_bytes for r in REFERENCE if r["kind"] == kind)
    theirs = sum(zigzag_dram_bytes(r) for r in REFERENCE if r["kind"] == kind)
    assert ours <= 1.05 * theirs


def test_chosen_mappings_fit_their_buffers(results):
    arch, res = results
    caps = {m.name: m.capacity_bytes for m in arch.memories}
    for r in res.values():
        assert set(r.occupancy) == {"ifmap_sram", "filter_sram", "ofmap_sram"}
        assert all(used <= caps[name] for name, used in r.occupancy.items())


def test_energy_within_10_percent_where_dram_bytes_agree(results):
    _, res = results
    agree = [r for r in REFERENCE if abs(res[r["layer"]].dram_bytes / zigzag_dram_bytes(r) - 1) <= 0.01]
    assert len(agree) >= 4  # l2_1x1_s2, l3_3x3, l4_1x1_s2, l4_3x3, bert_ffn1 at the time of writing
    for r in agree:
        assert res[r["layer"]].energy_pj == pytest.approx(float(r["energy_pj"]), rel=0.10), r["layer"]


def test_mac_energy_is_the_same_count(results):
    _, res = results
    for r in REFERENCE:
        assert res[r["layer"]].energy["compute"] == pytest.approx(float(r["mac_energy_pj"]))
