"""Sparse training traces: format, recorder, accounting, training methods.

One folder per noun: ``format/`` (manifest, reader, writer, checks; numpy only), ``recording/``
(the PyTorch recorder), ``stats/`` (MAC accounting, each paper's counts, summaries), ``zoo/``
(built-in models and data sets), ``methods/`` (the sparse training methods); ``synth`` draws
traces without training and ``training`` trains a built-in model while recording.

Reading a trace needs numpy only; ``traces.record`` (and everything that trains) imports torch
lazily on first use.
"""

from __future__ import annotations

from typing import Any

from .format.errors import RecorderError, TraceFormatError
from .format.layer import GEMM_PASSES, PASSES, GemmDims, LayerSpec
from .format.manifest import FORMAT_VERSION, TENSORS
from .format.reader import Iteration, Trace, load
from .format.writer import TraceWriter
from .stats.accounting import (
    PassCounts,
    backward_data_effectual,
    backward_weight_effectual,
    forward_effectual,
    pass_counts,
)

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
        from .recording import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'traces' has no attribute {name!r}")
