"""``conv_transpose``: ``nn.ConvTranspose1d/2d/3d`` (format 4, additive).

Per sample ``x (Cin, *in)``, weight ``(Cin, Cout/g, *k)`` (PyTorch's layout), ``y (Cout, *out)``
with ``out = (in-1)·s - 2p + d·(k-1) + output_padding + 1`` per spatial dimension (1 to 3 of
them); ``output_padding`` is what the shapes leave over (0 <= it < max(s, d), PyTorch's rule).

A transposed conv is the adjoint of the direct conv from ``y``'s shape to ``x``'s with the same
weight, stride, padding and dilation: its forward is that conv's backward-data, its backward-data
that conv's forward. Each input element is multiplied by every kernel tap and scattered (col2im)
into the output, so no zero is ever inserted between input elements. Per group:

=================  =====================================  ==========================================
pass               M × K × N                              operands
=================  =====================================  ==========================================
forward            N·prod(in) × Cin/g × Cout/g·prod(k)    X rows · W, then col2im into Y; products
                                                          landing outside Y (the cropped padding)
                                                          are in the GEMM but never needed
backward_data      N·prod(in) × Cout/g·prod(k) × Cin/g    dY im2col · Wᵀ (a direct conv of dY)
backward_weight    Cin/g × N·prod(in) × Cout/g·prod(k)    Xᵀ · dY im2col
=================  =====================================  ==========================================
"""

from __future__ import annotations

import math
from typing import Any

from .base import Kind
from .conv3d import check_triples


class ConvTranspose(Kind):
    name = "conv_transpose"
    col2im_pass = "forward"

    def rows_per_sample(self, spec: Any) -> int:
        return math.prod(spec.x_shape[1:])

    def reduction(self, spec: Any) -> int:
        return spec.w_shape[0] // spec.groups

    def out_per_group(self, spec: Any) -> int:
        return math.prod(spec.w_shape[1:])

    def check(self, spec: Any) -> list[str]:
        if spec.attention is not None:
            return ["attention: only matmul layers (activation × activation) take part in attention"]
        x, w, y = spec.x_shape, spec.w_shape, spec.y_shape
        nd = len(x) - 1
        if not 1 <= nd <= 3 or len(w) != nd + 2 or len(y) != nd + 1:
            return [f"shapes: conv_transpose needs (Cin,*in), (Cin,Cout/g,*k), (Cout,*out) with 1 to 3 "
                    f"spatial dimensions; got {x}, {w}, {y}"]
        problems = check_triples(spec, nd, f"a {nd}-D transposed conv")
        if problems:
            return problems
        if w[0] != x[0] or x[0] % spec.groups or w[1] * spec.groups != y[0]:
            return [f"groups: weight {list(w)} with groups {spec.groups} does not fit "
                    f"Cin={x[0]}, Cout={y[0]}"]
        for i in range(nd):
            s, p, d = spec.stride[i], spec.padding[i], spec.dilation[i]
            base = (x[i + 1] - 1) * s - 2 * p + d * (w[i + 2] - 1) + 1
            if not 0 <= y[i + 1] - base < max(s, d):
                return [f"y_shape: {list(y)}, but the geometry gives {base} + output_padding "
                        f"(0..{max(s, d) - 1}) along spatial dimension {i}"]
        return []

    def gemm_weight(self, spec: Any, w: Any) -> Any:
        """``(Cin, Cout/g, *k)`` as ``(g·Cout/g·prod(k), Cin/g)``: each group's ``W`` transposed
        (the forward's ``B`` is ``W`` itself, ``Cin/g × Cout/g·prod(k)``)."""
        g, k, n = spec.groups, self.reduction(spec), self.out_per_group(spec)
        return w.reshape(g, k, n).swapaxes(1, 2).reshape(g * n, k)
