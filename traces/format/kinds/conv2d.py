"""``conv2d``: ``nn.Conv2d`` (and ``Conv1d`` as a conv with height 1).

Per sample ``x (C, H, W)``, weight ``(Kout, C/g, R, S)``, ``y (Kout, P, Q)``; per group the GEMM
rows are ``P·Q`` per sample, ``K = C·R·S/g``, ``N = Kout/g`` (DESIGN.md, "Training passes as work").
"""

from __future__ import annotations

from typing import Any

from .base import Kind

MAX_DIM = 2**31


class Conv2d(Kind):
    name = "conv2d"

    def rows_per_sample(self, spec: Any) -> int:
        return spec.y_shape[1] * spec.y_shape[2]

    def check(self, spec: Any) -> list[str]:
        if spec.attention is not None:
            return ["attention: only matmul layers (activation × activation) take part in attention"]
        problems: list[str] = []
        for key, low in (("stride", 1), ("padding", 0), ("dilation", 1)):
            pair = getattr(spec, key)
            if len(pair) != 2:
                problems.append(f"{key}: a 2-D conv needs one value per spatial dimension (2), "
                                f"got {len(pair)}: {list(pair)}")
            elif any(not low <= v <= MAX_DIM for v in pair):
                problems.append(f"{key}: values must be in {low}..2**31, got {list(pair)}")
        if problems:
            return problems
        if len(spec.x_shape) != 3 or len(spec.w_shape) != 4 or len(spec.y_shape) != 3:
            return [f"shapes: conv2d needs (C,H,W), (K,C/g,R,S), (K,P,Q); got "
                    f"{spec.x_shape}, {spec.w_shape}, {spec.y_shape}"]
        c, h, w = spec.x_shape
        k, cg, r, s = spec.w_shape
        if c % spec.groups or k % spec.groups or cg * spec.groups != c:
            problems.append(f"groups: {spec.groups} does not divide C={c}, K={k} with C/g={cg}")
        expected = (k, *conv_out_size((h, w), (r, s), spec.stride, spec.padding, spec.dilation))
        if spec.y_shape != expected:
            problems.append(f"y_shape: {spec.y_shape}, but the geometry gives {expected}")
        return problems


def conv_out_size(
    hw: tuple[int, int],
    rs: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int]:
    """Output height and width of a conv (PyTorch's floor convention)."""
    return tuple(  # type: ignore[return-value]
        (hw[i] + 2 * padding[i] - dilation[i] * (rs[i] - 1) - 1) // stride[i] + 1 for i in range(2)
    )
