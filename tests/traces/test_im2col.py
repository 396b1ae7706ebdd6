"""im2col in both memory orders against a scalar reference (every output, channel and tap)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from traces.format.layer import LayerSpec
from traces.stats.im2col import geometry, im2col


def reference(x: np.ndarray, spec: LayerSpec, group: int) -> np.ndarray:
    """``(n·P·Q, C/g·R·S)`` element by element: the input element tap ``(r, s)`` of output
    ``(p, q)`` reads, 0 on padding."""
    g = geometry(spec)
    n = x.shape[0]
    (kr, ks), (p_out, q_out), (h, w) = g.kernel, g.out_hw, g.in_hw
    out = np.zeros((n * p_out * q_out, g.cg * kr * ks), x.dtype)
    for b, p, q, c, r, s in itertools.product(range(n), range(p_out), range(q_out), range(g.cg),
                                              range(kr), range(ks)):
        i = p * g.stride[0] + r * g.dilation[0] - g.padding[0]
        j = q * g.stride[1] + s * g.dilation[1] - g.padding[1]
        if 0 <= i < h and 0 <= j < w:
            out[(b * p_out + p) * q_out + q, (c * kr + r) * ks + s] = x[b, group * g.cg + c, i, j]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_im2col_both_orders_equal_the_scalar_reference(seed):
    """Row- and column-major im2col, bool and float32, equal the reference on strided, padded,
    dilated and grouped convs; the column-major one is F-contiguous."""
    rng = np.random.default_rng(seed)
    c, k, groups = (4, 6, 2) if seed % 2 else (3, 5, 1)
    stride, pad, dil = 1 + seed % 2, seed % 3, 1 + (seed // 3)
    h, r = 8 + seed % 2, 3
    out = (h + 2 * pad - dil * (r - 1) - 1) // stride + 1
    spec = LayerSpec("c", "conv2d", "c", 0, "Conv2d", (c, h, h), (k, c // groups, r, r), (k, out, out),
                     stride=(stride, stride), padding=(pad, pad), dilation=(dil, dil), groups=groups)
    x = rng.random((2, c, h, h)) < 0.5
    g = geometry(spec)
    for grp in range(groups):
        ref = reference(x, spec, grp)
        for dtype, order in itertools.product((bool, np.float32), ("C", "F")):
            got = im2col(x, g, grp, dtype, order)
            assert got.dtype == np.dtype(dtype)
            assert got.flags.f_contiguous if order == "F" else got.flags.c_contiguous
            np.testing.assert_array_equal(got, ref.astype(dtype))


def test_im2col_rejects_an_unknown_order():
    spec = LayerSpec("l", "linear", "l", 0, "Linear", (7,), (5, 7), (5,))
    with pytest.raises(ValueError, match="order"):
        im2col(np.zeros((1, 7, 1, 1), bool), geometry(spec), 0, bool, "K")
