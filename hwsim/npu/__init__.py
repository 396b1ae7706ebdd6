"""Edge-NPU PE arrays (lockstep systolic or per-PE skipping; ws/os/is): mapping, tile costs,
traffic per level, and the replay of one layer (``replay``)."""

from __future__ import annotations

from .replay import context, layer_rows

__all__ = ["context", "layer_rows"]
