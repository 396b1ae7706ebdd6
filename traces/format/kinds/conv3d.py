"""``conv3d``: ``nn.Conv3d`` (format 4, additive).

Per sample ``x (C, D, H, W)``, weight ``(Kout, C/g, T, R, S)``, ``y (Kout, Pd, P, Q)``; per group
the GEMM rows are ``Pd·P·Q`` per sample, ``K = C·T·R·S/g``, ``N = Kout/g``: the passes of a 2-D
conv with one more spatial dimension in the im2col rows (outputs) and columns (kernel taps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .base import Kind

MAX_DIM = 2**31


class Conv3d(Kind):
    name = "conv3d"

    def rows_per_sample(self, spec: Any) -> int:
        return math.prod(spec.y_shape[1:])

    def check(self, spec: Any) -> list[str]:
        if spec.attention is not None:
            return ["attention: only matmul layers (activation × activation) take part in attention"]
        problems = check_triples(spec, 3, "a 3-D conv")
        if problems:
            return problems
        if len(spec.x_shape) != 4 or len(spec.w_shape) != 5 or len(spec.y_shape) != 4:
            return [f"shapes: conv3d needs (C,D,H,W), (K,C/g,T,R,S), (K,Pd,P,Q); got "
                    f"{spec.x_shape}, {spec.w_shape}, {spec.y_shape}"]
        c, k, cg = spec.x_shape[0], spec.w_shape[0], spec.w_shape[1]
        if c % spec.groups or k % spec.groups or cg * spec.groups != c:
            problems.append(f"groups: {spec.groups} does not divide C={c}, K={k} with C/g={cg}")
        expected = (k, *out_size(spec.x_shape[1:], spec.w_shape[2:], spec.stride, spec.padding,
                                 spec.dilation))
        if spec.y_shape != expected:
            problems.append(f"y_shape: {spec.y_shape}, but the geometry gives {expected}")
        return problems


def check_triples(spec: Any, nd: int, what: str) -> list[str]:
    """Problems of ``stride``, ``padding``, ``dilation``: one value per spatial dimension, in range."""
    problems = []
    for key, low in (("stride", 1), ("padding", 0), ("dilation", 1)):
        values = getattr(spec, key)
        if len(values) != nd:
            problems.append(f"{key}: {what} needs one value per spatial dimension ({nd}), "
                            f"got {len(values)}: {list(values)}")
        elif any(not low <= v <= MAX_DIM for v in values):
            problems.append(f"{key}: values must be in {low}..2**31, got {list(values)}")
    return problems


def out_size(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
             dilation: Sequence[int]) -> tuple[int, ...]:
    """Output size of a direct conv along each spatial dimension (PyTorch's floor convention)."""
    return tuple((size[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
                 for i in range(len(size)))
