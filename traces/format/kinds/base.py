"""What every layer kind provides: its tensors' shapes, the GEMM of each pass, its checks.

A kind is one object (``traces.format.kinds.KINDS``) that :class:`traces.format.layer.LayerSpec`
delegates to, so a kind's geometry lives in one module (``conv2d``, ``linear``, ``matmul``, ...)
instead of ``if kind == ...`` branches across the readers and the replay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GEMM_PASSES = ("forward", "backward_data", "backward_weight")

# Which per-sample or per-weight shape each recorded tensor has.
ACTIVATION_TENSORS = ("x", "dx")
OUTPUT_TENSORS = ("y", "y_sel", "y_out", "dy")
WEIGHT_TENSORS = ("w", "dw", "dw_needed")

# operand -> precision field of the architecture, per pass, for a layer whose B operand is a weight
WEIGHT_OPERAND_KINDS = {
    "forward": {"a": "activation", "b": "weight", "c": "activation"},
    "backward_data": {"a": "gradient", "b": "weight", "c": "gradient"},
    "backward_weight": {"a": "activation", "b": "gradient", "c": "gradient"},
}


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


class Kind:
    """A layer kind with a weight operand ``w`` (conv2d, linear): the defaults below.

    ``spec`` arguments are :class:`traces.format.layer.LayerSpec` objects.
    """

    name = ""
    has_weight = True  # a parameter operand: the layer has an update pass and weight-shaped tensors
    gemm_passes: tuple[str, ...] = GEMM_PASSES  # the passes that are GEMMs (an embedding: none)
    operand_kinds: dict[str, dict[str, str]] = WEIGHT_OPERAND_KINDS
    # the pass whose GEMM result is summed back into an activation (col2im of overlapping windows)
    col2im_pass = "backward_data"

    def batched(self, tensor: str) -> bool:
        """Whether ``tensor`` has a batch dimension (its size scales with the batch)."""
        return tensor not in WEIGHT_TENSORS

    def tensor_shape(self, spec: Any, tensor: str, batch: int) -> tuple[int, ...]:
        """Full shape of a recorded tensor for ``batch`` samples."""
        if tensor in ACTIVATION_TENSORS:
            return (batch, *spec.x_shape)
        if tensor in OUTPUT_TENSORS:
            return (batch, *spec.y_shape)
        if tensor in WEIGHT_TENSORS:
            return spec.w_shape
        raise KeyError(f"unknown tensor {tensor!r}")

    def rows_per_sample(self, spec: Any) -> int:
        """GEMM rows (``M``) contributed by one sample, per group."""
        raise NotImplementedError

    def reduction(self, spec: Any) -> int:
        """The forward reduction length ``K`` per group."""
        return math.prod(spec.w_shape[1:])

    def out_per_group(self, spec: Any) -> int:
        """The forward output columns ``N`` per group."""
        return spec.w_shape[0] // spec.groups

    def gemm(self, spec: Any, pass_: str, batch: int) -> GemmDims:
        """GEMM dimensions of one training pass for ``batch`` samples: forward ``M×K×N``,
        backward-data ``M×N×K``, backward-weight ``K×M×N`` with ``M = batch·rows_per_sample``."""
        rows = batch * self.rows_per_sample(spec)
        kr, n, g = self.reduction(spec), self.out_per_group(spec), spec.groups
        if pass_ == "forward":
            return GemmDims(rows, kr, n, g)
        if pass_ == "backward_data":
            return GemmDims(rows, n, kr, g)
        if pass_ == "backward_weight":
            return GemmDims(kr, rows, n, g)
        raise KeyError(f"no GEMM for pass {pass_!r}; GEMM passes are {GEMM_PASSES}")

    def gemm_weight(self, spec: Any, w: Any) -> Any:
        """A weight-shaped array as ``(groups·N, K)``: row ``grp·N + j`` holds the forward GEMM's
        column ``j`` of group ``grp`` (``B = Wᵀ`` per group; a conv's ``(Kout, C/g·R·S)``)."""
        return w.reshape(w.shape[0], -1)

    def macs_per_sample(self, spec: Any) -> int:
        """MACs of one pass for one sample (all groups)."""
        return self.rows_per_sample(spec) * self.reduction(spec) * self.out_per_group(spec) * spec.groups

    def check(self, spec: Any) -> list[str]:
        """Problems of the kind's geometry, as ``field: message`` strings (shapes, ``call`` and
        ``groups`` ranges are checked before, by ``LayerSpec.check``)."""
        return []


def no_window(spec: Any, kind: str) -> list[str]:
    """A kind without a sliding window (linear, matmul, embedding) keeps ``stride``, ``padding`` and
    ``dilation`` at their defaults: another value is a field the replay would ignore, so a manifest
    holding one was not written by the trace writer."""
    for key, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
        if tuple(getattr(spec, key)) != default:
            return [f"{key}: a {kind} layer has no window; {key} is {list(default)}, got "
                    f"{list(getattr(spec, key))}"]
    return []

