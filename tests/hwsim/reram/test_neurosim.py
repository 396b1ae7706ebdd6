"""reram-neurosim against DNN+NeuroSim V1.4 Table VII (VGG-8, CIFAR-10 shapes, inference)."""

from __future__ import annotations

import math

import pytest

import archs
from hwsim.simulate import simulate
from traces.synth import conv, linear, write_synthetic

NEUROSIM = archs.PRESETS["reram-neurosim"]
# NeuroSim's VGG-8 (Inference_pytorch/NeuroSIM/NetWork_VGG8.csv): 3×3 convs with padding 1
VGG8 = [conv("c1", 3, 32, 32, 128, 3, padding=1), conv("c2", 128, 32, 32, 128, 3, padding=1),
        conv("c3", 128, 16, 16, 256, 3, padding=1), conv("c4", 256, 16, 16, 256, 3, padding=1),
        conv("c5", 256, 8, 8, 512, 3, padding=1), conv("c6", 512, 8, 8, 512, 3, padding=1),
        linear("f1", 8192, 1024), linear("f2", 1024, 10)]


@pytest.fixture(scope="module")
def vgg8(tmp_path_factory):
    path = write_synthetic(VGG8, tmp_path_factory.mktemp("vgg8") / "t", batch=1)  # one image, dense
    return simulate(path, NEUROSIM, passes=["forward"]).to_frame()


def test_vgg8_layer_times_are_the_closed_form_read_count(vgg8):
    """Per layer: ceil(P·Q / copies) vectors per copy × 8 input bits × ceil(min(Kr, 128) / 32) partial
    reads of 10 ns (the blocks along K read in parallel), copies = min(8, P·Q)."""
    for spec, (_, row) in zip(VGG8, vgg8.iterrows(), strict=True):
        vectors = spec.rows_per_sample
        copies = min(8, vectors)
        reads = math.ceil(min(spec.reduction, 128) / 32)
        assert row["reram_replicas"] == copies
        assert row["gemm_cycles"] == math.ceil(vectors / copies) * 8 * reads * 10  # 1 GHz: 1 cycle per ns


def measured(df) -> tuple[float, float]:
    ops = 2 * df["algorithmic_macs"].sum()  # NeuroSim's numComputation: 2 × MACs, layer by layer
    return ops / (df["cycles"].sum() / NEUROSIM.clock_hz) / 1e12, ops / df["energy_pj"].sum()


@pytest.mark.xfail(strict=True, reason="measured 15.9 TOPS (2.5x the published 6.25) and 0.78 TOPS/W "
                   "(1/14 of 11.25): NeuroSim's read latency and multi-level sense-amp energy come from "
                   "its circuit models, which the preset approximates (docs/reram.md)")
def test_vgg8_matches_neurosim_table_vii_within_30_percent(vgg8):
    tops, tops_per_w = measured(vgg8)
    assert abs(tops - 6.25) <= 0.3 * 6.25
    assert abs(tops_per_w - 11.25) <= 0.3 * 11.25

