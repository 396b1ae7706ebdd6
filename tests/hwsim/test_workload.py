"""The workload view: operand counts without im2col equal the built operands."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("seed", range(6))
def test_operand_counts_equal_the_im2col_operands(seed):
    """The tap-sum counts equal the non-zeros of the built operands, on strided, padded, dilated
    and grouped convs and on a linear layer."""
    from hwsim.workload import operand_counts, operands
    from traces.format.layer import LayerSpec

    rng = np.random.default_rng(seed)
    c, k, groups = (4, 6, 2) if seed % 2 else (3, 5, 1)
    stride, pad, dil = 1 + seed % 2, seed % 3, 1 + (seed // 3)
    h = 9
    r = 3
    out = (h + 2 * pad - dil * (r - 1) - 1) // stride + 1
    conv = LayerSpec("c", "conv2d", "c", 0, "Conv2d", (c, h, h), (k, c // groups, r, r), (k, out, out),
                     stride=(stride, stride), padding=(pad, pad), dilation=(dil, dil), groups=groups)
    lin = LayerSpec("l", "linear", "l", 0, "Linear", (7,), (5, 7), (5,))
    for spec in (conv, lin):
        batch = 3
        masks = {"x": rng.random(spec.tensor_shape("x", batch)) < 0.4,
                 "w": rng.random(spec.w_shape) < 0.5,
                 "dy": rng.random(spec.tensor_shape("dy", batch)) < 0.3, "y_sel": None, "dw_needed": None}
        for pass_ in ("forward", "backward_data", "backward_weight"):
            built = [(int(o.a.sum()), int(o.b.sum())) for o in operands(spec, pass_, masks)]
            assert operand_counts(spec, pass_, masks) == built, (spec.name, pass_)
