"""Sparse training traces: format, recorder, accounting, training methods.

Reading a trace needs numpy only; ``traces.record`` (and everything that trains) imports torch
lazily on first use.
"""

from __future__ import annotations

from typing import Any

from .accounting import (
    PassCounts,
    backward_data_effectual,
    backward_weight_effectual,
    forward_effectual,
    pass_counts,
)
from .errors import RecorderError, TraceFormatError
from .layer import GEMM_PASSES, PASSES, GemmDims, LayerSpec
from .manifest import FORMAT_VERSION, TENSORS
from .reader import Iteration, Trace, load
from .writer import TraceWriter

__all__ = [
    "FORMAT_VERSION",
    "GEMM_PASSES",
    "PASSES",
    "TENSORS",
    "GemmDims",
    "Iteration",
    "LayerSpec",
    "PassCounts",
    "RecorderError",
    "Trace",
    "TraceFormatError",
    "TraceWriter",
    "backward_data_effectual",
    "backward_weight_effectual",
    "forward_effectual",
    "load",
    "pass_counts",
    "record",
]


def __getattr__(name: str) -> Any:
    # torch-dependent entry points load on first use so that `import traces` stays torch-free.
    if name in ("record", "Recorder", "active_recorder"):
        from . import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'traces' has no attribute {name!r}")
