"""``matmul``: a product of two activations, ``C = A·B`` (``Q·Kᵀ``, ``P·V``, bmm/einsum between
activations), format 4.

Per sample ``x = A (*batch_dims, M, K)``, ``w = B (*batch_dims, K, N)`` (an activation of each
sample, **not** a weight) and ``y = C (*batch_dims, M, N)``; ``groups = prod(batch_dims)`` (heads,
...). At ``batch`` samples each pass is ``batch·groups`` independent GEMMs:

=================  ============  ==============
pass               M × K × N     per group
=================  ============  ==============
forward            M × K × N     A · B
backward_data      M × N × K     dA = dC · Bᵀ
backward_weight    K × M × N     dB = Aᵀ · dC
=================  ============  ==============

Every tensor (``x, w, y, y_sel, y_out, dy, dx, dw, dw_needed``) has a batch dimension; ``dx`` is
A's gradient and ``dw`` B's. ``y_sel`` is the structural mask of the result entries computed
(causal, padding, a method's top-k). No parameter, no update pass.

``attention`` (optional): ``{"call": name of the attention call (shared by its two records),
"role": "scores" | "context", "causal": bool, "backend": one of ATTENTION_BACKENDS}``.
"""

from __future__ import annotations

import math
from typing import Any

from .base import GEMM_PASSES, GemmDims, Kind, no_window

# operand -> precision field of the architecture: both operands are activations (or gradients)
OPERAND_KINDS = {
    "forward": {"a": "activation", "b": "activation", "c": "activation"},
    "backward_data": {"a": "gradient", "b": "activation", "c": "gradient"},
    "backward_weight": {"a": "activation", "b": "gradient", "c": "gradient"},
}
ATTENTION_ROLES = ("scores", "context")
# how the attention ran: an SDPA backend (math, flash, efficient, cudnn) or explicit matmuls
ATTENTION_BACKENDS = ("math", "flash", "efficient", "cudnn", "explicit")
ATTENTION_FIELDS = {"call": str, "role": str, "causal": bool, "backend": str}


class Matmul(Kind):
    name = "matmul"
    has_weight = False
    operand_kinds = OPERAND_KINDS

    def batched(self, tensor: str) -> bool:
        return True

    def tensor_shape(self, spec: Any, tensor: str, batch: int) -> tuple[int, ...]:
        if tensor in ("w", "dw", "dw_needed"):
            return (batch, *spec.w_shape)
        return super().tensor_shape(spec, tensor, batch)

    def rows_per_sample(self, spec: Any) -> int:
        return spec.x_shape[-2]

    def reduction(self, spec: Any) -> int:
        return spec.x_shape[-1]

    def out_per_group(self, spec: Any) -> int:
        return spec.w_shape[-1]

    def gemm(self, spec: Any, pass_: str, batch: int) -> GemmDims:
        m, k, n, g = spec.x_shape[-2], spec.x_shape[-1], spec.w_shape[-1], batch * spec.groups
        if pass_ == "forward":
            return GemmDims(m, k, n, g)
        if pass_ == "backward_data":
            return GemmDims(m, n, k, g)
        if pass_ == "backward_weight":
            return GemmDims(k, m, n, g)
        raise KeyError(f"no GEMM for pass {pass_!r}; GEMM passes are {GEMM_PASSES}")

    def check(self, spec: Any) -> list[str]:
        x, w, y = spec.x_shape, spec.w_shape, spec.y_shape
        if window := no_window(spec, "matmul"):
            return window
        if len(x) < 2 or len(w) != len(x) or len(y) != len(x):
            return [f"shapes: matmul needs A (*batch, M, K), B (*batch, K, N), C (*batch, M, N) with "
                    f"the same batch dimensions; got {x}, {w}, {y}"]
        if w[:-2] != x[:-2] or w[-2] != x[-1]:
            return [f"w_shape: {w} does not fit A {x} (B is (*batch, K, N) with A's batch dims and K)"]
        if y != (*x[:-1], w[-1]):
            return [f"y_shape: {y} != {(*x[:-1], w[-1])}"]
        if spec.groups != math.prod(x[:-2]):
            return [f"groups: a matmul has one GEMM per batch-dimension index, {math.prod(x[:-2])}, "
                    f"got {spec.groups}"]
        if spec.parameter is not None or spec.bias:
            return ["parameter: a matmul multiplies two activations: no parameter, no bias"]
        return check_attention(spec.attention)


def check_attention(att: Any) -> list[str]:
    """Problems with a matmul's ``attention`` field (None is fine)."""
    if att is None:
        return []
    if not isinstance(att, dict) or set(att) != set(ATTENTION_FIELDS):
        found = sorted(att) if isinstance(att, dict) else type(att).__name__
        return [f"attention: expected null or an object with {', '.join(ATTENTION_FIELDS)}, got {found}"]
    for key, typ in ATTENTION_FIELDS.items():
        if not isinstance(att[key], typ):
            return [f"attention.{key}: expected {typ.__name__}, got {att[key]!r}"]
    if att["role"] not in ATTENTION_ROLES:
        return [f"attention.role: must be one of {ATTENTION_ROLES}, got {att['role']!r}"]
    if att["backend"] not in ATTENTION_BACKENDS:
        return [f"attention.backend: must be one of {ATTENTION_BACKENDS}, got {att['backend']!r}"]
    return []
