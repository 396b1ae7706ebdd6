"""Edge-NPU PE arrays (lockstep systolic or per-PE skipping; ws/os/is): mapping, tile costs,
traffic per level, and the replay of one layer (``replay``)."""

from __future__ import annotations

from pathlib import Path

from archs import Architecture

from .nestrows import MappingContext
from .replay import context, embedding_rows, layer_rows, vector_op_rows


def mapping_context(arch: Architecture, mapping: str | Path | None, objective: str, dataflow: str | None,
                    stream_chunk: int | None) -> MappingContext:
    """How report rows are mapped (``hwsim.npu.nestrows``): fixed order, search or a file."""
    return MappingContext.of(arch, mapping, objective, dataflow, stream_chunk)


__all__ = ["context", "embedding_rows", "layer_rows", "mapping_context", "vector_op_rows"]
