"""Memory of an edge-NPU layer's replay beyond its input (``hwsim.memory``).

An edge-NPU pass sizes its chunks of tiles so that a chunk and the operand masks fit the share of
the budget its context was given (``replay._chunk_tiles``; a pass that cannot is refused there),
so that share is what one layer may take.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from traces.format.layer import LayerSpec


def working_bytes(ctx: Any, spec: LayerSpec, batch: int, passes: Sequence[str], weights: bool) -> int:
    """Bytes one layer's replay may allocate (its masks not included): the context's share."""
    return int(ctx.memory_budget_bytes)
