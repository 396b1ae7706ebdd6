"""The eyeriss-v2-pe preset replaying Sparseloop fig12's real masks gives the ground-truth cycles.

Each layer becomes a one-iteration trace (the 1×1 conv's input and weight masks), replayed
through simulate() — mapping, tile costs and the timing back end — on the preset.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.simulate import simulate
from traces import TraceWriter
from traces.format import bits
from traces.format.manifest import TENSOR_INDEX, TENSORS, new_manifest
from traces.synth import conv

from ..traces.test_fig12 import GROUND_TRUTH, read_mask


def fig12_trace(fig12_dir, layer: str, path):
    c, m, side, _ = GROUND_TRUTH[layer]
    x = read_mask(fig12_dir / f"{layer}_iacts.txt", (side * side, c)).T.reshape(1, c, side, side)
    w = read_mask(fig12_dir / f"{layer}_weights.txt", (m, c)).reshape(m, c, 1, 1)
    spec = conv(layer, c, side, side, m, 1)
    writer = TraceWriter(path)
    manifest = new_manifest([spec], model={"name": "mobilenet0.5-sparse"},
                            method={"name": "dense", "params": {}}, dataset={"name": "sparseloop-fig12"},
                            schedule={}, batch_size=1)
    writer.write_manifest(manifest)
    counts = np.full((1, len(TENSORS)), -1, dtype=np.int64)
    counts[0, TENSOR_INDEX["x"]], counts[0, TENSOR_INDEX["w"]] = int(x.sum()), int(w.sum())
    writer.write_iteration(0, {"batch": 1}, counts, {(0, "x"): bits.pack(x), (0, "w"): bits.pack(w)})
    return path


@pytest.mark.parametrize("layer", sorted(GROUND_TRUTH))
def test_eyeriss_v2_pe_replays_fig12_to_the_cycle(fig12_dir, tmp_path, layer):
    path = fig12_trace(fig12_dir, layer, tmp_path / layer)
    row = simulate(path, "eyeriss-v2-pe", passes=["forward"]).to_frame().iloc[0]
    assert row.gemm_cycles == GROUND_TRUTH[layer][3]
    assert row.actual_macs == row.effectual_macs == GROUND_TRUTH[layer][3]
    assert row.algorithmic_macs == row.actual_macs + row.skipped_macs and row.gated_macs == 0
    assert row.dense_gemm_cycles == row.algorithmic_macs  # the same PE with skipping off
