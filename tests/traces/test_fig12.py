"""Sparseloop fig12 real masks, as 1×1 convolutions, give the ground-truth cycles exactly.

The ground truth (``../shared/reference/sparseloop_fig12/README.md``) is measured on an
Eyeriss-v2 PE doing one MAC per effectual pair, so it equals the exact effectual MAC count.
"""

from __future__ import annotations

import numpy as np
import pytest

from traces import LayerSpec
from traces.stats import accounting

# layer: (C, M, E*F side, ground-truth cycles) from the artifact's ground_truth_cycles.yaml
GROUND_TRUTH = {
    "L07": (64, 64, 32, 1_702_140),
    "L09": (64, 128, 16, 1_499_682),
    "L13": (128, 256, 8, 1_144_158),
    "L19": (256, 256, 8, 1_457_458),
    "L21": (256, 256, 8, 1_677_684),
    "L23": (256, 256, 8, 1_821_557),
    "L25": (256, 512, 4, 948_572),
    "L27": (512, 512, 4, 775_316),
}


def read_mask(path, shape) -> np.ndarray:
    text = path.read_text().strip()
    assert set(text) <= {"0", "1"} and len(text) == np.prod(shape), path
    return (np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")).reshape(shape)


@pytest.mark.parametrize("layer", sorted(GROUND_TRUTH))
def test_fig12_effectual_macs_equal_ground_truth(fig12_dir, layer):
    c, m, side, cycles = GROUND_TRUTH[layer]
    iacts = read_mask(fig12_dir / f"{layer}_iacts.txt", (side * side, c))  # pixel-major, C fastest
    weights = read_mask(fig12_dir / f"{layer}_weights.txt", (m, c))
    x = iacts.T.reshape(1, c, side, side)
    w = weights.reshape(m, c, 1, 1)
    spec = LayerSpec(layer, "conv2d", layer, 0, "Conv2d", (c, side, side), (m, c, 1, 1),
                     (m, side, side))
    assert spec.gemm("forward", 1).macs == m * c * side * side
    assert accounting.forward_effectual(spec, x, w) == cycles
    # The general (selection-mask) path agrees with the closed form on real data too.
    assert accounting.forward_effectual(spec, x, w, np.ones((1, m, side, side), bool)) == cycles
