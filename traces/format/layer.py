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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

PASSES = ("forward", "backward_data", "backward_weight", "update")
GEMM_PASSES = PASSES[:3]
KINDS = ("conv2d", "linear", "embedding")
NO_GEMM_KINDS = ("embedding",)  # kinds whose passes are no GEMMs (an embedding: gather, scatter-add)

# Magnitudes a trace may describe, so that every count and GEMM dimension replay forms fits int64:
# a dimension <= 2**31, a tensor of one sample (or the weights) <= 2**36 elements, a batch <= 2**20
# samples, and the MACs of one pass for the whole batch <= 2**62 (traces.format.manifest checks it against
# the manifest's batch_size; a trace without one is checked for the largest batch, 2**20 samples).
# A GPT-3 projection of 32768 tokens × 12288 × 12288 (2**42.2 MACs) is one such pass.
MAX_DIM = 2**31
MAX_ELEMENTS = 2**36
MAX_MACS_PER_PASS = 2**62
MAX_BATCH = 2**20
_SHAPES = ("x_shape", "w_shape", "y_shape")
_PAIRS = ("stride", "padding", "dilation")
_TEXT = ("name", "kind", "module", "module_type")
_OPTIONAL_TEXT = ("parameter",)

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
    # the weight parameter this call uses, by its first name in ``model.named_parameters()``: the
    # calls of a reused module and weight-tied modules share one (format 3; None: the module's own)
    parameter: str | None = None

    @property
    def weight_name(self) -> str:
        """The weight parameter's identity: ``parameter``, else (traces before format 3, synthetic
        layers) the module's own weight, ``<module>.weight``."""
        if self.parameter is not None:
            return self.parameter
        return f"{self.module}.weight" if self.module else "weight"

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

    @property
    def gemm_passes(self) -> tuple[str, ...]:
        """The passes of this layer that are GEMMs (none for an embedding)."""
        return () if self.kind in NO_GEMM_KINDS else GEMM_PASSES

    def gemm(self, pass_: str, batch: int) -> GemmDims:
        """GEMM dimensions of one training pass for ``batch`` samples."""
        if self.kind in NO_GEMM_KINDS:
            raise KeyError(f"{self.name}: an {self.kind} layer runs no GEMM (pass {pass_!r})")
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
            d["gemm"] = {p: list(vars(self.gemm(p, batch)).values()) for p in self.gemm_passes}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerSpec:
        """Inverse of :meth:`to_dict` (the ``gemm`` entry is derived, so it is ignored).

        Raises ValueError ``field: message`` for a value of the wrong type (shapes and pairs are
        lists of integers, ``groups`` and ``call`` integers, ``bias`` a boolean, names text) and
        TypeError for missing or unknown fields.
        """
        if not isinstance(d, dict):
            raise ValueError(f"(entry): expected a JSON object, got {type(d).__name__}")
        fields = {k: v for k, v in d.items() if k != "gemm"}
        for key in (*_SHAPES, *_PAIRS):
            if key in fields:
                value = fields[key]
                if not isinstance(value, list) or not all(_is_int(v) for v in value):
                    raise ValueError(f"{key}: expected a list of integers, got {value!r}")
                fields[key] = tuple(value)
        for key in ("groups", "call"):
            if key in fields and not _is_int(fields[key]):
                raise ValueError(f"{key}: expected an integer, got {fields[key]!r}")
        if "bias" in fields and not isinstance(fields["bias"], bool):
            raise ValueError(f"bias: expected true or false, got {fields['bias']!r}")
        for key in _TEXT:
            if key in fields and not isinstance(fields[key], str):
                raise ValueError(f"{key}: expected text, got {fields[key]!r}")
        for key in _OPTIONAL_TEXT:
            if fields.get(key) is not None and not isinstance(fields[key], str):
                raise ValueError(f"{key}: expected text or null, got {fields[key]!r}")
        return cls(**fields)

    def check(self) -> list[str]:
        """Problems with the geometry, as ``field: message`` strings (empty when consistent)."""
        problems: list[str] = []
        if self.kind not in KINDS:
            return [f"kind: must be one of {KINDS}, got {self.kind!r}"]
        if self.call < 0:
            problems.append(f"call: must be >= 0, got {self.call}")
        for key in _SHAPES:
            shape = getattr(self, key)
            if not shape or any(not 1 <= v <= MAX_DIM for v in shape):
                return [*problems, f"{key}: every dimension must be in 1..2**31, got {list(shape)}"]
            if math.prod(shape) > MAX_ELEMENTS:
                return [*problems, f"{key}: {math.prod(shape):.3g} elements exceed 2**36; "
                        "a trace describes one sample's tensors and the weights"]
        if self.groups < 1:
            return [*problems, f"groups: must be >= 1, got {self.groups}"]
        if self.kind in ("linear", "embedding") and self.groups != 1:
            return [*problems, f"groups: a {self.kind} layer has groups 1, got {self.groups}"]
        if self.kind == "embedding":
            from .embedding import check_embedding  # one module per kind's geometry
            return [*problems, *check_embedding(self.x_shape, self.w_shape, self.y_shape)]
        if self.kind == "conv2d":
            for key, low in (("stride", 1), ("padding", 0), ("dilation", 1)):
                pair = getattr(self, key)
                if len(pair) != 2:
                    problems.append(f"{key}: a 2-D conv needs one value per spatial dimension (2), "
                                    f"got {len(pair)}: {list(pair)}")
                elif any(not low <= v <= MAX_DIM for v in pair):
                    problems.append(f"{key}: values must be in {low}..2**31, got {list(pair)}")
            if problems:
                return problems
        if self.kind == "linear":
            if len(self.w_shape) != 2 or self.x_shape[-1:] != self.w_shape[1:]:
                problems.append(f"w_shape: {self.w_shape} does not fit input {self.x_shape}")
            elif self.y_shape != (*self.x_shape[:-1], self.w_shape[0]):
                problems.append(f"y_shape: {self.y_shape} != {(*self.x_shape[:-1], self.w_shape[0])}")
            return problems or self._check_macs()
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
        return problems or self._check_macs()

    @property
    def macs_per_sample(self) -> int:
        """MACs of one pass for one sample: ``rows_per_sample · Kr · Kout`` (all groups; 0 for a
        kind without GEMMs)."""
        if self.kind in NO_GEMM_KINDS:
            return 0
        return self.rows_per_sample * self.reduction * self.w_shape[0]

    def check_batch(self, batch: int) -> list[str]:
        """Problems of this layer at ``batch`` samples: one pass's MACs must fit int64 (2**62)."""
        macs = self.macs_per_sample * batch
        if macs > MAX_MACS_PER_PASS:
            return [f"w_shape: {macs:.3g} MACs in one pass of {batch} sample(s) exceed 2**62"]
        return []

    def _check_macs(self) -> list[str]:
        return self.check_batch(1)


def update_owners(layers: Sequence[LayerSpec]) -> list[bool]:
    """Per layer, whether it carries its weight's update: the first layer of each parameter.

    Updates belong to parameters, not calls (DESIGN.md): the calls of a reused module (weight
    sharing, gradient accumulation, checkpointing) and weight-tied modules do their forward and
    backward work per call, but the optimizer updates their shared weight once per step.
    """
    seen: set[str] = set()
    owners = []
    for spec in layers:
        owners.append(spec.weight_name not in seen)
        seen.add(spec.weight_name)
    return owners


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


def _is_int(v: object) -> bool:
    """An integer, not a boolean (JSON ``true`` is not a dimension)."""
    return isinstance(v, int) and not isinstance(v, bool)
