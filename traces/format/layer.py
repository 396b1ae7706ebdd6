"""One recorded layer call: its geometry and the GEMM each training pass performs.

Every pass is a GEMM ``C[M×N] = A[M×K]·B[K×N]``, repeated ``groups`` times (grouped convs, the
batch and head dimensions of a product of two activations; DESIGN.md, "Training passes as work").
Each layer kind's geometry (tensor shapes, per-pass GEMM dims, checks) lives in its own module of
:mod:`traces.format.kinds`; for a conv with input ``(N, C, H, W)``, weights ``(Kout, C/g, R, S)``,
output ``(N, Kout, P, Q)`` and ``Kr = C·R·S/g``:

=================  ======================  ==============
pass               M × K × N               per group
=================  ======================  ==============
forward            N·P·Q × Kr × Kout/g     X im2col · W
backward_data      N·P·Q × Kout/g × Kr     dY · Wᵀ
backward_weight    Kr × N·P·Q × Kout/g     Xᵀ · dY
=================  ======================  ==============

A linear layer on input ``(N, ..., F)`` is the same with ``P·Q`` replaced by the product of the
middle dimensions, ``Kr = F`` and ``groups = 1``; a ``matmul`` (two activations) is
``N·groups`` GEMMs of its own ``M × K × N`` (:mod:`traces.format.kinds.matmul`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .kinds import KINDS as _KINDS
from .kinds import GemmDims, Kind, kind_of
from .kinds.base import ACTIVATION_TENSORS, OUTPUT_TENSORS, WEIGHT_TENSORS
from .kinds.conv2d import conv_out_size

PASSES = ("forward", "backward_data", "backward_weight", "update")
GEMM_PASSES = PASSES[:3]
KINDS = tuple(_KINDS)

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
__all__ = ["ACTIVATION_TENSORS", "GEMM_PASSES", "KINDS", "OUTPUT_TENSORS", "PASSES", "WEIGHT_TENSORS",
           "GemmDims", "LayerSpec", "conv_out_size", "update_owners"]


@dataclass(frozen=True)
class LayerSpec:
    """Geometry of one recorded GEMM-bearing call: a ``Conv2d`` or ``Linear`` module, or a product
    of two activations (``matmul``, format 4).

    Activation shapes are per sample (no batch dimension); the batch size is recorded per
    iteration because the last batch of an epoch may be smaller. What the shapes mean, the GEMM of
    each pass and the checks are the kind's (:mod:`traces.format.kinds`).
    """

    name: str  # unique: module path, plus "#k" for the k-th call of a reused module (k >= 1)
    kind: str  # "conv2d", "linear" or "matmul" (traces.format.kinds)
    module: str  # qualified module name in the model ("" for the root)
    call: int  # call index of this module within one iteration
    module_type: str  # class name, e.g. "Conv2d" or a user subclass
    x_shape: tuple[int, ...]  # input per sample: (C, H, W), (..., F) or matmul A (*batch, M, K)
    w_shape: tuple[int, ...]  # weight (Kout, C/g, R, S), (out, F), or matmul B (*batch, K, N) per sample
    y_shape: tuple[int, ...]  # output per sample: (Kout, P, Q), (..., out) or (*batch, M, N)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1  # conv groups; matmul: prod(batch dims) per sample
    bias: bool = False
    # the weight parameter this call uses, by its first name in ``model.named_parameters()``: the
    # calls of a reused module and weight-tied modules share one (format 3; None: the module's own)
    parameter: str | None = None
    # matmul only (format 4): null, or {"call", "role": scores|context, "causal", "backend"}
    # (not hashed: a dict; specs of the same geometry hash alike)
    attention: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def geometry(self) -> Kind:
        """The kind object that knows this layer's shapes, GEMMs and checks."""
        return kind_of(self.kind)

    @property
    def has_weight(self) -> bool:
        """Whether the layer multiplies by a weight parameter (and so has an update pass)."""
        return self.geometry.has_weight

    @property
    def weight_name(self) -> str:
        """The weight parameter's identity: ``parameter``, else (traces before format 3, synthetic
        layers) the module's own weight, ``<module>.weight``."""
        if self.parameter is not None:
            return self.parameter
        return f"{self.module}.weight" if self.module else "weight"

    def batched(self, tensor: str) -> bool:
        """Whether a recorded tensor has a batch dimension (weights do not; a matmul's B does)."""
        return self.geometry.batched(tensor)

    def tensor_shape(self, tensor: str, batch: int) -> tuple[int, ...]:
        """Full shape of a recorded tensor for ``batch`` samples."""
        return self.geometry.tensor_shape(self, tensor, batch)

    def numel(self, tensor: str, batch: int) -> int:
        """Number of elements of a recorded tensor for ``batch`` samples."""
        return math.prod(self.tensor_shape(tensor, batch))

    @property
    def rows_per_sample(self) -> int:
        """GEMM rows contributed by one sample: ``P·Q`` (conv), the middle dims (linear), ``M``
        (matmul, per group)."""
        return self.geometry.rows_per_sample(self)

    @property
    def reduction(self) -> int:
        """``Kr``: the forward reduction length per group (``C·R·S/g``, ``F`` or ``K``)."""
        return self.geometry.reduction(self)

    @property
    def out_per_group(self) -> int:
        """Output channels (or features, or matmul columns ``N``) per group."""
        return self.geometry.out_per_group(self)

    @property
    def gemm_passes(self) -> tuple[str, ...]:
        """The passes of this layer that are GEMMs (none for an embedding)."""
        return self.geometry.gemm_passes

    def gemm(self, pass_: str, batch: int) -> GemmDims:
        """GEMM dimensions of one training pass for ``batch`` samples."""
        return self.geometry.gemm(self, pass_, batch)

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
        lists of integers, ``groups`` and ``call`` integers, ``bias`` a boolean, names text,
        ``attention`` an object or null) and TypeError for missing or unknown fields.
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
        if fields.get("attention") is not None and not isinstance(fields["attention"], dict):
            raise ValueError(f"attention: expected an object or null, got {fields['attention']!r}")
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
        return problems + self.geometry.check(self) or self._check_macs()

    @property
    def macs_per_sample(self) -> int:
        """MACs of one pass for one sample (all groups)."""
        return self.geometry.macs_per_sample(self)

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
    Layers without a weight (``matmul``) own no update.
    """
    seen: set[str] = set()
    owners = []
    for spec in layers:
        owners.append(spec.has_weight and spec.weight_name not in seen)
        if spec.has_weight:
            seen.add(spec.weight_name)
    return owners


def _is_int(v: object) -> bool:
    """An integer, not a boolean (JSON ``true`` is not a dimension)."""
    return isinstance(v, int) and not isinstance(v, bool)
