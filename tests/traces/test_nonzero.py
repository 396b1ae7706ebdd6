"""The recorder's fast non-zero counts and masks equal torch's on every dtype and edge value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from traces.recording.calls import _weight_copy
from traces.recording.nonzero import CHUNK_ELEMENTS, count_mask, count_nonzero, host_mask, nonzero_mask
from traces.recording.recorder import _weights_f16

# 0.0, -0.0 (bit pattern 0x80000000 in float32), NaN of both signs, ±inf, a float32 subnormal,
# the smallest float16 subnormal, ordinary values
EDGE = [0.0, -0.0, float("nan"), -float("nan"), float("inf"), -float("inf"), 1e-45, 6e-8, -2.5, 0.0,
        -0.0, 3.0]
FLOATS = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INTEGERS = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
UNSIGNED = [torch.uint16, torch.uint32, torch.uint64]  # torch.count_nonzero has no CPU kernel


def reference(t: torch.Tensor) -> int:
    """torch's own count (unsigned types without a kernel: through an exact int64 copy)."""
    if t.dtype in UNSIGNED:
        t = t.to(torch.int64)  # the values below are < 2**31: exact
    return int(torch.count_nonzero(t))


def edge_tensor(dtype: torch.dtype, n: int, seed: int, negative_zero: bool = True) -> torch.Tensor:
    """``n`` elements of ``dtype``: mostly zeros (of both signs, or only +0.0), edge values at
    random places, and one at each chunk boundary, where a chunked count could go wrong."""
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        values = torch.tensor(EDGE if negative_zero else [abs(v) for v in EDGE], dtype=torch.float64)
        values = values.to(dtype)
    else:
        values = torch.tensor([0, 1, 0, 7, 0, 1], dtype=torch.int64).to(dtype)
    t = values[torch.randint(0, len(values), (n,), generator=g)]
    for edge in range(CHUNK_ELEMENTS - 1, n, CHUNK_ELEMENTS):
        t[edge] = values[3]  # -NaN or 7
        t[edge + 1 if edge + 1 < n else edge] = values[1]  # -0.0 or 1
    return t


@pytest.mark.parametrize("dtype", FLOATS + INTEGERS + UNSIGNED, ids=str)
def test_count_nonzero_equals_torch_on_every_dtype_and_edge_value(dtype):
    sizes = [0, 1, 5, CHUNK_ELEMENTS - 1, CHUNK_ELEMENTS, CHUNK_ELEMENTS + 1, 2 * CHUNK_ELEMENTS + 3]
    # with and without -0.0 (bit pattern 0x80000000: a count of the bits would take it for non-zero)
    for seed, (n, negative_zero) in enumerate((n, z) for n in sizes for z in (True, False)):
        t = edge_tensor(dtype, n, seed, negative_zero)
        got = count_nonzero(t)
        assert type(got) is int and got == reference(t), (dtype, n)
        mask = nonzero_mask(t)
        assert isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == t.shape
        assert count_mask(mask) == got
        if dtype not in UNSIGNED:
            np.testing.assert_array_equal(mask, (t != 0).numpy())


def test_float_edge_values_counted_like_torch():
    """NaN (either sign), ±inf and subnormals count; both zeros do not."""
    t = torch.tensor(EDGE, dtype=torch.float32)
    assert count_nonzero(t) == int(torch.count_nonzero(t)) == 8
    # in float16 and bfloat16 1e-45 underflows to 0.0 (6e-8 is float16's smallest subnormal)
    assert count_nonzero(t.half()) == int(torch.count_nonzero(t.half())) == 7
    assert count_nonzero(t.bfloat16()) == int(torch.count_nonzero(t.bfloat16())) == 7
    assert count_nonzero(-torch.zeros(1000)) == count_nonzero(-torch.zeros(CHUNK_ELEMENTS + 5)) == 0
    one = torch.zeros(CHUNK_ELEMENTS + 5)
    one[-1] = -0.0
    assert count_nonzero(one) == 0 and count_nonzero(one.double()) == 0 and count_nonzero(one.half()) == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int32], ids=str)
def test_strided_views_and_tensors_needing_gradients(dtype):
    t = edge_tensor(dtype, 6 * 8 * 10 * 12, 3).reshape(6, 8, 10, 12)
    views = [t.transpose(1, 3), t[:, ::2], t[..., 1:7], t[3], t.permute(0, 2, 3, 1)[:4]]
    for v in views:
        assert count_nonzero(v) == reference(v)
        np.testing.assert_array_equal(nonzero_mask(v), (v != 0).numpy())
    if dtype.is_floating_point:
        g = t.clone().requires_grad_(True)
        assert count_nonzero(g) == reference(t)
        np.testing.assert_array_equal(nonzero_mask(g, 2), (t[:2] != 0).numpy())


def test_other_dtypes_fall_back_to_torch():
    t = torch.tensor([0, 1j, 0, -0.0 + 0j, 2 + 0j], dtype=torch.complex64)
    assert count_nonzero(t) == 2
    np.testing.assert_array_equal(host_mask(nonzero_mask(t)), [False, True, False, False, True])


def test_numpy_weight_update_equals_torchs_float16_bit_for_bit():
    """The recorder keeps a CPU weight's pre-update copy in numpy; the stored float16 weight and
    update must be the bytes torch's conversion gives (rounding, overflow to inf, subnormals)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 33, generator=g) * torch.logspace(-9, 5, 33)  # float16 range and beyond
    w[0, :len(EDGE)] = torch.tensor(EDGE)
    before = _weight_copy(w)
    assert isinstance(before, np.ndarray)
    now = w + torch.randn(64, 33, generator=g) * 1e-3
    w16, dw16 = _weights_f16(before, now)
    np.testing.assert_array_equal(w16.view(np.uint16), w.half().numpy().view(np.uint16))
    np.testing.assert_array_equal(dw16.view(np.uint16), (now - w).half().numpy().view(np.uint16))
