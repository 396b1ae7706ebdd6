"""Effectual MACs from the vectorized accounting equal a nested-loop scalar reference."""

from __future__ import annotations

import numpy as np
import pytest

from traces import LayerSpec
from traces.format.layer import conv_out_size
from traces.stats import accounting

from .scalar_reference import conv_effectual, linear_effectual, random_mask

CASES = [
    # (n, c, h, w, k, r, s, stride, padding, dilation, groups)
    (2, 3, 7, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (1, 4, 9, 9, 6, 3, 3, (2, 2), (1, 1), (1, 1), 2),
    (2, 4, 8, 7, 4, 3, 2, (2, 1), (2, 0), (2, 1), 4),  # depthwise, dilated, asymmetric
    (1, 6, 5, 5, 3, 1, 1, (1, 1), (0, 0), (1, 1), 3),
    (3, 2, 6, 6, 5, 5, 5, (3, 3), (2, 2), (1, 1), 1),
    (1, 2, 5, 8, 2, 2, 3, (1, 2), (0, 3), (1, 2), 1),
]


def conv_spec(n, c, h, w, k, r, s, stride, padding, dilation, groups) -> LayerSpec:
    p, q = conv_out_size((h, w), (r, s), stride, padding, dilation)
    spec = LayerSpec("conv", "conv2d", "conv", 0, "Conv2d", (c, h, w), (k, c // groups, r, s),
                     (k, p, q), stride, padding, dilation, groups)
    assert spec.check() == []
    return spec


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("selective", [False, True])
def test_conv_matches_scalar_reference(case, selective):
    rng = np.random.default_rng(hash((case, selective)) % 2**32)
    spec = conv_spec(*case)
    n = case[0]
    x = random_mask(rng, (n, *spec.x_shape))
    w = random_mask(rng, spec.w_shape)
    dy = random_mask(rng, (n, *spec.y_shape))
    y_sel = random_mask(rng, (n, *spec.y_shape)) if selective else None
    need = random_mask(rng, spec.w_shape) if selective else None
    fwd, bd, bd_valid, bw = conv_effectual(x, w, spec.stride, spec.padding, spec.dilation,
                                           spec.groups, y_sel=y_sel, dy=dy, dw_needed=need)
    assert accounting.forward_effectual(spec, x, w, y_sel) == fwd
    assert accounting.backward_data_effectual(spec, dy, w) == (bd, bd_valid)
    assert accounting.backward_weight_effectual(spec, x, dy, need) == bw


def test_selection_masks_of_all_ones_equal_the_closed_form_path():
    rng = np.random.default_rng(7)
    spec = conv_spec(*CASES[2])
    x = random_mask(rng, (2, *spec.x_shape))
    w = random_mask(rng, spec.w_shape)
    dy = random_mask(rng, (2, *spec.y_shape))
    ones_y = np.ones((2, *spec.y_shape), bool)
    ones_w = np.ones(spec.w_shape, bool)
    assert accounting.forward_effectual(spec, x, w, ones_y) == accounting.forward_effectual(spec, x, w)
    assert (accounting.backward_weight_effectual(spec, x, dy, ones_w)
            == accounting.backward_weight_effectual(spec, x, dy))


def test_dense_masks_give_algorithmic_macs():
    spec = conv_spec(2, 4, 8, 8, 6, 3, 3, (1, 1), (0, 0), (1, 1), 2)  # no padding: all taps valid
    x = np.ones((2, *spec.x_shape), bool)
    w = np.ones(spec.w_shape, bool)
    dy = np.ones((2, *spec.y_shape), bool)
    counts = {c.pass_: c for c in accounting.pass_counts(spec, 2, x=x, w=w, dy=dy)}
    for name, c in counts.items():
        assert c.effectual == c.algorithmic == spec.gemm(name, 2).macs
    assert counts["backward_data"].effectual_no_padding == counts["backward_data"].algorithmic


def test_padding_products_are_reported_apart():
    spec = conv_spec(1, 1, 3, 3, 1, 3, 3, (1, 1), (1, 1), (1, 1), 1)
    dy = np.ones((1, 1, 3, 3), bool)
    w = np.ones((1, 1, 3, 3), bool)
    gemm, valid = accounting.backward_data_effectual(spec, dy, w)
    assert gemm == 81  # 9 outputs × 9 taps
    assert valid == 49  # taps inside a 3×3 input: sum over outputs of (rows in) × (cols in) = 7·7


@pytest.mark.parametrize("shape", [(5, 7, 4), (3, 2, 6, 3)])  # (n, F) with out; (n, T, F) with out
def test_linear_matches_scalar_reference(shape):
    rng = np.random.default_rng(len(shape))
    *lead, f, out = shape
    spec = LayerSpec("fc", "linear", "fc", 0, "Linear", (*lead[1:], f), (out, f), (*lead[1:], out))
    x = random_mask(rng, (*lead, f))
    w = random_mask(rng, (out, f))
    dy = random_mask(rng, (*lead, out))
    y_sel = random_mask(rng, (*lead, out))
    need = random_mask(rng, (out, f))
    rows = int(np.prod(lead))
    fwd, bd, bw = linear_effectual(x.reshape(rows, f), w, y_sel.reshape(rows, out),
                                   dy.reshape(rows, out), need)
    assert accounting.forward_effectual(spec, x, w, y_sel) == fwd
    assert accounting.backward_data_effectual(spec, dy, w) == (bd, bd)
    assert accounting.backward_weight_effectual(spec, x, dy, need) == bw
    fwd_all, _, bw_all = linear_effectual(x.reshape(rows, f), w, None, dy.reshape(rows, out))
    assert accounting.forward_effectual(spec, x, w) == fwd_all
    assert accounting.backward_weight_effectual(spec, x, dy) == bw_all


@pytest.mark.parametrize("extent", [1, 255, 256, 65535, 65536])
def test_narrow_counts_equal_an_int64_sum_at_every_accumulator_boundary(extent):
    """uint8 up to 255, uint16 up to 65,535, int64 beyond: an all-ones slice is the worst case."""
    rng = np.random.default_rng(extent)
    x = rng.random((extent, 3)) < 0.5
    x[:, 0] = True  # every element non-zero: the largest count the accumulator must hold
    np.testing.assert_array_equal(accounting.count(x, 0), x.sum(axis=0, dtype=np.int64))
    y = x.reshape(-1, 1, 3)[:, :, ::2]  # a strided view, two axes at once
    np.testing.assert_array_equal(accounting.count(y, (0, 1)), y.sum(axis=(0, 1), dtype=np.int64))
    assert accounting.count(x, 0).dtype == np.int64


def test_counts_along_any_axis_equal_an_int64_sum():
    """Short trailing extents (a weight's taps: the counted axis is moved last first) and long
    ones, negative axes and strided views."""
    rng = np.random.default_rng(7)
    for shape in [(6, 300, 3, 3), (4, 5, 7, 7), (3, 2, 1), (9, 4), (2, 3, 4, 20)]:
        x = rng.random(shape) < 0.4
        for view in (x, x[..., ::-1], x[::2]):
            for axis in range(-view.ndim, view.ndim):
                got = accounting.count(view, axis)
                np.testing.assert_array_equal(got, view.sum(axis=axis, dtype=np.int64))
                assert got.dtype == np.int64
