"""``linear``: ``nn.Linear`` (and any GEMM with a weight parameter) on input ``(N, ..., F)``.

Per sample ``x (..., F)``, weight ``(out, F)``, ``y (..., out)``; the GEMM rows are the product of
the middle dimensions, ``K = F``, ``N = out``, one group.
"""

from __future__ import annotations

import math
from typing import Any

from .base import Kind, no_window


class Linear(Kind):
    name = "linear"

    def rows_per_sample(self, spec: Any) -> int:
        return math.prod(spec.x_shape[:-1])

    def check(self, spec: Any) -> list[str]:
        if spec.groups != 1:
            return [f"groups: a linear layer has groups 1, got {spec.groups}"]
        if window := no_window(spec, "linear"):
            return window
        if spec.attention is not None:
            return ["attention: only matmul layers (activation × activation) take part in attention"]
        if len(spec.w_shape) != 2 or spec.x_shape[-1:] != spec.w_shape[1:]:
            return [f"w_shape: {spec.w_shape} does not fit input {spec.x_shape}"]
        if spec.y_shape != (*spec.x_shape[:-1], spec.w_shape[0]):
            return [f"y_shape: {spec.y_shape} != {(*spec.x_shape[:-1], spec.w_shape[0])}"]
        return []
