"""The count bounds of ``traces.format.checks`` hold for real computations and refuse what breaks them.

Soundness: for sparse random tensors (densities down to 2 %, where most outputs see no non-zero
input) the counts torch computes — ``y`` of conv2d (stride, dilation, groups), conv3d, linear and
a batched matmul, ``dx`` by autograd from a sparse ``dy`` — never exceed ``fan × count(operand)``.
Refusal: a result count one above the bound of its tightest rule (at 2 % density, where the bounds
are below the tensors' sizes) is refused naming the layer.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from traces import LayerSpec, TraceFormatError
from traces.format.checks import BOUNDS, check_count_bounds, fan_table
from traces.format.manifest import TENSOR_INDEX, TENSORS

BATCH = 3


def sparse(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> torch.Tensor:
    return torch.tensor(rng.standard_normal(shape) * (rng.random(shape) < density), dtype=torch.float64)


def conv_case(nd: int, c: int, k: int, size: tuple, kernel: tuple, stride: tuple, padding: tuple,
              dilation: tuple, groups: int):
    def make(rng, d):
        x = sparse(rng, (BATCH, c, *size), d).requires_grad_()
        w = sparse(rng, (k, c // groups, *kernel), d)
        conv = F.conv2d if nd == 2 else F.conv3d
        y = conv(x, w, None, stride, padding, dilation, groups)
        spec = LayerSpec("l", f"conv{nd}d", "l", 0, f"conv{nd}d", tuple(x.shape[1:]), tuple(w.shape),
                         tuple(y.shape[1:]), stride=stride, padding=padding, dilation=dilation, groups=groups)
        return spec, x, w, y
    return make


def linear_case(features: tuple, out: int):
    def make(rng, d):
        x = sparse(rng, (BATCH, *features), d).requires_grad_()
        w = sparse(rng, (out, features[-1]), d)
        y = F.linear(x, w)
        spec = LayerSpec("l", "linear", "l", 0, "Linear", features, tuple(w.shape), tuple(y.shape[1:]))
        return spec, x, w, y
    return make


def matmul_case(heads: int, m: int, k: int, n: int):
    def make(rng, d):
        x = sparse(rng, (BATCH, heads, m, k), d).requires_grad_()
        w = sparse(rng, (BATCH, heads, k, n), d)
        y = x @ w
        spec = LayerSpec("l", "matmul", "l", 0, "matmul", (heads, m, k), (heads, k, n), (heads, m, n),
                         groups=heads)
        return spec, x, w, y
    return make


CASES = {
    "conv2d": conv_case(2, 4, 6, (7, 6), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    "conv2d strided dilated grouped": conv_case(2, 4, 6, (9, 8), (3, 2), (2, 1), (2, 0), (2, 3), 2),
    "conv2d 1x1": conv_case(2, 5, 3, (4, 4), (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "conv3d": conv_case(3, 2, 4, (3, 5, 6), (2, 3, 3), (1, 2, 1), (1, 1, 0), (1, 1, 2), 1),
    "linear": linear_case((7,), 5),
    "linear over a sequence": linear_case((4, 6), 3),
    "matmul": matmul_case(2, 5, 4, 3),
}


def counts_of(spec: LayerSpec, x, w, y, dy) -> np.ndarray:
    (dx,) = torch.autograd.grad(y, x, dy)
    counts = np.full((1, len(TENSORS)), -1, dtype=np.int64)
    for name, t in (("x", x), ("w", w), ("y", y), ("dy", dy), ("dx", dx)):
        counts[0, TENSOR_INDEX[name]] = int((t != 0).sum())
    return counts


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("density", [0.02, 0.1, 0.4, 1.0])
def test_real_counts_keep_the_bounds(case, density):
    rng = np.random.default_rng(zlib.crc32(f"{case} {density}".encode()))
    for _ in range(5):
        spec, x, w, y = CASES[case](rng, density)
        counts = counts_of(spec, x, w, y, sparse(rng, tuple(y.shape), density))
        check_count_bounds("f", [spec], fan_table([spec]), counts, BATCH)  # raises if broken


@pytest.mark.parametrize("case", list(CASES))
def test_a_count_above_its_tightest_bound_is_refused(case):
    rng = np.random.default_rng(1)
    spec, x, w, y = CASES[case](rng, 0.02)  # sparse: bounds below the tensors' sizes
    counts = counts_of(spec, x, w, y, sparse(rng, tuple(y.shape), 0.02))
    fan, per_batch = fan_table([spec])
    tested = 0
    for result in ("y", "dx"):
        bound = min(int(counts[0, TENSOR_INDEX[o]] * fan[0, i]) * (BATCH if per_batch[0, i] else 1)
                    for i, (r, o) in enumerate(BOUNDS) if r == result)
        if bound >= spec.numel(result, BATCH):  # no room above the bound
            continue
        bad = counts.copy()
        bad[0, TENSOR_INDEX[result]] = above = bound + 1
        with pytest.raises(TraceFormatError, match=rf"counts\[l, {result}\]: found {above}"):
            check_count_bounds("f", [spec], fan_table([spec]), bad, BATCH)
        tested += 1
    assert tested, "no rule had room above its bound"
