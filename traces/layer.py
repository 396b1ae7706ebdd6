"""One recorded layer call: its geometry and the GEMM each training pass performs.

Every pass is a GEMM ``C[M×N] = A[M×K]·B[K×N]``, repeated ``groups`` times for grouped convs
(DESIGN.md, "Training passes as work"). For a conv with input ``(N, C, H, W)``, weights
``(Kout, C/g, R, S)``, output ``(N, Kout, P, Q)`` and ``Kr = C·R·S/g``:

=================  ======================  ==============
pass               M × K × N               per group
=================  ======================  ==============
forward            N·P·Q × Kr × Kout/g     X im2col · W
backward_data      N·P·Q × Kout/g × Kr     dY · Wᵀ
backward_weight    Kr × N·P·Q × Kout/g     Xᵀ · dY
=================  ======================  ==============

A linear layer on input ``(N, ..., F)`` is the same with ``P·Q`` replaced by the product of the
middle dimensions, ``Kr = F`` and ``groups = 1``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

PASSES = ("forward", "backward_data", "backward_weight", "update")
GEMM_PASSES = PASSES[:3]
KINDS = ("conv2d", "linear")

# Which tensors each per-sample or per-weight shape applies to.
ACTIVATION_TENSORS = ("x", "dx")
OUTPUT_TENSORS = ("y", "y_sel", "y_out", "dy")
WEIGHT_TENSORS = ("w", "dw", "dw_needed")


@dataclass(frozen=True)
class GemmDims:
    """``groups`` independent GEMMs of ``m × k × n`` multiply-accumulates each."""

    m: int
    k: int
    n: int
    groups: int = 1

    @property
    def macs(self) -> int:
        """Algorithmic MACs of the pass: ``m·k·n·groups``."""
        return self.m * self.k * self.n * self.groups


@dataclass(frozen=True)
class LayerSpec:
    """Geometry of one recorded call of a ``Conv2d`` or ``Linear`` module.

    Activation shapes are per sample (no batch dimension); the batch size is recorded per
    iteration because the last batch of an epoch may be smaller.
    """

    name: str  # unique: module path, plus "#k" for the k-th call of a reused module (k >= 1)
    kind: str  # "conv2d" or "linear"
    module: str  # qualified module name in the model ("" for the root)
    call: int  # call index of this module within one iteration
    module_type: str  # class name, e.g. "Conv2d" or a user subclass
    x_shape: tuple[int, ...]  # input per sample: (C, H, W) or (..., F)
    w_shape: tuple[int, ...]  # weight: (Kout, C/g, R, S) or (out, F)
    y_shape: tuple[int, ...]  # output per sample: (Kout, P, Q) or (..., out)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = False

    def tensor_shape(self, tensor: str, batch: int) -> tuple[int, ...]:
        """Full shape of a recorded tensor for ``batch`` samples."""
        if tensor in ACTIVATION_TENSORS:
            return (batch, *self.x_shape)
        if tensor in OUTPUT_TENSORS:
            return (batch, *self.y_shape)
        if tensor in WEIGHT_TENSORS:
            return self.w_shape
        raise KeyError(f"unknown tensor {tensor!r}")

    def numel(self, tensor: str, batch: int) -> int:
        """Number of elements of a recorded tensor for ``batch`` samples."""
        return math.prod(self.tensor_shape(tensor, batch))

    @property
    def rows_per_sample(self) -> int:
        """GEMM rows contributed by one sample: ``P·Q`` (conv) or the middle dims (linear)."""
        if self.kind == "conv2d":
            return self.y_shape[1] * self.y_shape[2]
        return math.prod(self.x_shape[:-1])

    @property
    def reduction(self) -> int:
        """``Kr``: the forward reduction length per group (``C·R·S/g`` or ``F``)."""
        return math.prod(self.w_shape[1:])

    @property
    def out_per_group(self) -> int:
        """Output channels (or features) per group."""
        return self.w_shape[0] // self.groups

    def gemm(self, pass_: str, batch: int) -> GemmDims:
        """GEMM dimensions of one training pass for ``batch`` samples."""
        rows = batch * self.rows_per_sample
        kr, n, g = self.reduction, self.out_per_group, self.groups
        if pass_ == "forward":
            return GemmDims(rows, kr, n, g)
        if pass_ == "backward_data":
            return GemmDims(rows, n, kr, g)
        if pass_ == "backward_weight":
            return GemmDims(kr, rows, n, g)
        raise KeyError(f"no GEMM for pass {pass_!r}; GEMM passes are {GEMM_PASSES}")

    def to_dict(self, batch: int | None = None) -> dict[str, Any]:
        """JSON-ready dict; with ``batch``, also the per-pass GEMM dims ``[M, K, N, groups]``."""
        d = asdict(self)
        for key in ("x_shape", "w_shape", "y_shape", "stride", "padding", "dilation"):
            d[key] = list(d[key])
        if batch is not None:
            d["gemm"] = {p: list(vars(self.gemm(p, batch)).values()) for p in GEMM_PASSES}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerSpec:
        """Inverse of :meth:`to_dict` (the ``gemm`` entry is derived, so it is ignored)."""
        fields = {k: v for k, v in d.items() if k != "gemm"}
        for key in ("x_shape", "w_shape", "y_shape", "stride", "padding", "dilation"):
            if key in fields:
                fields[key] = tuple(int(v) for v in fields[key])
        return cls(**fields)

    def check(self) -> list[str]:
        """Problems with the geometry, as ``field: message`` strings (empty when consistent)."""
        problems: list[str] = []
        if self.kind not in KINDS:
            return [f"kind: must be one of {KINDS}, got {self.kind!r}"]
        if self.kind == "linear":
            if len(self.w_shape) != 2 or self.x_shape[-1:] != self.w_shape[1:]:
                problems.append(f"w_shape: {self.w_shape} does not fit input {self.x_shape}")
            elif self.y_shape != (*self.x_shape[:-1], self.w_shape[0]):
                problems.append(f"y_shape: {self.y_shape} != {(*self.x_shape[:-1], self.w_shape[0])}")
            return problems
        if len(self.x_shape) != 3 or len(self.w_shape) != 4 or len(self.y_shape) != 3:
            return [f"shapes: conv2d needs (C,H,W), (K,C/g,R,S), (K,P,Q); got "
                    f"{self.x_shape}, {self.w_shape}, {self.y_shape}"]
        c, h, w = self.x_shape
        k, cg, r, s = self.w_shape
        if self.groups < 1 or c % self.groups or k % self.groups or cg * self.groups != c:
            problems.append(f"groups: {self.groups} does not divide C={c}, K={k} with C/g={cg}")
        expected = (k, *conv_out_size((h, w), (r, s), self.stride, self.padding, self.dilation))
        if self.y_shape != expected:
            problems.append(f"y_shape: {self.y_shape}, but the geometry gives {expected}")
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
