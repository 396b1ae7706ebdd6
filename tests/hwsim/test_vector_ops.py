"""Replay of the trace's counted non-GEMM work (``vector_ops``) on the three families: per-kind op
counts from each op's formula, transcendentals at the spec's ``transcendental_ops``."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest
import torch

import archs
import traces
from hwsim.simulate import simulate

from ..traces.test_vector_ops import Block, D, L, N, record

ELEMENT_BYTES = {"edge-npu": lambda a: a.compute.precision.activation_bits / 8,
                 "gpu-a100": lambda a: a.gpu.element_bits / 8,
                 "reram-isaac": lambda a: a.reram.input_bits / 8}


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    torch.manual_seed(0)
    return record(tmp_path_factory.mktemp("vec") / "t", Block(), torch.randn(N, L, D), steps=1)


@pytest.mark.parametrize("preset", sorted(ELEMENT_BYTES))
@pytest.mark.parametrize("trans", [4.0, 10.0])
def test_softmax_and_layer_norm_cost_their_formulas(trace, preset, trans):
    arch = archs.load(preset)
    unit = dataclasses.replace(arch.vector_unit, transcendental_ops=trans)
    arch = dataclasses.replace(arch, vector_unit=unit)
    df = simulate(trace, arch).to_frame()
    vec = df[df["vector_op_kind"].notna()].set_index(["layer", "pass"])
    n, eb = N * L * D, ELEMENT_BYTES[preset](arch)
    lanes, per_cycle = arch.vector_unit.lanes, arch.off_chip.bandwidth_bytes_per_s / arch.clock_hz
    # softmax: max, subtract, sum, divide and one exp per element; backward 4 ops
    for (layer, pass_), ops, moved in [(("softmax", "forward"), n * (4 + trans), 2 * n * eb),
                                       (("softmax", "backward_data"), 4 * n, 3 * n * eb),
                                       (("ln.layer_norm", "forward"), 7 * n, 2 * n * eb),
                                       (("ln.layer_norm", "backward_data"), 11 * n, 4 * n * eb),
                                       (("add", "forward"), n, 3 * n * eb)]:
        row = vec.loc[(layer, pass_)]
        assert row["vector_ops"] == ops
        assert row["cycles"] == max(math.ceil(ops / lanes), math.ceil(moved / per_cycle))
        assert row["dense_cycles"] == row["cycles"]  # nothing to skip
    assert ("drop.dropout", "backward_data") not in vec.index  # the mask needs no gradient
    assert ("add", "backward_data") not in vec.index  # the residual add passes its gradient on


def test_a_counted_table_replaces_the_per_output_estimate(trace, tmp_path):
    """With the table, a layer's forward keeps one op per output for its bias; without it (older
    traces), the estimate of 2 ops per output (bias, activation) stands."""
    old = tmp_path / "old"
    shutil.copytree(trace.path, old)
    doc = json.loads((old / "manifest.json").read_text())
    del doc["vector_ops"]
    (old / "manifest.json").write_text(json.dumps(doc))
    for path, per_output in [(trace.path, 1), (old, 2)]:
        df = simulate(traces.load(path), "edge-npu").to_frame()
        fc = df[(df["layer"] == "fc") & (df["pass"] == "forward")].iloc[0]
        assert fc["vector_ops"] == per_output * N * L * D
