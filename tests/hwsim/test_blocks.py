"""Block reductions (hwsim/npu/blocks.py) against a padded-copy reference on every fast path."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.npu.blocks import block_max, block_sum


def _reference(x: np.ndarray, axis: int, size: int, op) -> np.ndarray:
    """Pad ``axis`` with the op's neutral value to whole blocks, then reduce each block (slow, plain)."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, 0)
    n = x.shape[0]
    blocks = -(-n // size)
    pad = np.full((blocks * size - n, *x.shape[1:]), -np.inf if op is np.maximum else 0.0)
    full = np.concatenate([x, pad]).reshape(blocks, size, *x.shape[1:])
    return np.moveaxis(op.reduce(full, axis=1), 0, axis)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 255, 256, 300])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("layout", ["c", "transposed", "strided"])
def test_block_sums_and_maxima_equal_the_padded_reference(size, axis, layout):
    rng = np.random.default_rng(size * 10 + axis)
    base = rng.random((517, 389))
    views = {"c": base, "transposed": np.ascontiguousarray(base.T).T, "strided": base[::2, ::3]}
    x = views[layout]
    for arr in (x < 0.6, (x * 40).astype(np.float32)):  # bool counts (uint8 path), float maxima (halving)
        got_sum, got_max = block_sum(arr, axis, size), block_max(arr, axis, size)
        np.testing.assert_array_equal(got_sum, _reference(arr, axis, size, np.add))
        want_max = _reference(arr, axis, size, np.maximum)
        np.testing.assert_array_equal(np.asarray(got_max, np.float64), want_max)
        assert got_sum.dtype == (np.float64 if arr.dtype.kind == "f" else np.int64)
