"""ReRAM crossbar machines (ISAAC-like): weight mapping onto crossbars (``mapping``), in-situ MAC
costs from the masks (``crossbar``), training writes against endurance (``writes``), and the replay
of one layer (``replay``). See docs/reram.md."""

from __future__ import annotations

from .replay import READS_WEIGHTS, context, embedding_rows, layer_rows, prime, vector_op_rows

__all__ = ["READS_WEIGHTS", "context", "embedding_rows", "layer_rows", "prime", "vector_op_rows"]
